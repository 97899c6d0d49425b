"""HybridRetriever and reciprocal rank fusion (BM25 children and a fixed-ranking stub)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from ragzip.errors import ConfigError, InvalidInputError
from ragzip.retrievers import BM25Retriever, HybridRetriever, reciprocal_rank_fusion, retrievers
from ragzip.retrievers.base import BaseRetriever, DocumentLike, Retriever
from ragzip.types import Document, ScoredDocument


class FixedRanking(BaseRetriever):
    """Returns the same ranking for every query; records the k it was asked for."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking = [Document(f"text of {i}", id=i) for i in ranking]
        self.asked: list[int] = []
        self.added: list[Document] = []

    def add(self, documents: Iterable[DocumentLike]) -> None:
        self.added.extend(Document.from_any(d) for d in documents)

    def _search(self, query: str, k: int) -> list[tuple[Document, float]]:
        self.asked.append(k)
        return [(d, 1.0 / (i + 1)) for i, d in enumerate(self.ranking[:k])]


def scored(*ids: str) -> list[ScoredDocument]:
    return [ScoredDocument(Document(i, id=i), 1.0, rank) for rank, i in enumerate(ids)]


def test_rrf_scores_and_order() -> None:
    fused = reciprocal_rank_fusion([scored("a", "b", "c"), scored("b", "d")], k_rrf=60)
    assert [d.id for d, _ in fused] == ["b", "a", "d", "c"]
    assert dict((d.id, s) for d, s in fused) == pytest.approx(
        {"b": 1 / 62 + 1 / 61, "a": 1 / 61, "d": 1 / 62, "c": 1 / 63}
    )


def test_rrf_weights_shift_the_order() -> None:
    fused = reciprocal_rank_fusion([scored("a", "b"), scored("b", "a")], weights=[1.0, 3.0])
    assert [d.id for d, _ in fused] == ["b", "a"]


def test_rrf_dedups_and_keeps_the_first_document_object() -> None:
    first = scored("a", "a", "b")
    fused = reciprocal_rank_fusion([first, scored("a")])
    assert [d.id for d, _ in fused] == ["a", "b"]
    assert fused[0][0] is first[0].document
    assert fused[0][1] == pytest.approx(2 / 61)  # the repeat in one list counts once


def test_ties_break_by_best_position_then_first_seen() -> None:
    fused = reciprocal_rank_fusion([scored("a", "b"), scored("c", "d")])
    assert [d.id for d, _ in fused] == ["a", "c", "b", "d"]


def test_hybrid_fuses_children_and_asks_for_candidates() -> None:
    left, right = FixedRanking(["a", "b", "c"]), FixedRanking(["b", "x", "c"])
    hybrid = HybridRetriever([left, right], candidates=7)
    results = hybrid.retrieve("anything", k=2)
    assert [r.document.id for r in results] == ["b", "c"]
    assert [r.rank for r in results] == [0, 1]
    assert results[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert results[1].score == pytest.approx(2 / 63)
    assert left.asked == [7] and right.asked == [7]
    hybrid.retrieve("anything", k=20)
    assert left.asked[-1] == 20  # never fewer candidates than k


def test_hybrid_weights() -> None:
    hybrid = HybridRetriever([FixedRanking(["a", "b"]), FixedRanking(["b", "a"])], [0.0, 1.0])
    assert [r.document.id for r in hybrid.retrieve("q", k=2)] == ["b", "a"]


def test_hybrid_over_bm25_children_from_specs() -> None:
    hybrid = HybridRetriever.from_documents(
        [
            "The cat sat on the mat.",
            {"id": "dog", "text": "A dog chased the ball in the park."},
            "The cat and the dog are friends.",
        ],
        retrievers=["bm25", {"type": "bm25", "params": {"stopwords": None, "k1": 0.9}}],
    )
    assert all(isinstance(r, BM25Retriever) for r in hybrid.retrievers)
    assert [d.id for d in hybrid.retrievers[0].documents] == ["0", "dog", "2"]  # type: ignore[attr-defined]
    results = hybrid.retrieve("dog park ball", k=10)
    assert results[0].document.id == "dog"
    assert len({r.document.id for r in results}) == len(results) == 2

    hybrid.add(["A parrot talks."])
    assert [len(r) for r in hybrid.retrievers] == [4, 4]  # type: ignore[arg-type]
    assert hybrid.retrieve("parrot", k=1)[0].document.id == "3"


def test_hybrid_rejects_duplicates_before_adding_anywhere() -> None:
    a, b = BM25Retriever(), BM25Retriever()
    b.add([Document("held by b only", id="z")])
    hybrid = HybridRetriever([a, b])
    with pytest.raises(InvalidInputError, match="'z'"):
        hybrid.add([Document("new", id="y"), Document("again", id="z")])
    assert len(a) == 0 and len(b) == 1


def test_hybrid_empty_and_bad_queries() -> None:
    hybrid = HybridRetriever([BM25Retriever(), BM25Retriever()])
    assert hybrid.retrieve("nothing indexed", k=3) == []
    assert hybrid.retrieve("q", k=0) == []
    with pytest.raises(InvalidInputError):
        hybrid.retrieve("", k=3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retrievers": []},
        {"retrievers": "bm25"},
        {"retrievers": ["bm25"], "weights": [1.0, 2.0]},
        {"retrievers": ["bm25"], "weights": [-1.0]},
        {"retrievers": ["bm25", "bm25"], "weights": [0.0, 0.0]},
        {"retrievers": ["bm25"], "candidates": 0},
        {"retrievers": ["bm25"], "k_rrf": -5},
        {"retrievers": [object()]},
        {"retrievers": ["no-such-retriever"]},
    ],
    ids=str,
)
def test_bad_configuration_raises(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HybridRetriever(**kwargs)  # type: ignore[arg-type]


async def test_aretrieve_matches_retrieve() -> None:
    hybrid = HybridRetriever([FixedRanking(["a", "b", "c"]), FixedRanking(["c", "a"])])
    assert await hybrid.aretrieve("q", k=3) == hybrid.retrieve("q", k=3)


def test_registry_builds_hybrid_and_round_trips() -> None:
    spec = {
        "type": "hybrid",
        "params": {"retrievers": ["bm25", {"type": "bm25"}], "weights": [2, 1], "k_rrf": 10},
    }
    hybrid = retrievers.build(spec)
    assert isinstance(hybrid, HybridRetriever)
    assert isinstance(hybrid, Retriever)
    again = retrievers.build(hybrid.to_dict())
    assert isinstance(again, HybridRetriever)
    assert again.to_dict() == hybrid.to_dict()
    assert hybrid.to_dict()["params"]["weights"] == [2.0, 1.0]
