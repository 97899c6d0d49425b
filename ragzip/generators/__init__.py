"""ragzip.generators."""
