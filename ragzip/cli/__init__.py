"""ragzip.cli."""
