"""Hybrid retrieval: fuse several retrievers' rankings by weighted reciprocal rank fusion."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Container, Iterable, Mapping, Sequence, Sized
from typing import Any

from ragzip.errors import ConfigError, InvalidInputError
from ragzip.retrievers.base import (
    BaseRetriever,
    DocumentLike,
    Retriever,
    check_query,
    normalize_documents,
    ranked,
)
from ragzip.retrievers.registry import retrievers as registry
from ragzip.types import Document, ScoredDocument

__all__ = ["HybridRetriever", "reciprocal_rank_fusion"]

RetrieverSpec = Retriever | str | Mapping[str, Any]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[ScoredDocument]],
    weights: Sequence[float] | None = None,
    k_rrf: float = 60,
) -> list[tuple[Document, float]]:
    """Fuses rankings: a document scores ``sum(weight / (k_rrf + position + 1))``.

    Documents are matched by id; the first ranking that returns a document supplies its
    object. A ranking that repeats an id counts its best position only. Ties go to the
    document with the better best position, then to the one seen first.

    Args:
        rankings: Lists best first (their list order is used, not their ``rank`` fields).
        weights: One per ranking; ``None`` weighs all alike.
        k_rrf: Damps the head of each ranking (60 in Cormack et al., 2009).

    Returns:
        ``(document, fused score)`` pairs, best first.
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ConfigError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[str, float] = {}
    documents: dict[str, Document] = {}
    best: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for position, hit in enumerate(ranking):
            doc_id = hit.document.id
            if doc_id in seen:
                continue
            seen.add(doc_id)
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k_rrf + position + 1)
            documents.setdefault(doc_id, hit.document)
            best[doc_id] = min(best.get(doc_id, position), position)
    first_seen = {doc_id: i for i, doc_id in enumerate(documents)}
    order = sorted(scores, key=lambda i: (-scores[i], best[i], first_seen[i]))
    return [(documents[i], scores[i]) for i in order]


@registry.register("hybrid")
class HybridRetriever(BaseRetriever):
    """Asks every retriever for ``candidates`` documents and fuses their rankings (RRF).

    Rank fusion needs no score calibration, so a lexical and a dense retriever combine
    without tuning. Documents are deduplicated by id, so give the same document the same id
    in every retriever (:meth:`add` does that for you). Scores are fused RRF scores.

    Args:
        retrievers: Retrievers, or registry specs (``"bm25"``, ``{"type": "faiss",
            "params": {...}}``) built here, empty.
        weights: One non-negative weight per retriever; ``None`` weighs all alike.
        k_rrf: The RRF constant; larger values flatten the difference between ranks.
        candidates: Documents asked of each retriever (at least ``k``).

    Example:
        >>> hybrid = HybridRetriever.from_documents(docs, retrievers=["bm25", "faiss"])
        >>> hybrid.retrieve("who wrote Hamlet?", k=5)
    """

    name = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[RetrieverSpec],
        weights: Sequence[float] | None = None,
        k_rrf: float = 60,
        candidates: int = 50,
    ) -> None:
        if isinstance(retrievers, str | Mapping) or not retrievers:
            raise ConfigError("HybridRetriever needs a non-empty list of retrievers")
        children = [_build(spec) for spec in retrievers]
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(children):
                raise ConfigError(f"{len(weights)} weights given for {len(children)} retrievers")
            if any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
                raise ConfigError(f"weights must be finite, >= 0 and not all 0, got {weights}")
        if isinstance(k_rrf, bool) or not math.isfinite(k_rrf) or k_rrf < 0:
            raise ConfigError(f"k_rrf must be a number >= 0, got {k_rrf!r}")
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ConfigError(f"candidates must be an int >= 1, got {candidates!r}")
        self.retrievers: list[Retriever] = children
        self.weights: list[float] | None = weights
        self.k_rrf = float(k_rrf)
        self.candidates = candidates

    def params(self) -> dict[str, Any]:
        return {
            "retrievers": [
                r.to_dict() if hasattr(r, "to_dict") else type(r).__name__ for r in self.retrievers
            ],
            "weights": self.weights,
            "k_rrf": self.k_rrf,
            "candidates": self.candidates,
        }

    def add(self, documents: Iterable[DocumentLike]) -> None:
        """Adds the same documents, ids filled in, to every retriever.

        Documents without an id get their position after the largest retriever's documents.
        Ids already held by any retriever that can tell (one with ``__contains__``) are
        rejected before anything is added.

        Raises:
            InvalidInputError: an id is repeated or already indexed.
        """
        offset = max((len(r) for r in self.retrievers if isinstance(r, Sized)), default=0)
        docs = normalize_documents(documents, (), offset)
        for child in self.retrievers:
            if isinstance(child, Container):
                clash = next((d.id for d in docs if d.id in child), None)
                if clash is not None:
                    raise InvalidInputError(
                        f"duplicate document id {clash!r}: {type(child).__name__} already "
                        "holds it (nothing was added)"
                    )
        for child in self.retrievers:
            child.add(docs)

    def _pool(self, k: int) -> int:
        return max(self.candidates, k)

    def _search(self, query: str, k: int) -> list[tuple[Document, float]]:
        rankings = [r.retrieve(query, self._pool(k)) for r in self.retrievers]
        return reciprocal_rank_fusion(rankings, self.weights, self.k_rrf)[:k]

    async def aretrieve(self, query: str, k: int = 10) -> list[ScoredDocument]:
        """Queries the retrievers concurrently, then fuses."""
        query, k = check_query(query, k)
        if k == 0:
            return []
        rankings = await asyncio.gather(
            *(r.aretrieve(query, self._pool(k)) for r in self.retrievers)
        )
        return ranked(reciprocal_rank_fusion(rankings, self.weights, self.k_rrf)[:k])


def _build(spec: RetrieverSpec) -> Retriever:
    if isinstance(spec, str | Mapping):
        return registry.build(spec)
    if not isinstance(spec, Retriever):
        raise ConfigError(
            "each retriever must have retrieve(), aretrieve() and add(), or be a registry "
            f"spec; got {type(spec).__name__}"
        )
    return spec
