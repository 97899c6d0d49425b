"""ragzip.eval."""
