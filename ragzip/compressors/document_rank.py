"""Document-level relevance: the coarse stage of coarse-to-fine compression.

Usable on its own as the ``document-rank`` compressor: documents are scored against the query
with a bi-encoder over ``title + text`` and, optionally, the best few are re-ranked by a cross
relevance model reading the question with each (:mod:`.cross_stage`); then the budget is spent
on them in rank order (whole documents, the last one cut) or split across them by relevance
(``allocation="proportional"``, as LongLLMLingua does), each document keeping its leading text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np

from ragzip.budget import allocate
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request, truncate
from ragzip.compressors.cross_stage import CrossStage
from ragzip.compressors.registry import compressors
from ragzip.encoders.bi_encoder import BiEncoder, document_text, get_bi_encoder
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import CompressedDocument, Document, Span

__all__ = ["DocumentRankCompressor", "DocumentRanker"]


class DocumentRanker:
    """Scores documents against a query with a bi-encoder over ``title. text``.

    It shares the loaded model and the embedding cache with every other user of the same
    encoder (:func:`~ragzip.encoders.bi_encoder.get_bi_encoder`).

    Args:
        encoder: Bi-encoder model name (short name, hub id or path).
        quantize: ``"int8"`` for a dynamic int8 encoder on CPU.
    """

    def __init__(self, encoder: str = "minilm", quantize: str | None = None) -> None:
        self.encoder_name = encoder
        self.quantize = quantize
        self._encoder: BiEncoder | None = None

    @property
    def encoder(self) -> BiEncoder:
        if self._encoder is None:
            self._encoder = get_bi_encoder(self.encoder_name, quantize=self.quantize)
        return self._encoder

    def score(self, query_vector: np.ndarray, documents: Sequence[Document]) -> np.ndarray:
        """Cosine similarity of each document to the (already encoded) query."""
        if not documents:
            return np.zeros(0, dtype=np.float32)
        vectors = self.encoder.encode([document_text(d) for d in documents])
        return vectors @ query_vector


@compressors.register("document-rank")
class DocumentRankCompressor(BaseCompressor):
    """Keeps the most relevant documents, ranked by a bi-encoder, within the budget.

    Args:
        encoder: Bi-encoder model (default ``minilm``).
        relevance: A cross relevance model (``ragzip train --kind cross``) re-ranking the
            ``relevance_top`` best documents; ``None`` (default) ranks with the bi-encoder
            alone, as happens when the model cannot be loaded.
        relevance_top: Documents the relevance model reads.
        passage_weight: Weight of the model's passage score against the bi-encoder's.
        dtype: Relevance model precision (``auto``, ``fp32``, ``bf16``, ``int8``).
        allocation: ``"greedy"`` fills whole documents in rank order and cuts the last;
            ``"proportional"`` splits the budget by ``softmax(score / temperature)``.
        temperature: Softness of the proportional split (cosine units).
        min_score: Documents under this cosine similarity are dropped (``None`` keeps all).
        tokenizer: Token counter name.

    Example:
        >>> DocumentRankCompressor().compress("capital of France?", docs, 4).text()
    """

    name = "document-rank"
    request_params: ClassVar[frozenset[str]] = frozenset(
        {
            "allocation",
            "min_score",
            "passage_weight",
            "relevance_top",
            "temperature",
        }
    )

    def __init__(
        self,
        encoder: str = "minilm",
        *,
        relevance: str | None = None,
        relevance_top: int = 5,
        passage_weight: float = 1.0,
        dtype: str = "auto",
        allocation: Literal["greedy", "proportional"] = "greedy",
        temperature: float = 0.05,
        min_score: float | None = None,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        self.encoder = encoder
        self.allocation = allocation
        self.temperature = temperature
        self.min_score = min_score
        self.relevance = relevance
        self.relevance_top = relevance_top
        self.passage_weight = passage_weight
        self.dtype = dtype
        self.cross = (
            CrossStage(relevance, top=relevance_top, passage_weight=passage_weight, dtype=dtype)
            if relevance
            else None
        )
        self.ranker = DocumentRanker(encoder)

    def params(self) -> dict[str, object]:
        return {
            **super().params(),
            "encoder": self.encoder,
            "allocation": self.allocation,
            "temperature": self.temperature,
            "min_score": self.min_score,
            "relevance": self.relevance,
            "relevance_top": self.relevance_top,
            "passage_weight": self.passage_weight,
            "dtype": self.dtype,
        }

    def warm_up(self) -> None:
        self.ranker.encoder.warm_up()
        if self.cross is not None:
            self.cross.usable()

    def _compress(self, request: Request) -> MethodOutput:
        with request.timer("encode"):
            query_vector = self.ranker.encoder.encode([request.query])[0]
            scores = self.ranker.score(query_vector, request.documents)
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        info: dict[str, object] = {"document_scores": [float(s) for s in scores]}
        if self.cross is not None and request.query and self.cross.usable():
            with request.timer("cross"):
                cross = self.cross.score(request, order, scores)
            order = list(cross.docs) + [i for i in order if i not in cross.passages]
            info["model"] = self.relevance
        # Documents holding must-keep text come first and whole, budget allowing.
        forced = [i for i in order if request.budget.must_keep(request.documents[i].text)]
        rest = [
            i
            for i in order
            if i not in forced and (self.min_score is None or scores[i] >= self.min_score)
        ]
        shares, left = [], request.limit
        for i in forced + (rest if self.allocation != "proportional" else []):
            take = min(left, request.tokens[i])
            shares.append(take)
            left -= take
        if self.allocation == "proportional":
            shares += allocate(
                [float(scores[i]) for i in rest],
                [request.tokens[i] for i in rest],
                left,
                temperature=self.temperature,
            )
        eligible = forced + rest
        kept = []
        for i, share in zip(eligible, shares, strict=True):
            if share <= 0:
                continue
            doc = request.documents[i]
            full = CompressedDocument(
                doc.text, doc.id, (Span(0, len(doc.text)),), float(scores[i]), doc.metadata
            )
            kept.append(
                full if share >= request.tokens[i] else truncate(full, share, request.counter)
            )
        return MethodOutput(kept, info)
