"""What every retrieval answer keeps, checked by :func:`check_hits`, and helpers of the
retriever contract (:mod:`ragzip.testing.retriever_contracts`). Needs no pytest."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ragzip.types import Document, ScoredDocument

__all__ = ["assert_same_hits", "check_hits", "ranking"]


def check_hits(hits: Sequence[ScoredDocument], k: int, ids: Sequence[str] | None = None) -> None:
    """Asserts the invariants of every retrieval answer.

    * a list of at most ``k`` :class:`ScoredDocument`, ranks ``0, 1, ...`` in list order;
    * builtin, finite float scores that never increase down the list;
    * distinct document ids, each one of ``ids`` when given.

    Args:
        hits: What ``retrieve`` returned.
        k: The ``k`` it was given.
        ids: The ids of the indexed documents, if known.
    """
    assert isinstance(hits, list), f"expected a list, got {type(hits).__name__}"
    assert len(hits) <= k, f"{len(hits)} hits for k={k}"
    for position, hit in enumerate(hits):
        assert isinstance(hit, ScoredDocument), f"expected a ScoredDocument, got {hit!r}"
        assert isinstance(hit.document, Document), f"expected a Document, got {hit.document!r}"
        assert type(hit.score) is float, f"score {hit.score!r} is not a builtin float"
        assert math.isfinite(hit.score), f"score {hit.score!r} is not finite"
        assert hit.rank == position, f"hit {position} has rank {hit.rank}"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), f"scores are not best first: {scores}"
    found = [h.document.id for h in hits]
    assert len(set(found)) == len(found), f"a document came back twice: {found}"
    if ids is not None:
        unknown = set(found) - set(ids)
        assert not unknown, f"ids that were never added: {sorted(unknown)}"


def ranking(hits: Sequence[ScoredDocument]) -> list[tuple[str, int]]:
    """``(id, rank)`` of each hit, in order."""
    return [(h.document.id, h.rank) for h in hits]


def assert_same_hits(a: Sequence[ScoredDocument], b: Sequence[ScoredDocument]) -> None:
    """Asserts two answers hold the same documents, ranks and (nearly) the same scores."""
    assert ranking(a) == ranking(b), (ranking(a), ranking(b))
    for x, y in zip(a, b, strict=True):
        assert math.isclose(x.score, y.score, rel_tol=1e-5, abs_tol=1e-6), (x.score, y.score)
        assert x.document == y.document
