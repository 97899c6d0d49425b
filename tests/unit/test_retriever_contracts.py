"""The retriever contract on the model-free retrievers: BM25, FAISS over a hashing encoder, and
their hybrid. The same contract runs on the real MiniLM encoder in
tests/integration/test_retriever_contracts_minilm.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragzip.retrievers import BM25Retriever, FaissRetriever, HybridRetriever
from ragzip.retrievers.base import Retriever
from ragzip.testing.fakes import HashingEncoder
from ragzip.testing.retriever_contracts import MakeRetriever, RetrieverContract

pytest.importorskip("faiss")
pytest.importorskip("bm25s")


class TestBM25Contract(RetrieverContract):
    only_matches = True

    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        return BM25Retriever


class TestFaissHashingContract(RetrieverContract):
    registry_round_trip = False  # the registry cannot name a hashing encoder

    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        return lambda: FaissRetriever(HashingEncoder(), use_gpu=False)

    def load(self, retriever: Retriever, directory: Path) -> Retriever:
        return FaissRetriever.load(directory, encoder=HashingEncoder(), use_gpu=False)


class TestFaissHashingL2Contract(TestFaissHashingContract):
    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        return lambda: FaissRetriever(HashingEncoder(), metric="l2", use_gpu=False)


class TestHybridContract(RetrieverContract):
    registry_round_trip = False

    @pytest.fixture
    def make_retriever(self) -> MakeRetriever:
        return lambda: HybridRetriever(
            [BM25Retriever(), FaissRetriever(HashingEncoder(), use_gpu=False)], candidates=4
        )


def test_the_hybrid_of_registry_specs_round_trips() -> None:
    hybrid = HybridRetriever(["bm25", {"type": "bm25", "params": {"k1": 1.2}}], weights=[1, 2])
    assert RetrieverContract.registry_round_trip
    spec = hybrid.to_dict()
    from ragzip.retrievers import retrievers

    assert retrievers.build(spec).to_dict() == spec
