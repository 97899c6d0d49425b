"""Abstractive compression (RECOMP, abstractive): a query-focused summary of the documents.

1. Prefilter: the extractive compressor picks the sentences most relevant to the query
   (``prefilter_tokens`` of them), so a small generator reads a short input; its document
   relevance also drives selective augmentation (``min_relevance``).
2. Summarise: a generator (any ragzip generator spec: the local transformers model, or an
   OpenAI-compatible endpoint such as vLLM) writes a summary of at most the budget's words, or
   answers the sentinel (``NONE``) when the sentences do not help; the result is then empty.
   Summaries are cached by content (generator, prompt, query, sentences, length).
3. Guard: every summary sentence is checked against the source sentences
   (:mod:`~ragzip.compressors.abstractive.guard`); unsupported ones are replaced by their best
   supporting source sentence or dropped, and ``info["guard"]`` reports the counts.
4. Fit: whole sentences are kept while they fit the budget; each is attributed to the document
   of its best supporting source sentence, so results keep ids and provenance.

Concurrency: :meth:`compress` may be called from several threads at once (:meth:`acompress`
runs it in a thread). With the ``openai`` generator the calls reach the server concurrently,
where vLLM batches them; the local ``transformers`` generator serializes them, unless it is
built with ``batch_size > 1`` (``{"type": "transformers", "params": {"model": ...,
"batch_size": 8}}``), which merges concurrent summaries into one batched forward pass.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ragzip.compressors.abstractive.cache import (
    SHARED_CACHE,
    SummaryCache,
    file_cache,
    summary_key,
)
from ragzip.compressors.abstractive.guard import GuardedSentence, SourceSentence, guard
from ragzip.compressors.abstractive.parsing import DEFAULT_SENTINEL, clean_summary, is_sentinel
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.encoders.bi_encoder import get_bi_encoder
from ragzip.errors import ConfigError
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.registry import compressors
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.models import normalize_model_name
from ragzip.models_cache import loaded_models
from ragzip.text import scrub, segment, sentences
from ragzip.types import Budget, CompressedDocument, Span

__all__ = ["DEFAULT_GENERATOR", "DEFAULT_PROMPT", "AbstractiveCompressor"]

DEFAULT_GENERATOR: dict[str, Any] = {"type": "transformers", "params": {"model": "smollm2-135m"}}
DEFAULT_PROMPT = (
    "Read the facts below and write a short summary, in at most {words} words, of the facts "
    "that help answer the question. Copy names, numbers and dates exactly. If no fact helps "
    "answer the question, reply {sentinel}.\n\n"
    "Facts:\n{documents}\n\n"
    "Question: {query}\n"
    "Summary:"
)
# Summary lengths are rounded down to these, so nearby budgets share cached summaries.
_LENGTHS = (12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_TERMINAL = re.compile(r"[.!?][\"')\]]*\s*$")

# Generator parameters that change how requests are scheduled, not what is generated: left out
# of summary cache keys, so batched and unbatched runs share cached summaries.
_SCHEDULING_PARAMS = frozenset({"batch_size", "batch_wait_ms"})


def shared_generator(spec: Mapping[str, Any] | str) -> Any:
    """One generator per spec in the process, so compressors share a loaded model.

    Generators live in the bounded registry of :mod:`ragzip.models_cache`, keyed by the spec
    with its ``model`` parameter normalised (:func:`~ragzip.models.normalize_model_name`), so
    spellings of one model share an instance (built from the first spec seen).

    Raises:
        ConfigError: an invalid spec, or an empty ``model`` parameter.
    """
    from ragzip.generators.registry import generators

    keyed: Mapping[str, Any] | str = spec
    params = spec.get("params") if isinstance(spec, Mapping) else None
    if isinstance(spec, Mapping) and isinstance(params, Mapping) and "model" in params:
        model = params["model"]
        model = normalize_model_name(model) if isinstance(model, str) else model
        keyed = {**spec, "params": {**params, "model": model}}
    key = ("generator", json.dumps(keyed, sort_keys=True, default=str))
    return loaded_models().get_or_load(key, lambda: generators.build(spec))


def _cache_identity(generator: Any) -> Any:
    """What identifies a generator's output in cache keys: its spec without scheduling params."""
    if not hasattr(generator, "to_dict"):
        return repr(generator)
    spec = generator.to_dict()
    params = spec.get("params")
    if isinstance(params, Mapping):
        spec = {**spec, "params": {k: v for k, v in params.items() if k not in _SCHEDULING_PARAMS}}
    return spec


@dataclass(frozen=True)
class _Draft:
    """The summary of one request before the guard."""

    text: str  # cleaned summary
    raw: str
    cached: bool
    complete: bool  # the generator ended its last sentence


@compressors.register("abstractive")
class AbstractiveCompressor(BaseCompressor):
    """Query-focused summaries with selective augmentation and a faithfulness guard.

    Args:
        generator: Generator spec (``{"type": ..., "params": ...}``) or name; by default the
            local SmolLM2-135M-Instruct. ``{"type": "openai", "params": {"base_url": ...,
            "model": ...}}`` uses any OpenAI-compatible server (vLLM in production).
        prompt: Template with ``{documents}``, ``{query}``, ``{words}`` and ``{sentinel}``.
        max_summary_words: Longest summary asked for, whatever the budget.
        min_summary_words: Below this many words of budget no summary is written; the best
            source sentence is returned instead (cut to fit).
        tokens_per_word: Generator tokens allowed per word asked for (``max_tokens``).
        sentinel: What the generator answers when nothing helps (matched case-insensitively).
        min_relevance: Selective augmentation threshold (bi-encoder cosine of the best
            document); ``None`` leaves the decision to the generator's sentinel alone.
        guard: Check summary sentences against the source (``False`` keeps them all).
        guard_threshold: Support (0..1) a summary sentence needs to stay.
        guard_action: ``"replace"`` unsupported sentences with the best supporting source
            sentence, or ``"drop"`` them.
        lexical_weight: Weight of lexical support against cosine similarity in the guard.
        fill: Spend budget the summary leaves unused on the most relevant source sentences,
            verbatim (a hybrid: small generators write one short sentence).
        extractive_prefilter: Pick the most relevant sentences first (essential on CPU);
            ``False`` reads the leading sentences of each document.
        prefilter_tokens: Tokens (of ``tokenizer``) of source sentences the generator reads.
        encoder: Bi-encoder of the prefilter and the guard.
        temperature: Generation temperature (0 is greedy and deterministic).
        cache_size: Summaries kept in the process-wide cache (0 disables caching).
        cache_path: A JSON-lines file that keeps summaries across processes (evaluations).
        tokenizer: Token counter name.

    Example:
        >>> comp = AbstractiveCompressor(tokenizer="words")
        >>> result = comp.compress("Who discovered penicillin?", docs, Budget(ratio=10))
        >>> result.text(), result.info["guard"]
    """

    name = "abstractive"
    request_params: ClassVar[frozenset[str]] = frozenset(
        {
            "extractive_prefilter",
            "fill",
            "guard",
            "guard_action",
            "guard_threshold",
            "lexical_weight",
            "max_summary_words",
            "min_relevance",
            "min_summary_words",
            "prefilter_tokens",
            "temperature",
        }
    )

    def __init__(
        self,
        generator: str | dict[str, Any] | None = None,
        *,
        prompt: str = DEFAULT_PROMPT,
        max_summary_words: int = 64,
        min_summary_words: int = 8,
        tokens_per_word: float = 1.6,
        sentinel: str = DEFAULT_SENTINEL,
        min_relevance: float | None = None,
        guard: bool = True,
        guard_threshold: float = 0.6,
        guard_action: Literal["replace", "drop"] = "replace",
        lexical_weight: float = 0.6,
        fill: bool = False,
        extractive_prefilter: bool = True,
        prefilter_tokens: int = 200,
        encoder: str = "minilm",
        temperature: float = 0.0,
        cache_size: int = 4096,
        cache_path: str | None = None,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        for field in ("{documents}", "{words}"):
            if field not in prompt:
                raise ConfigError(f"prompt must contain {field}; got {prompt[:80]!r}")
        if guard_action not in ("replace", "drop"):
            raise ConfigError(f"guard_action must be 'replace' or 'drop', got {guard_action!r}")
        if not 0.0 <= guard_threshold <= 1.0 or not 0.0 <= lexical_weight <= 1.0:
            raise ConfigError("guard_threshold and lexical_weight must lie in [0, 1]")
        if min_summary_words < 1 or max_summary_words < min_summary_words:
            raise ConfigError("need 1 <= min_summary_words <= max_summary_words")
        if prefilter_tokens < 1 or tokens_per_word <= 0:
            raise ConfigError("prefilter_tokens and tokens_per_word must be positive")
        self.generator = dict(generator) if isinstance(generator, Mapping) else generator
        self.prompt = prompt
        self.max_summary_words = max_summary_words
        self.min_summary_words = min_summary_words
        self.tokens_per_word = tokens_per_word
        self.sentinel = sentinel
        self.min_relevance = min_relevance
        self.guard = guard
        self.guard_threshold = guard_threshold
        self.guard_action = guard_action
        self.lexical_weight = lexical_weight
        self.fill = fill
        self.extractive_prefilter = extractive_prefilter
        self.prefilter_tokens = prefilter_tokens
        self.encoder = encoder
        self.temperature = temperature
        self.cache_size = cache_size
        self.cache_path = cache_path
        if cache_path:
            self.cache = file_cache(cache_path)
        else:
            self.cache = SHARED_CACHE if cache_size else SummaryCache(0)
        self._prefilter = ExtractiveCompressor(
            encoder, tokenizer=tokenizer, min_relevance=min_relevance
        )

    def params(self) -> dict[str, Any]:
        names = [
            "generator",
            "prompt",
            "max_summary_words",
            "min_summary_words",
            "tokens_per_word",
            "sentinel",
            "min_relevance",
            "guard",
            "guard_threshold",
            "guard_action",
            "lexical_weight",
            "fill",
            "extractive_prefilter",
            "prefilter_tokens",
            "encoder",
            "temperature",
            "cache_size",
            "cache_path",
        ]
        return {**super().params(), **{n: getattr(self, n) for n in names}}

    @property
    def generator_spec(self) -> dict[str, Any] | str:
        return self.generator if self.generator is not None else DEFAULT_GENERATOR

    def _generator(self) -> Any:
        return shared_generator(self.generator_spec)

    def warm_up(self) -> None:
        self._prefilter.warm_up()
        warm = getattr(self._generator(), "warm_up", None)
        if warm is not None:
            warm()

    # -- stages ------------------------------------------------------------------------------
    def _compress(self, request: Request) -> MethodOutput:
        if request.limit <= 0:
            return MethodOutput([], {"augmented": False})
        with request.timer("prefilter"):
            sources, scores, relevance = self._sources(request)
        threshold = self.min_relevance
        if threshold is not None and relevance is not None and relevance < threshold:
            return MethodOutput([], {"augmented": False, "relevance": relevance})
        if not sources:
            return MethodOutput([], {"augmented": False})
        with request.timer("must_keep"):
            forced = self._must_keep(request)
        room = request.limit - sum(request.count(s.text) for s in forced)
        info: dict[str, Any] = {"augmented": True, "relevance": relevance}
        if forced and room <= 0:  # must-keep sentences take the whole budget
            return MethodOutput(self._assemble(request, forced, [], sources, scores), info)
        words = self._summary_words(request, sources, room)
        if words is None:  # no summary fits: the best source sentence, cut by the base
            best = [GuardedSentence(sources[0].text, 0, 1.0, replaced=True)]
            return MethodOutput(
                self._assemble(request, forced, best, sources, scores),
                {**info, "summary": "", "fallback": "extractive"},
            )
        with request.timer("generate"):
            draft = self._summarize(request, sources, words)
        info.update(summary=draft.text, cached=draft.cached, words_asked=words)
        if is_sentinel(draft.text, self.sentinel):
            kept = self._assemble(request, forced, [], sources, scores)
            return MethodOutput(kept, {**info, "augmented": bool(kept), "sentinel": True})
        claims = sentences(draft.text)
        if not draft.complete and len(claims) > 1:
            claims = claims[:-1]  # cut off by max_tokens mid-sentence
        with request.timer("guard"):
            report = guard(
                claims,
                sources,
                get_bi_encoder(self.encoder).encode,
                threshold=self.guard_threshold,
                action=self.guard_action,
                lexical_weight=self.lexical_weight,
                enabled=self.guard,
            )
        info["guard"] = report.counts()
        fitted = self._fit(request, list(report.sentences), room)
        info["sentences_kept"] = len(fitted)
        if self.fill:
            fitted = self._fill(request, fitted, sources, room)
            info["sentences_filled"] = len(fitted) - info["sentences_kept"]
        return MethodOutput(self._assemble(request, forced, fitted, sources, scores), info)

    def _sources(
        self, request: Request
    ) -> tuple[list[SourceSentence], dict[int, float], float | None]:
        """Source sentences, most relevant document first, with document scores."""
        if not self.extractive_prefilter:
            picked: list[SourceSentence] = []
            used = 0
            for i, doc in enumerate(request.documents):
                for span in segment(doc.text)[:8]:
                    text = doc.text[span.start : span.end]
                    used += request.count(text)
                    if used > self.prefilter_tokens and picked:
                        return picked, {}, None
                    picked.append(SourceSentence(text, i, span.start, span.end))
            return picked, {}, None
        budget = Budget(tokens=self.prefilter_tokens)
        result = self._prefilter.compress(request.query, request.documents, budget)
        relevance = result.info.get("relevance")
        index = {d.id: i for i, d in enumerate(request.documents)}
        scores: dict[int, float] = {}
        groups: list[tuple[float, str, list[SourceSentence]]] = []
        for kept in result.documents:
            i = index[kept.source_id]
            text = request.documents[i].text
            scores[i] = float(kept.score) if kept.score is not None else 0.0
            group = [
                SourceSentence(text[s.start : s.end], i, s.start, s.end)
                for s in kept.spans
                if text[s.start : s.end].strip()
            ]
            groups.append((-scores[i], text, group))
        groups.sort(key=lambda g: (g[0], g[1]))  # by relevance: independent of input order
        ordered = [s for _, _, group in groups for s in group]
        return ordered, scores, float(relevance) if relevance is not None else None

    def _must_keep(self, request: Request) -> list[SourceSentence]:
        budget = request.budget
        if not budget.keep and not budget.keep_patterns:
            return []
        forced = []
        for i, doc in enumerate(request.documents):
            for span in segment(doc.text):
                text = doc.text[span.start : span.end]
                if budget.must_keep(text):
                    forced.append(SourceSentence(text, i, span.start, span.end))
        return forced

    def _summary_words(
        self, request: Request, sources: list[SourceSentence], room: int
    ) -> int | None:
        """Words to ask for: the budget in words, rounded down to a cached length."""
        sample = " ".join(s.text for s in sources)
        units = max(request.count(sample), 1)
        words = room * len(sample.split()) / units
        words = min(words, self.max_summary_words)
        if words < self.min_summary_words:
            return None
        fitting = [n for n in _LENGTHS if n <= words]
        return fitting[-1] if fitting else int(words)

    def _render(self, query: str, sources: list[SourceSentence], words: int) -> str:
        facts = "\n".join(f"- {s.text}" for s in sources)
        return scrub(
            self.prompt.format(
                documents=facts,
                query=query.strip() or "(none: summarise the main facts)",
                words=words,
                sentinel=self.sentinel,
            )
        )

    def _summarize(self, request: Request, sources: list[SourceSentence], words: int) -> _Draft:
        prompt = self._render(request.query, sources, words)
        max_tokens = max(8, math.ceil(words * self.tokens_per_word))
        generator = self._generator()
        key = summary_key(
            generator=_cache_identity(generator),
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=self.temperature,
        )
        raw = self.cache.get(key)
        cached = raw is not None
        if raw is None:
            generation = generator.generate(
                [{"role": "user", "content": prompt}],
                max_tokens=max_tokens,
                temperature=self.temperature,
            )
            raw = str(generation.text)
            if self.temperature == 0.0:
                self.cache.put(key, raw)
        complete = bool(_TERMINAL.search(raw.strip())) or is_sentinel(clean_summary(raw))
        return _Draft(clean_summary(raw), raw, cached, complete)

    def _fit(
        self, request: Request, kept: list[GuardedSentence], room: int
    ) -> list[GuardedSentence]:
        """Whole sentences, in order, while they fit; the first one always, unless must-keep
        sentences take room (the base cuts what straddles the limit)."""
        fitted: list[GuardedSentence] = []
        used = 0
        for sentence in kept:
            size = request.count(sentence.text)
            if (fitted or room < request.limit) and used + size > room:
                continue
            fitted.append(sentence)
            used += size
        return fitted

    def _fill(
        self,
        request: Request,
        fitted: list[GuardedSentence],
        sources: list[SourceSentence],
        room: int,
    ) -> list[GuardedSentence]:
        """Adds source sentences, most relevant first, verbatim, while they fit."""
        used = sum(request.count(g.text) for g in fitted)
        present = {g.text.strip() for g in fitted}
        out = list(fitted)
        for j, source in enumerate(sources):
            size = request.count(source.text)
            if source.text.strip() in present or used + size > room:
                continue
            out.append(GuardedSentence(source.text, j, 1.0, replaced=True))
            present.add(source.text.strip())
            used += size
        return out

    def _assemble(
        self,
        request: Request,
        forced: list[SourceSentence],
        kept: list[GuardedSentence],
        sources: list[SourceSentence],
        scores: dict[int, float],
    ) -> list[CompressedDocument]:
        """One document per source document, holding the sentences attributed to it."""
        best_doc = sources[0].doc if sources else 0
        parts: dict[int, list[tuple[str, Span | None]]] = {}
        seen: set[str] = set()
        for s in forced:
            if s.text not in seen:
                seen.add(s.text)
                parts.setdefault(s.doc, []).append((s.text, Span(s.start, s.end)))
        for g in kept:
            if g.text in seen:
                continue
            seen.add(g.text)
            if g.source >= 0:
                src = sources[g.source]
                span = Span(src.start, src.end) if g.replaced else None
                parts.setdefault(src.doc, []).append((g.text, span))
            else:
                parts.setdefault(best_doc, []).append((g.text, None))
        documents = []
        for i, items in parts.items():
            doc = request.documents[i]
            documents.append(
                CompressedDocument(
                    text=" ".join(text for text, _ in items),
                    source_id=doc.id,
                    spans=tuple(span for _, span in items if span is not None),
                    score=scores.get(i),
                    metadata={**doc.metadata, "abstractive": True},
                )
            )
        return documents
