"""ragzip.adapters."""
