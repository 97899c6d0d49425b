"""Wire formats spoken over HTTP, each written once (see :mod:`ragzip.wire.openai`)."""
