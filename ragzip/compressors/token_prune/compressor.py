"""Token-classification prompt pruning (LLMLingua-2) under the common compressor contract.

1. Coarse (question-aware, when there is a query): the extractive compressor's document and
   sentence relevance stages keep the best sentences holding ``coarse_factor`` budgets.
2. Budget per document: by relevance (``softmax(score / temperature)``, LongLLMLingua), by
   rank (``allocation="dynamic"``, LongLLMLingua's dynamic compression ratio), or one pool.
3. Fine: a token-classification model scores every word; the most probable words that fit
   each document's budget are kept (``mode="rate"``), or those above ``threshold``
   (``mode="threshold"``), or LLMLingua-2's own per-chunk percentile rule (``"llmlingua"``).
   Must-keep strings, ``force_tokens`` and (optionally) digits are always kept.

The three stages share the request and the per-document state, so the method stays one
class (over 350 lines); word semantics and model scoring live in :mod:`.words` and
:mod:`.model`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from ragzip.budget import allocate
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.registry import compressors
from ragzip.compressors.token_prune.defaults import DEFAULT_PRUNER
from ragzip.compressors.token_prune.model import ScoredText, TokenScorer
from ragzip.compressors.token_prune.relevance_words import relevance_words
from ragzip.compressors.token_prune.words import (
    Words,
    drop_repeats,
    forced_by_strings,
    join_kept,
    llmlingua_keep,
    select_within,
)
from ragzip.encoders.relevance import RelevanceModel, is_relevance_model
from ragzip.errors import ConfigError
from ragzip.fastpath import Dtype
from ragzip.tokens import DEFAULT_COUNTER, TokenCounter, get_counter
from ragzip.types import CompressedDocument, Span

__all__ = ["TokenPruneCompressor", "llmlingua_labels", "word_costs"]

_FILL_ROUNDS = 4  # selections per request: the first, then up to 3 that spend what is left


def word_costs(counter: TokenCounter, texts: Sequence[str]) -> np.ndarray:
    """Tokens of each word under ``counter`` (each distinct word counted once)."""
    cache: dict[str, int] = {}
    out = np.empty(len(texts), dtype=np.float64)
    for i, t in enumerate(texts):
        c = cache.get(t)
        if c is None:
            c = cache[t] = counter.count(t)
        out[i] = c
    return out


def llmlingua_labels(
    scorer: TokenScorer,
    text: str,
    rate: float,
    *,
    force_tokens: Sequence[str] = (),
    force_reserve_digit: bool = False,
    token_to_word: str = "mean",
) -> tuple[list[str], np.ndarray]:
    """Words of ``text`` (as the tokenizer spells them) and LLMLingua-2's keep decisions at
    ``rate`` (kept share of tokens): its per-chunk percentile rule over GPT-token-weighted word
    probabilities, reimplemented on :class:`TokenScorer` for parity checks."""
    scored = scorer.score(
        [text],
        force_tokens=force_tokens,
        force_digits=force_reserve_digit,
        token_to_word=token_to_word,
        with_pieces=True,
    )[0]
    weights = word_costs(get_counter("tiktoken"), scored.pieces)
    keep = np.zeros(len(scored.words), dtype=bool)
    probs = np.where(scored.words.forced, 1.0, scored.words.probs)
    for c in np.unique(scored.chunk).tolist():
        sel = scored.chunk == c
        keep[sel] = llmlingua_keep(probs[sel], weights[sel], 1.0 - rate)
    return list(scored.pieces), keep


@compressors.register("token-prune")
class TokenPruneCompressor(BaseCompressor):
    """Keeps the words a token-classification model marks as informative (LLMLingua-2).

    Args:
        model: Pruner checkpoint: ``minilm-pruner`` (ragzip's trained default, offline),
            ``llmlingua2-xlmr``/``llmlingua2-mbert`` (published, internet), a hub id or a
            path; or a cross relevance model (``ragzip train --kind cross``), whose token head
            scores words with the question.
        backend: ``"ragzip"`` (this implementation) or ``"llmlingua"`` (the llmlingua package
            itself, ``pip install 'ragzip[llmlingua]'``, for parity checks).
        mode: ``"rate"`` keeps the most probable words that fit the budget; ``"threshold"``
            keeps words above ``threshold`` (budget still honoured); ``"llmlingua"`` applies
            LLMLingua-2's per-chunk percentile rule at the budget's rate.
        threshold: Keep probability of ``mode="threshold"``.
        allocation: ``"relevance"`` splits the budget by document relevance, ``"dynamic"`` by
            relevance rank (LongLLMLingua), ``"global"`` ranks all words together.
        question_aware: Run the document and sentence relevance stages first (needs a query).
        coarse_factor: The coarse stage keeps sentences holding this many budgets.
        temperature: Softness of the relevance split (cosine units).
        dynamic_ratio: Spread of ``allocation="dynamic"`` (0 = even).
        force_tokens: Words always kept (e.g. ``["\\n", "?"]``).
        force_reserve_digit: Keep words holding digits.
        drop_consecutive: Drop a force token repeated with nothing kept in between.
        token_to_word: ``"mean"`` or ``"first"`` subword probability per word.
        encoder: Bi-encoder of the coarse stage.
        sentence_weight: With a relevance model, the weight of "the word's sentence holds
            the answer" next to "the word is part of the answer" in a word's score.
        dtype: ``"auto"`` (bf16 only where a probe finds it faster than fp32), ``"fp32"``,
            ``"bf16"`` (CPU autocast) or ``"int8"`` (dynamic quantization).
        batch_size: Chunks per forward pass.
        tokenizer: Token counter name.

    Example:
        >>> comp = TokenPruneCompressor()
        >>> comp.compress("Who designed the tower?", docs, Budget(ratio=10)).text()
    """

    name = "token-prune"
    request_params: ClassVar[frozenset[str]] = frozenset(
        {
            "allocation",
            "coarse_factor",
            "drop_consecutive",
            "dynamic_ratio",
            "force_reserve_digit",
            "force_tokens",
            "mode",
            "question_aware",
            "temperature",
            "threshold",
            "token_to_word",
        }
    )

    def __init__(
        self,
        model: str = DEFAULT_PRUNER,
        *,
        backend: Literal["ragzip", "llmlingua"] = "ragzip",
        mode: Literal["rate", "threshold", "llmlingua"] = "rate",
        threshold: float = 0.5,
        allocation: Literal["relevance", "dynamic", "global"] = "relevance",
        question_aware: bool = True,
        coarse_factor: float = 1.5,
        temperature: float = 0.05,
        dynamic_ratio: float = 0.25,
        force_tokens: Sequence[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
        token_to_word: Literal["mean", "first"] = "mean",
        encoder: str = "minilm",
        sentence_weight: float = 0.5,
        dtype: Dtype = "auto",
        batch_size: int = 16,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        checks = {
            "backend": (backend, ("ragzip", "llmlingua")),
            "mode": (mode, ("rate", "threshold", "llmlingua")),
            "allocation": (allocation, ("relevance", "dynamic", "global")),
            "token_to_word": (token_to_word, ("mean", "first")),
        }
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ConfigError(f"{key} must be one of {allowed}, got {value!r}")
        if coarse_factor < 1.0:
            raise ConfigError(f"coarse_factor must be >= 1, got {coarse_factor}")
        self.model = model
        self.backend = backend
        self.mode = mode
        self.threshold = threshold
        self.allocation = allocation
        self.question_aware = question_aware
        self.coarse_factor = coarse_factor
        self.temperature = temperature
        self.dynamic_ratio = dynamic_ratio
        self.force_tokens = tuple(force_tokens)
        self.force_reserve_digit = force_reserve_digit
        self.drop_consecutive = drop_consecutive
        self.token_to_word = token_to_word
        self.encoder = encoder
        self.dtype = dtype
        self.batch_size = batch_size
        self.sentence_weight = sentence_weight
        self.scorer = TokenScorer(model, dtype=dtype, batch_size=batch_size)
        self._relevance: RelevanceModel | None = None
        if is_relevance_model(model):
            if backend != "ragzip" or mode == "llmlingua":
                raise ConfigError(
                    f"{model!r} is a relevance model: use it with backend='ragzip' and mode "
                    "'rate' or 'threshold'"
                )
            self._relevance = RelevanceModel(model, dtype=dtype, batch_size=batch_size)
        self._coarse: Any = None
        self._llmlingua: Any = None

    _PARAMS: ClassVar[tuple[str, ...]] = (
        "model",
        "backend",
        "mode",
        "threshold",
        "allocation",
        "question_aware",
        "coarse_factor",
        "temperature",
        "dynamic_ratio",
        "force_tokens",
        "force_reserve_digit",
        "drop_consecutive",
        "token_to_word",
        "encoder",
        "sentence_weight",
        "dtype",
        "batch_size",
    )

    def params(self) -> dict[str, object]:
        values = {n: getattr(self, n) for n in self._PARAMS}
        values["force_tokens"] = list(self.force_tokens)
        return {**super().params(), **values}

    def warm_up(self) -> None:
        if self.backend == "llmlingua":
            self._llmlingua_backend()
        elif self._relevance is not None:
            self._relevance.warm_up()
        else:
            self.scorer.warm_up()
        if self.question_aware:
            self._coarse_compressor().warm_up()

    def _coarse_compressor(self) -> Any:
        if self._coarse is None:
            from ragzip.compressors.extractive import ExtractiveCompressor

            self._coarse = ExtractiveCompressor(self.encoder, tokenizer=self.tokenizer)
        return self._coarse

    def _llmlingua_backend(self) -> Any:
        if self._llmlingua is None:
            from ragzip.compressors.token_prune.llmlingua_backend import LLMLinguaBackend

            self._llmlingua = LLMLinguaBackend(self.model)
        return self._llmlingua

    # -- stages ------------------------------------------------------------------------------
    def _compress(self, request: Request) -> MethodOutput:
        with request.timer("coarse"):
            pieces, scores = self._pieces(request)
        active = [i for i, p in enumerate(pieces) if p]
        if not active:
            return MethodOutput([], {"words_kept": 0})
        bodies = [" ".join(request.documents[i].text[a:b] for a, b in pieces[i]) for i in active]
        if self.backend == "llmlingua":
            return self._via_llmlingua(request, active, bodies, scores)
        with request.timer("model"):
            if self._relevance is not None:
                scored = relevance_words(
                    self._relevance,
                    request.query,
                    bodies,
                    sentence_weight=self.sentence_weight,
                    force_digits=self.force_reserve_digit,
                    token_to_word=self.token_to_word,
                )
            else:
                scored = self.scorer.score(
                    bodies,
                    force_tokens=self.force_tokens,
                    force_digits=self.force_reserve_digit,
                    token_to_word=self.token_to_word,
                    with_pieces=self.mode == "llmlingua",
                )
        with request.timer("select"):
            words, groups = [], []
            for i, body, st in zip(active, bodies, scored, strict=True):
                w, g = _to_source(st.words, pieces[i])
                text = request.documents[i].text
                forced = st.words.forced | forced_by_strings(
                    body, st.words, request.budget.keep, request.budget.keep_patterns
                )
                if self.force_tokens:
                    forced |= np.isin(
                        np.array(w.texts(text), dtype=object), np.array(self.force_tokens)
                    )
                words.append(Words(w.starts, w.ends, w.probs, forced))
                groups.append(g)
            keeps, kept, budgets = self._fill_budget(request, active, words, groups, scored, scores)
        info: dict[str, object] = {"words_kept": int(sum(int(k.sum()) for k in keeps))}
        info["words_total"] = int(sum(len(w) for w in words))
        if scores is not None:  # the coarse stage's document relevance (-1: not selected)
            info["document_scores"] = [float(x) for x in scores]
        if budgets is not None:  # tokens allocated to each input document
            allocation = [0.0] * len(request.documents)
            for i, budget in zip(active, budgets, strict=True):
                allocation[i] = round(float(budget), 1)
            info["allocation"] = allocation
        return MethodOutput(kept, info)

    def _fill_budget(
        self,
        request: Request,
        active: list[int],
        words: list[Words],
        groups: list[np.ndarray],
        scored: list[ScoredText],
        scores: np.ndarray | None,
    ) -> tuple[list[np.ndarray], list[CompressedDocument], list[float] | None]:
        """Selects words, then spends what the joined text left of the budget.

        Word costs are counted word by word, but kept neighbours join (``"Paris"`` and ``","``
        become one whitespace word; subwords merge under BPE counters), so the output usually
        costs less than its words. Up to :data:`_FILL_ROUNDS` times the unused part is added
        to the limit and the selection redone; the last selection within budget is kept.
        """
        limit = float(request.limit)
        best: tuple[list[np.ndarray], list[CompressedDocument], list[float] | None] | None = None
        for _ in range(_FILL_ROUNDS if self.mode != "llmlingua" else 1):
            keeps, budgets = self._select(request, active, words, scored, scores, limit)
            kept = self._join(request, active, words, groups, keeps, scores)
            used = sum(request.count(d.text) for d in kept)
            if best is not None and used > request.limit:
                break
            best = (keeps, kept, budgets)
            if used >= request.limit:
                break
            limit += request.limit - used
        assert best is not None
        return best

    def _join(
        self,
        request: Request,
        active: list[int],
        words: list[Words],
        groups: list[np.ndarray],
        keeps: list[np.ndarray],
        scores: np.ndarray | None,
    ) -> list[CompressedDocument]:
        kept = []
        for i, w, g, keep in zip(active, words, groups, keeps, strict=True):
            doc = request.documents[i]
            if self.drop_consecutive and self.force_tokens:
                keep = drop_repeats(keep, w.texts(doc.text), self.force_tokens)
            text, spans = join_kept(doc.text, w, keep, g)
            if not text.strip():
                continue
            score = float(scores[i]) if scores is not None else float(w.probs[keep].mean())
            kept.append(
                CompressedDocument(
                    text, doc.id, tuple(Span(a, b) for a, b in spans), score, doc.metadata
                )
            )
        return kept

    def _pieces(self, request: Request) -> tuple[list[list[tuple[int, int]]], np.ndarray | None]:
        """Character ranges of each document that go on to token pruning, and document
        relevance scores (``None`` without the question-aware stage)."""
        docs = request.documents
        if not (self.question_aware and request.query.strip()):
            return [[(0, len(d.text))] if d.text.strip() else [] for d in docs], None
        total = sum(request.tokens)
        coarse_limit = min(total, math.ceil(self.coarse_factor * request.limit))
        coarse = request.subset(range(len(docs)), limit=coarse_limit)
        # The coarse stage's own selection, with exact spans: the fine stage cuts to budget.
        selected = self._coarse_compressor().run(coarse, enforce=False).documents
        position = {d.id: i for i, d in enumerate(docs)}
        pieces: list[list[tuple[int, int]]] = [[] for _ in docs]
        scores = np.full(len(docs), -1.0)
        for kept in selected:
            i = position[kept.source_id]
            scores[i] = kept.score if kept.score is not None else 0.0
            pieces[i] = [(s.start, s.end) for s in kept.spans]
        return pieces, scores

    def _budgets(
        self, limit: int, active: list[int], sizes: list[float], scores: np.ndarray | None
    ) -> list[float] | None:
        if self.allocation == "global" or scores is None or len(active) == 1:
            return None
        rel = [float(scores[i]) for i in active]
        if self.allocation == "relevance":
            return [
                float(x)
                for x in allocate(rel, [int(s) for s in sizes], limit, temperature=self.temperature)
            ]
        rank = np.argsort(np.argsort(-np.asarray(rel), kind="stable"), kind="stable")
        n = max(len(active) - 1, 1)
        weight = np.asarray(sizes) * np.maximum(0.0, 1.0 + self.dynamic_ratio * (1 - 2 * rank / n))
        share = limit * weight / max(weight.sum(), 1e-9)
        return [float(x) for x in np.minimum(share, sizes)]

    def _select(
        self,
        request: Request,
        active: list[int],
        words: list[Words],
        scored: list[ScoredText],
        scores: np.ndarray | None,
        limit: float,
    ) -> tuple[list[np.ndarray], list[float] | None]:
        """Words to keep per active document, and each one's token budget (``None``: all
        words competed for one pool)."""
        texts = [w.texts(request.documents[i].text) for i, w in zip(active, words, strict=True)]
        costs = [word_costs(request.counter, t) for t in texts]
        if self.mode == "llmlingua":
            rate = min(1.0, request.limit / max(sum(request.tokens), 1))
            oai = get_counter("tiktoken")
            keeps = []
            for w, st in zip(words, scored, strict=True):
                weights = word_costs(oai, st.pieces)
                keep = np.zeros(len(w), dtype=bool)
                for c in np.unique(st.chunk).tolist():
                    sel = st.chunk == c
                    keep[sel] = llmlingua_keep(w.probs[sel], weights[sel], 1.0 - rate)
                keeps.append(keep | w.forced)
            return keeps, None
        # Must-keep words are paid for first; the rest of the budget is allocated.
        reserved = [float(c[w.forced].sum()) for w, c in zip(words, costs, strict=True)]
        sizes = [float(c.sum()) - r for c, r in zip(costs, reserved, strict=True)]
        left = max(0, int(limit) - math.ceil(sum(reserved)))
        budgets = self._budgets(left, active, sizes, scores)
        if budgets is not None:
            budgets = [b + r for b, r in zip(budgets, reserved, strict=True)]
        if budgets is None:  # one pool: all words compete
            probs = np.concatenate([w.probs for w in words])
            forced = np.concatenate([w.forced for w in words])
            keep_all = self._choose(probs, np.concatenate(costs), limit, forced)
            bounds = np.cumsum([0] + [len(w) for w in words])
            return [keep_all[a:b] for a, b in itertools.pairwise(bounds)], None
        keeps = [
            self._choose(w.probs, c, b, w.forced)
            for w, c, b in zip(words, costs, budgets, strict=True)
        ]
        return keeps, budgets

    def _choose(
        self, probs: np.ndarray, costs: np.ndarray, limit: float, forced: np.ndarray
    ) -> np.ndarray:
        keep = select_within(probs, costs, limit, forced)
        if self.mode == "threshold":
            keep &= (probs > self.threshold) | forced
        return keep

    def _via_llmlingua(
        self, request: Request, active: list[int], bodies: list[str], scores: np.ndarray | None
    ) -> MethodOutput:
        backend = self._llmlingua_backend()
        rate = min(1.0, request.limit / max(sum(request.count(b) for b in bodies), 1))
        with request.timer("model"):
            texts = backend.compress(
                bodies,
                rate=rate,
                force_tokens=list(self.force_tokens),
                force_reserve_digit=self.force_reserve_digit,
                drop_consecutive=self.drop_consecutive,
            )
        kept = []
        for i, text in zip(active, texts, strict=True):
            if text.strip():
                doc = request.documents[i]
                score = float(scores[i]) if scores is not None else None
                kept.append(CompressedDocument(text, doc.id, (), score, doc.metadata))
        return MethodOutput(kept, {"backend": "llmlingua"})


def _to_source(words: Words, pieces: list[tuple[int, int]]) -> tuple[Words, np.ndarray]:
    """Maps word offsets in ``" ".join(pieces)`` back to the source; returns the piece of each
    word too (runs never cross pieces)."""
    lengths = np.array([b - a for a, b in pieces], dtype=np.int64)
    body_starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    piece = np.searchsorted(body_starts, words.starts, side="right") - 1
    shift = np.array([a for a, _ in pieces], dtype=np.int64)[piece] - body_starts[piece]
    return Words(words.starts + shift, words.ends + shift, words.probs, words.forced), piece
