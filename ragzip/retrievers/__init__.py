"""ragzip.retrievers."""
