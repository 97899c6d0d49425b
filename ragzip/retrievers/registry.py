"""The retriever registry: build a retriever by name from plain config.

Example:
    >>> from ragzip.retrievers.registry import retrievers
    >>> bm25 = retrievers.build({"type": "bm25", "params": {"k1": 1.2}})
    >>> retrievers.names()
    ['bm25', 'faiss', 'hybrid']
"""

from __future__ import annotations

from ragzip.registry import Registry
from ragzip.retrievers.base import Retriever

__all__ = ["retrievers"]

retrievers: Registry[Retriever] = Registry(
    "retriever",
    {
        "faiss": "ragzip.retrievers.faiss_index",
        "bm25": "ragzip.retrievers.bm25",
        "hybrid": "ragzip.retrievers.hybrid",
    },
)
