"""ragzip.middleware."""
