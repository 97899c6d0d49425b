"""ragzip.compressors."""
