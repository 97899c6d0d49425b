"""The retriever contract on the real packaged all-MiniLM-L6-v2: FAISS, and its hybrid with
BM25 (BM25 needs no model; its contract runs in tests/unit/test_retriever_contracts.py)."""

from __future__ import annotations

import pytest

from ragzip.retrievers import BM25Retriever, FaissRetriever, HybridRetriever
from ragzip.testing.retriever_contracts import MakeRetriever, RetrieverContract

pytestmark = pytest.mark.integration

pytest.importorskip("faiss")


class TestFaissMiniLMContract(RetrieverContract):
    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        return lambda: FaissRetriever("minilm", use_gpu=False)


class TestHybridMiniLMContract(RetrieverContract):
    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        return lambda: HybridRetriever(
            [BM25Retriever(), FaissRetriever("minilm", use_gpu=False)], weights=[1.0, 1.0]
        )
