"""The generator registry: build a generator by name from plain config.

Example:
    >>> from ragzip.generators.registry import generators
    >>> local = generators.build({"type": "transformers", "params": {"model": "smollm2-135m"}})
    >>> remote = generators.build(
    ...     {"type": "openai", "params": {"base_url": "http://localhost:8000/v1", "model": "m"}}
    ... )
    >>> generators.names()
    ['openai', 'transformers']
"""

from __future__ import annotations

from ragzip.generators.base import Generator
from ragzip.registry import Registry

__all__ = ["generators"]

generators: Registry[Generator] = Registry(
    "generator",
    builtins={
        "openai": "ragzip.generators.openai_compat",
        "transformers": "ragzip.generators.local",
        "transformers-seq2seq": "ragzip.generators.seq2seq",
        "soft": "ragzip.generators.soft",
    },
)
