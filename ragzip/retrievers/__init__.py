"""Retrievers: dense (FAISS), lexical (BM25) and hybrid (reciprocal rank fusion).

Every retriever maps ``(query, k)`` to scored documents, best first (see
:class:`~ragzip.retrievers.base.Retriever`). Build one directly or by name:

Example:
    >>> from ragzip.retrievers import BM25Retriever, retrievers
    >>> r = BM25Retriever.from_documents(["Paris is in France.", "Rome is in Italy."])
    >>> hybrid = retrievers.build({"type": "hybrid", "params": {"retrievers": ["bm25", "faiss"]}})
"""

from ragzip.retrievers.base import BaseRetriever, Retriever
from ragzip.retrievers.bm25 import BM25Retriever
from ragzip.retrievers.faiss_index import FaissRetriever, TextEncoder
from ragzip.retrievers.hybrid import HybridRetriever, reciprocal_rank_fusion
from ragzip.retrievers.registry import retrievers

__all__ = [
    "BM25Retriever",
    "BaseRetriever",
    "FaissRetriever",
    "HybridRetriever",
    "Retriever",
    "TextEncoder",
    "reciprocal_rank_fusion",
    "retrievers",
]
