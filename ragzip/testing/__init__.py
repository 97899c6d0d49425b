"""ragzip.testing."""
