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

Sentences are embedded by ``sentence_model``: by default ``ragzip-relevance``, MiniLM tuned by
``ragzip train`` to rank answer-bearing sentences first (shipped; see the README). With a cross
relevance model (``relevance=``, opt-in), a cross stage reads the question with each of the
``relevance_top`` best documents in one pass (:mod:`.cross_stage`): the model's passage score
joins the document score (``passage_weight``) and its keep probability over each sentence's
tokens joins the sentence priority (``cross_weight``), all standardized; ``keep_threshold``
turns on the adaptive mode (Provence's): only what the model marks relevant is kept.

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
from ragzip.compressors.cross_stage import CrossStage
from ragzip.compressors.document_rank import DocumentRanker
from ragzip.compressors.registry import compressors
from ragzip.encoders.bi_encoder import BiEncoder, get_bi_encoder
from ragzip.encoders.relevance import DEFAULT_RELEVANCE, shipped_or
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
        sentence_model: Bi-encoder of the sentence stage: ``ragzip-relevance`` (MiniLM tuned
            by ``ragzip train`` to rank answer-bearing sentences first, shipped), a directory
            written by ``ragzip train``, any sentence-transformers model, or ``None`` for
            ``encoder`` itself. Documents are always ranked by ``encoder`` (whose vectors a
            FAISS index shares).
        relevance: A cross relevance model (``ragzip train --kind cross``) that reads the
            question with the ``relevance_top`` best documents and scores them and their
            sentences; ``None`` (default) skips it, as happens when it cannot be loaded.
        relevance_top: Documents the relevance model reads.
        passage_weight: Weight of the model's passage score against the bi-encoder's.
        cross_weight: Weight of the model's sentence keep probability (standardized) in a
            sentence's priority, next to the bi-encoder's sentence and document scores.
        keep_threshold: Adaptive mode (cross path): only sentences whose keep probability
            reaches this are kept, the budget staying a ceiling, so easy questions get
            shorter contexts; ``None`` fills the budget.
        cross_max_tokens: The cross path reads at most this many tokens; larger inputs take
            the bi-encoder path (bounded by ``max_sentences``).
        dtype: Relevance model precision: ``auto`` (probed, never slower than fp32),
            ``fp32``, ``bf16`` or ``int8``.
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
            "cross_weight",
            "keep_threshold",
            "passage_weight",
            "relevance_top",
            "rerank_top",
            "title_context",
            "whole_share",
        }
    )

    def __init__(
        self,
        encoder: str = "minilm",
        *,
        sentence_model: str | None = DEFAULT_RELEVANCE,
        relevance: str | None = None,
        relevance_top: int = 5,
        passage_weight: float = 1.0,
        cross_weight: float = 1.0,
        keep_threshold: float | None = None,
        cross_max_tokens: int = 6000,
        dtype: str = "auto",
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
        self.sentence_model = sentence_model
        self.relevance = relevance
        self.relevance_top = relevance_top
        self.passage_weight = passage_weight
        self.cross_weight = cross_weight
        self.cross_max_tokens = cross_max_tokens
        self.keep_threshold = keep_threshold
        self.dtype = dtype
        self.cross = (
            CrossStage(relevance, top=relevance_top, passage_weight=passage_weight, dtype=dtype)
            if relevance
            else None
        )
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
            "sentence_model",
            "relevance",
            "relevance_top",
            "passage_weight",
            "cross_weight",
            "keep_threshold",
            "cross_max_tokens",
            "dtype",
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
        """The sentence stage's encoder: ``sentence_model`` (the shipped tuned MiniLM by
        default), or ``encoder`` when it is ``None`` or missing from this installation."""
        if self._sentence_encoder is None:
            name = shipped_or(self.sentence_model or self.encoder, self.encoder)
            self._sentence_encoder = get_bi_encoder(name, quantize=self.quantize)
        return self._sentence_encoder

    def warm_up(self) -> None:
        self.sentence_encoder.warm_up()
        self.ranker.encoder.warm_up()
        if self.cross is not None:
            self.cross.usable()
        if self.cross_encoder:
            self._cross_scorer()

    # -- stages ------------------------------------------------------------------------------
    def _compress(self, request: Request) -> MethodOutput:
        docs = request.documents
        with request.timer("encode_query"):
            query_vector = self.sentence_encoder.encode([request.query])[0]
            doc_query = (
                self.ranker.encoder.encode([request.query])[0]
                if self.doc_stage and self.ranker.encoder is not self.sentence_encoder
                else query_vector
            )
        with request.timer("documents"):
            if self.doc_stage:
                doc_scores = self.ranker.score(doc_query, docs)
            else:
                doc_scores = np.zeros(len(docs), dtype=np.float32)
            order = [int(i) for i in np.argsort(-doc_scores, kind="stable")]
        cross = None
        doc_priority = standardize(doc_scores)
        stage = self.cross if self._cross_active(request, order) else None
        if stage is not None:
            with request.timer("cross"):
                cross = stage.score(request, order, doc_scores)
            order = list(cross.docs) + [i for i in order if i not in cross.passages]
            doc_priority = cross.document_priority(doc_priority, self.passage_weight)
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
                priority = priority + self.doc_weight * doc_priority[units.owner]
            allowed = None
            if cross is not None:
                keep = cross.sentence_keep(units.owner, units.spans)
                priority = priority + self.cross_weight * standardize(keep)
                if self.keep_threshold is not None:
                    allowed = keep >= self.keep_threshold
                    allowed[int(np.argmax(priority))] = True  # the best sentence qualifies
            chosen = self._select(request, units, vectors, priority, order, allowed)
        kept = self._assemble(request, units, chosen, doc_scores)
        info: dict[str, object] = {
            "augmented": True,
            "relevance": relevance,
            "sentences_kept": len(chosen),
        }
        if self.doc_stage:
            info["document_scores"] = [float(x) for x in doc_scores]
        if cross is not None:
            info.update(model=self.relevance, adaptive=self.keep_threshold is not None)
        return MethodOutput(kept, info)

    def _cross_active(self, request: Request, order: list[int]) -> bool:
        """The cross stage runs with a query, when the documents it would read hold at most
        ``cross_max_tokens`` (huge inputs keep the bi-encoder path and its bounded prefilter)."""
        if self.cross is None or not self.doc_stage or not request.query:
            return False
        reading = sum(request.tokens[i] for i in order[: self.relevance_top])
        return reading <= self.cross_max_tokens and self.cross.usable()

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
        allowed: np.ndarray | None = None,
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
                if allowed is not None and not allowed[units.owner == i].all():
                    break  # adaptive mode: whole only when the model keeps all of it
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
            if allowed is not None and not allowed[j] and j not in forced:
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
        """Near-duplicate of a kept sentence (cosine over ``dedup_threshold``)."""
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
