"""Extractive compression (RECOMP, extractive), coarse-to-fine.

1. Coarse: documents are scored against the query with a bi-encoder over ``title. text``
   (:class:`~ragzip.compressors.document_rank.DocumentRanker`). Only the best documents go on:
   at least ``min_candidates`` and enough to hold ``candidate_factor`` times the budget.
   While they fit within ``whole_share`` of the budget, the top documents are kept whole.
2. Fine: every candidate sentence is scored by the bi-encoder (with its document's title as
   context) and, optionally, re-scored by a cross-encoder. A sentence's priority is its
   standardized score plus ``doc_weight`` times its document's standardized score, so budget
   flows to the relevant documents (the relevance-based allocation of LongLLMLingua).
3. Selection: sentences are taken greedily by priority while they fit, skipping near-duplicates
   of sentences already taken; neighbouring sentences are added as context when asked for.
   Output keeps the original order and each sentence's character span in its document.

Selective augmentation: when the best document scores under ``min_relevance`` (cosine), the
result is empty (``info["augmented"] is False``), as RECOMP returns nothing for unhelpful
retrievals. See the README for calibrating the threshold.

The three stages share one request's sentence table, so they stay in one class (a little
over 350 lines); document ranking lives in :mod:`.document_rank`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ragzip.budget import standardize
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.document_rank import DocumentRanker
from ragzip.compressors.registry import compressors
from ragzip.encoders.bi_encoder import BiEncoder, get_bi_encoder
from ragzip.registry import check_choice
from ragzip.text import segment, term_overlap
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import CompressedDocument, Span

__all__ = ["ExtractiveCompressor"]


@dataclass
class _Units:
    """The candidate sentences of one request, flattened."""

    owner: np.ndarray  # document index of each sentence
    spans: list[Span]
    texts: list[str]
    tokens: np.ndarray

    def subset(self, keep: np.ndarray) -> _Units:
        keep = np.sort(keep)
        return _Units(
            self.owner[keep],
            [self.spans[j] for j in keep],
            [self.texts[j] for j in keep],
            self.tokens[keep],
        )


@compressors.register("extractive")
class ExtractiveCompressor(BaseCompressor):
    """Query-aware sentence extraction within a token budget (RECOMP, extractive).

    Args:
        encoder: Bi-encoder for documents and sentences (``minilm`` offline, or a hub id).
        cross_encoder: Optional cross-encoder (hub id or path) that re-scores the best
            ``rerank_top`` sentences; slower, usually more precise.
        rerank_top: Sentences re-scored by the cross-encoder.
        doc_stage: Score documents first and focus on the best (coarse-to-fine).
        doc_weight: Weight of the document's relevance in a sentence's priority.
        min_candidates: Documents the fine stage considers at least.
        candidate_factor: The fine stage considers top documents holding this many budgets.
        whole_share: Top documents are kept whole while they use at most this share of the
            budget (loose budgets keep whole documents; tight ones pick sentences).
        context_window: Neighbouring sentences added on each side of a kept one, budget allowing.
        include_title: Prefix each kept document with ``title:``.
        title_context: Encode sentences as ``title: sentence`` so pronouns have context.
        dedup_threshold: Skip sentences whose cosine similarity to a kept one exceeds this.
        min_relevance: Selective augmentation threshold (cosine); ``None`` always returns text.
        max_sentence_words: Longer sentences are split at clauses.
        max_sentences: Most sentences the encoder scores per call; beyond it a lexical
            pre-filter (query terms, IDF-weighted) picks which (huge inputs stay bounded).
        quantize: ``"int8"`` for dynamic int8 encoders on CPU (faster, slightly different).
        tokenizer: Token counter name.

    Example:
        >>> comp = ExtractiveCompressor()
        >>> result = comp.compress("Who wrote Hamlet?", docs, Budget(ratio=10))
        >>> result.text()
    """

    name = "extractive"
    request_params: ClassVar[frozenset[str]] = frozenset(
        {
            "candidate_factor",
            "context_window",
            "dedup_threshold",
            "doc_stage",
            "doc_weight",
            "include_title",
            "max_sentence_words",
            "min_candidates",
            "min_relevance",
            "rerank_top",
            "title_context",
            "whole_share",
        }
    )

    def __init__(
        self,
        encoder: str = "minilm",
        *,
        cross_encoder: str | None = None,
        rerank_top: int = 32,
        doc_stage: bool = True,
        doc_weight: float = 1.0,
        min_candidates: int = 5,
        candidate_factor: float = 3.0,
        whole_share: float = 0.5,
        context_window: int = 0,
        include_title: bool = False,
        title_context: bool = True,
        dedup_threshold: float = 0.95,
        min_relevance: float | None = None,
        max_sentence_words: int = 60,
        max_sentences: int = 2048,
        quantize: Literal["int8"] | None = None,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        check_choice("quantize", quantize, (None, "int8"))
        self.encoder = encoder
        self.cross_encoder = cross_encoder
        self.rerank_top = rerank_top
        self.doc_stage = doc_stage
        self.doc_weight = doc_weight
        self.min_candidates = min_candidates
        self.candidate_factor = candidate_factor
        self.whole_share = whole_share
        self.context_window = context_window
        self.include_title = include_title
        self.title_context = title_context
        self.dedup_threshold = dedup_threshold
        self.min_relevance = min_relevance
        self.max_sentence_words = max_sentence_words
        self.max_sentences = max_sentences
        self.quantize = quantize
        self.ranker = DocumentRanker(encoder, quantize=quantize)
        self._sentence_encoder: BiEncoder | None = None
        self._cross: object | None = None

    def params(self) -> dict[str, object]:
        names = [
            "encoder",
            "cross_encoder",
            "rerank_top",
            "doc_stage",
            "doc_weight",
            "min_candidates",
            "candidate_factor",
            "whole_share",
            "context_window",
            "include_title",
            "title_context",
            "dedup_threshold",
            "min_relevance",
            "max_sentence_words",
            "max_sentences",
            "quantize",
        ]
        return {**super().params(), **{n: getattr(self, n) for n in names}}

    @property
    def sentence_encoder(self) -> BiEncoder:
        if self._sentence_encoder is None:
            self._sentence_encoder = get_bi_encoder(self.encoder, quantize=self.quantize)
        return self._sentence_encoder

    def warm_up(self) -> None:
        self.sentence_encoder.warm_up()
        self.ranker.encoder.warm_up()
        if self.cross_encoder:
            self._cross_scorer()

    # -- stages ------------------------------------------------------------------------------
    def _compress(self, request: Request) -> MethodOutput:
        docs = request.documents
        with request.timer("encode_query"):
            query_vector = self.sentence_encoder.encode([request.query])[0]
        with request.timer("documents"):
            if self.doc_stage:
                doc_scores = self.ranker.score(query_vector, docs)
            else:
                doc_scores = np.zeros(len(docs), dtype=np.float32)
            order = [int(i) for i in np.argsort(-doc_scores, kind="stable")]
            candidates = self._candidates(request, order)
        with request.timer("segment"):
            units = self._segment(request, candidates)
            if len(units.texts) > self.max_sentences:
                units = self._prefilter(request, units)
        if not units.texts:
            return MethodOutput([], {"augmented": False})
        with request.timer("sentences"):
            vectors = self.sentence_encoder.encode(self._encoder_inputs(request, units))
            sentence_scores = vectors @ query_vector
            if self.cross_encoder and request.query:
                sentence_scores = self._rerank(request.query, units, sentence_scores)
        relevance = float(doc_scores.max() if self.doc_stage else sentence_scores.max())
        if self.min_relevance is not None and relevance < self.min_relevance:
            return MethodOutput([], {"augmented": False, "relevance": relevance})
        with request.timer("select"):
            priority = standardize(sentence_scores)
            if self.doc_stage:
                priority = priority + self.doc_weight * standardize(doc_scores)[units.owner]
            chosen = self._select(request, units, vectors, priority, order)
        kept = self._assemble(request, units, chosen, doc_scores)
        info = {"augmented": True, "relevance": relevance, "sentences_kept": len(chosen)}
        return MethodOutput(kept, info)

    def _candidates(self, request: Request, order: list[int]) -> list[int]:
        if not self.doc_stage:
            return order
        wanted = self.candidate_factor * request.limit
        picked: list[int] = []
        total = 0
        for i in order:
            if len(picked) >= self.min_candidates and total >= wanted:
                break
            picked.append(i)
            total += request.tokens[i]
        return picked

    def _segment(self, request: Request, candidates: list[int]) -> _Units:
        owner: list[int] = []
        spans: list[Span] = []
        texts: list[str] = []
        for i in sorted(candidates):
            text = request.documents[i].text
            for span in segment(text, self.max_sentence_words):
                owner.append(i)
                spans.append(span)
                texts.append(text[span.start : span.end])
        tokens = np.array([request.count(t) for t in texts], dtype=np.int64)
        return _Units(np.array(owner, dtype=np.int64), spans, texts, tokens)

    def _prefilter(self, request: Request, units: _Units) -> _Units:
        """Keeps the ``max_sentences`` sentences sharing the most query terms (IDF-weighted),
        must-keep ones first, so huge inputs cost a bounded number of encoder passes."""
        lexical = term_overlap(request.query, units.texts)
        forced = np.array([request.budget.must_keep(t) for t in units.texts], dtype=bool)
        order = np.lexsort((np.arange(len(units.texts)), -lexical, ~forced))
        return units.subset(order[: self.max_sentences])

    def _encoder_inputs(self, request: Request, units: _Units) -> list[str]:
        if not self.title_context:
            return units.texts
        titles = [request.documents[int(i)].title for i in units.owner]
        return [f"{t}: {s}" if t else s for t, s in zip(titles, units.texts, strict=True)]

    def _cross_scorer(self) -> object:
        if self._cross is None:
            from ragzip.encoders.cross_encoder import CrossEncoderScorer

            self._cross = CrossEncoderScorer(str(self.cross_encoder))
        return self._cross

    def _rerank(self, query: str, units: _Units, scores: np.ndarray) -> np.ndarray:
        top = np.argsort(-scores)[: self.rerank_top]
        scorer = self._cross_scorer()
        fresh = np.asarray(scorer.score(query, [units.texts[i] for i in top]))  # type: ignore[attr-defined]
        # Sentences outside the re-scored top keep their order below the re-scored ones.
        result = scores.astype(np.float64) - float(scores.max()) + float(fresh.min()) - 1.0
        result[top] = fresh
        return result

    def _select(
        self,
        request: Request,
        units: _Units,
        vectors: np.ndarray,
        priority: np.ndarray,
        order: list[int],
    ) -> list[int]:
        limit = request.limit
        chosen: list[int] = []
        used = 0
        forced = [j for j, t in enumerate(units.texts) if request.budget.must_keep(t)]
        whole: set[int] = set()
        if self.doc_stage:
            for i in order:
                size = int(units.tokens[units.owner == i].sum())
                if size == 0 or used + size > self.whole_share * limit:
                    break
                whole.add(i)
                for member in np.flatnonzero(units.owner == i).tolist():
                    if not self._duplicate(vectors, chosen, member):
                        chosen.append(member)
                        used += int(units.tokens[member])
        ranked = forced + [int(j) for j in np.argsort(-priority, kind="stable")]
        taken = set(chosen)
        for j in ranked:
            if used >= limit:
                break
            if j in taken or int(units.owner[j]) in whole:
                continue
            if used + int(units.tokens[j]) > limit and chosen:
                continue
            if self._duplicate(vectors, chosen, j):
                continue
            chosen.append(j)
            taken.add(j)
            used += int(units.tokens[j])  # may exceed the limit once: the base cuts the excess
            # Neighbours come with their sentence, before lower-ranked sentences fill the budget.
            for k in self._neighbours(units, j):
                if k not in taken and used + int(units.tokens[k]) <= limit:
                    chosen.append(k)
                    taken.add(k)
                    used += int(units.tokens[k])
        return sorted(chosen)

    def _duplicate(self, vectors: np.ndarray, chosen: list[int], j: int) -> bool:
        if not chosen or self.dedup_threshold >= 1.0:
            return False
        return float((vectors[chosen] @ vectors[j]).max()) > self.dedup_threshold

    def _neighbours(self, units: _Units, j: int) -> list[int]:
        """Sentences within ``context_window`` of ``j`` in the same document, nearest first."""
        found = []
        for step in range(1, self.context_window + 1):
            for k in (j - step, j + step):
                if 0 <= k < len(units.texts) and units.owner[k] == units.owner[j]:
                    found.append(k)
        return found

    def _assemble(
        self, request: Request, units: _Units, chosen: list[int], doc_scores: np.ndarray
    ) -> list[CompressedDocument]:
        by_doc: dict[int, list[int]] = {}
        for j in chosen:
            by_doc.setdefault(int(units.owner[j]), []).append(j)
        kept = []
        for i, members in by_doc.items():
            doc = request.documents[i]
            body = " ".join(units.texts[j] for j in members)
            if self.include_title and doc.title:
                body = f"{doc.title}: {body}"
            kept.append(
                CompressedDocument(
                    text=body,
                    source_id=doc.id,
                    spans=tuple(units.spans[j] for j in members),
                    score=float(doc_scores[i]),
                    metadata=doc.metadata,
                )
            )
        return kept
