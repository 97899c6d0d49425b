"""The cross stage of text compressors: ragzip's relevance model reads the question with each
of the best few documents (by the bi-encoder) and scores the documents, their sentences and
their words in one forward pass per document.

Shared by ``extractive`` (sentence selection), ``document-rank`` (ranking) and
``token-prune`` (word selection). When the model cannot be loaded (its files or torch are
missing), the stage says so once in the log and the compressors keep their bi-encoder path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragzip.budget import standardize
from ragzip.compressors.base import Request
from ragzip.encoders.relevance import PassageScores, RelevanceModel
from ragzip.errors import MissingDependencyError, ModelNotFoundError
from ragzip.types import Span

__all__ = ["CrossScores", "CrossStage"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrossScores:
    """Scores of the documents the model read (``docs``, best first by ``doc_scores``)."""

    docs: tuple[int, ...]
    doc_scores: np.ndarray  # per document index of the request; -inf for unread documents
    passages: dict[int, PassageScores]

    def document_priority(self, priority: np.ndarray, weight: float) -> np.ndarray:
        """``priority`` (one per document) plus ``weight`` times the model's standardized
        passage score for the documents it read; the others get the lowest addition."""
        read = list(self.passages)
        added = standardize(np.array([self.passages[i].relevance for i in read]))
        out = priority + weight * float(added.min())
        out[read] = priority[read] + weight * added
        return out

    def sentence_keep(self, owner: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
        """The keep probability of each sentence (document ``owner``, character ``spans``):
        the mean over its tokens; 0 for sentences of documents the model did not read."""
        keep = np.zeros(len(spans))
        for i, scored in self.passages.items():
            members = np.flatnonzero(owner == i).tolist()
            keep[members] = scored.span_scores([(spans[j].start, spans[j].end) for j in members])
        return keep


class CrossStage:
    """Runs the relevance model on the top ``top`` documents of a bi-encoder ranking.

    Args:
        model: Relevance model name or path (``ragzip-relevance``).
        top: Documents read by the model.
        passage_weight: Weight of the model's passage score against the bi-encoder's
            (both standardized over the documents read).
        dtype: ``auto``, ``fp32``, ``bf16`` or ``int8``.
    """

    def __init__(
        self, model: str, *, top: int = 5, passage_weight: float = 1.0, dtype: str = "auto"
    ) -> None:
        self.model = RelevanceModel(model, dtype=dtype)
        self.top = top
        self.passage_weight = passage_weight
        self._usable: bool | None = None
        self._lock = threading.Lock()

    def usable(self) -> bool:
        """Whether the model loads here (tried once; a failure is logged, not raised)."""
        if self._usable is None:
            with self._lock:
                if self._usable is None:
                    try:
                        self.model.warm_up()
                        self._usable = True
                    except (ModelNotFoundError, MissingDependencyError) as exc:
                        _log.warning("relevance model unavailable, using the bi-encoder: %s", exc)
                        self._usable = False
        return self._usable

    def score(self, request: Request, order: Sequence[int], bi_scores: np.ndarray) -> CrossScores:
        """Reads the first ``top`` documents of ``order`` (the bi-encoder's ranking)."""
        read = [int(i) for i in order[: self.top]]
        docs = request.documents
        scored = self.model.score(
            request.query, [docs[i].text for i in read], [docs[i].title for i in read]
        )
        cross = np.array([s.relevance for s in scored], dtype=np.float64)
        combined = standardize(bi_scores[read].astype(np.float64))
        combined = combined + self.passage_weight * standardize(cross)
        doc_scores = np.full(len(docs), -np.inf)
        doc_scores[read] = combined
        ranked = tuple(read[j] for j in np.argsort(-combined, kind="stable"))
        return CrossScores(ranked, doc_scores, dict(zip(read, scored, strict=True)))
