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

Settings live in :mod:`.config`, the prompt and summary length in :mod:`.summary`, fitting and
attribution in :mod:`.assemble`; this module holds the stages, the shared generators and the
summary cache.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from ragzip.compressors.abstractive.assemble import assemble, fill, fit
from ragzip.compressors.abstractive.cache import (
    SHARED_CACHE,
    SummaryCache,
    file_cache,
    summary_key,
)
from ragzip.compressors.abstractive.config import (
    DEFAULT_GENERATOR,
    DEFAULT_PROMPT,
    AbstractiveConfig,
    GuardAction,
)
from ragzip.compressors.abstractive.guard import GuardedSentence, SourceSentence, guard
from ragzip.compressors.abstractive.parsing import is_sentinel
from ragzip.compressors.abstractive.summary import Draft, render_prompt, summary_words
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.compressors.registry import compressors
from ragzip.encoders.bi_encoder import get_bi_encoder
from ragzip.models_cache import shared_component
from ragzip.text import segment, sentences
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import Budget

__all__ = ["DEFAULT_GENERATOR", "DEFAULT_PROMPT", "AbstractiveCompressor", "AbstractiveConfig"]

_D = AbstractiveConfig()  # the defaults of the constructor's keywords

# Generator parameters that change how requests are scheduled, not what is generated: left out
# of summary cache keys, so batched and unbatched runs share cached summaries.
_SCHEDULING_PARAMS = frozenset({"batch_size", "batch_wait_ms"})


def shared_generator(spec: Mapping[str, Any] | str) -> Any:
    """One generator per spec in the process, so compressors share a loaded model.

    Generators live in the bounded registry of :mod:`ragzip.models_cache`, keyed by the
    canonical :func:`~ragzip.models_cache.spec_key` (its ``model`` parameter normalised), so
    spellings of one model share an instance (built from the first spec seen).

    Raises:
        ConfigError: an invalid spec, or an empty ``model`` parameter.
    """
    from ragzip.generators.registry import generators

    return shared_component("generator", spec, lambda: generators.build(spec))


def _cache_identity(generator: Any) -> Any:
    """What identifies a generator's output in cache keys: its spec without scheduling params."""
    if not hasattr(generator, "to_dict"):
        return repr(generator)
    spec = generator.to_dict()
    params = spec.get("params")
    if isinstance(params, Mapping):
        spec = {**spec, "params": {k: v for k, v in params.items() if k not in _SCHEDULING_PARAMS}}
    return spec


@compressors.register("abstractive")
class AbstractiveCompressor(BaseCompressor):
    """Query-focused summaries with selective augmentation and a faithfulness guard.

    The keywords are the fields of :class:`.AbstractiveConfig` (documented there), kept as
    :attr:`config`; each is also readable as an attribute (``compressor.guard_threshold``).
    :meth:`from_config` builds one from a config.

    Args:
        generator: Generator spec (``{"type": ..., "params": ...}``) or name; by default the
            local SmolLM2-135M-Instruct. ``{"type": "openai", "params": {"base_url": ...,
            "model": ...}}`` uses any OpenAI-compatible server (vLLM in production).
        prompt, max_summary_words, ..., cache_path: The other fields of
            :class:`AbstractiveConfig`, with its defaults.
        tokenizer: Token counter name.

    Raises:
        ConfigError: an invalid setting (see :class:`AbstractiveConfig`).

    Example:
        >>> comp = AbstractiveCompressor(tokenizer="words")
        >>> result = comp.compress("Who discovered penicillin?", docs, Budget(ratio=10))
        >>> result.text(), result.info["guard"]
    """

    name = "abstractive"
    request_params: ClassVar[frozenset[str]] = frozenset(
        {"extractive_prefilter", "fill", "guard", "guard_action", "guard_threshold",
         "lexical_weight", "max_summary_words", "min_relevance", "min_summary_words",
         "prefilter_tokens", "temperature"}
    )  # fmt: skip

    def __init__(
        self,
        generator: str | dict[str, Any] | None = None,
        *,
        prompt: str = _D.prompt,
        max_summary_words: int = _D.max_summary_words,
        min_summary_words: int = _D.min_summary_words,
        tokens_per_word: float = _D.tokens_per_word,
        sentinel: str = _D.sentinel,
        min_relevance: float | None = _D.min_relevance,
        guard: bool = _D.guard,
        guard_threshold: float = _D.guard_threshold,
        guard_action: GuardAction = _D.guard_action,
        lexical_weight: float = _D.lexical_weight,
        fill: bool = _D.fill,
        extractive_prefilter: bool = _D.extractive_prefilter,
        prefilter_tokens: int = _D.prefilter_tokens,
        encoder: str = _D.encoder,
        temperature: float = _D.temperature,
        cache_size: int = _D.cache_size,
        cache_path: str | None = _D.cache_path,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        self.config = AbstractiveConfig(
            generator=generator,
            prompt=prompt,
            max_summary_words=max_summary_words,
            min_summary_words=min_summary_words,
            tokens_per_word=tokens_per_word,
            sentinel=sentinel,
            min_relevance=min_relevance,
            guard=guard,
            guard_threshold=guard_threshold,
            guard_action=guard_action,
            lexical_weight=lexical_weight,
            fill=fill,
            extractive_prefilter=extractive_prefilter,
            prefilter_tokens=prefilter_tokens,
            encoder=encoder,
            temperature=temperature,
            cache_size=cache_size,
            cache_path=cache_path,
        )
        if cache_path:
            self.cache = file_cache(cache_path)
        else:
            self.cache = SHARED_CACHE if cache_size else SummaryCache(0)
        self._prefilter = ExtractiveCompressor(
            encoder, tokenizer=tokenizer, min_relevance=min_relevance
        )

    @classmethod
    def from_config(
        cls, config: AbstractiveConfig, *, tokenizer: str = DEFAULT_COUNTER
    ) -> AbstractiveCompressor:
        """A compressor with the settings of ``config``."""
        return cls(**config.to_params(), tokenizer=tokenizer)

    def __getattr__(self, name: str) -> Any:
        # The settings, read-only: ``compressor.sentinel`` is ``compressor.config.sentinel``.
        config = self.__dict__.get("config")
        if config is not None and name in _SETTINGS:
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def params(self) -> dict[str, Any]:
        return {**super().params(), **self.config.to_params()}

    @property
    def generator_spec(self) -> dict[str, Any] | str:
        return self.config.generator_spec

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
        threshold = self.config.min_relevance
        if threshold is not None and relevance is not None and relevance < threshold:
            return MethodOutput([], {"augmented": False, "relevance": relevance})
        if not sources:
            return MethodOutput([], {"augmented": False})
        with request.timer("must_keep"):
            forced = self._must_keep(request)
        room = request.limit - sum(request.count(s.text) for s in forced)
        info: dict[str, Any] = {"augmented": True, "relevance": relevance}
        if forced and room <= 0:  # must-keep sentences take the whole budget
            return MethodOutput(assemble(request, forced, [], sources, scores), info)
        words = self._summary_words(request, sources, room)
        if words is None:  # no summary fits: the best source sentence, cut by the base
            best = [GuardedSentence(sources[0].text, 0, 1.0, replaced=True)]
            return MethodOutput(
                assemble(request, forced, best, sources, scores),
                {**info, "summary": "", "fallback": "extractive"},
            )
        with request.timer("generate"):
            draft = self._summarize(request, sources, words)
        info.update(summary=draft.text, cached=draft.cached, words_asked=words)
        if is_sentinel(draft.text, self.config.sentinel):
            kept = assemble(request, forced, [], sources, scores)
            return MethodOutput(kept, {**info, "augmented": bool(kept), "sentinel": True})
        claims = sentences(draft.text)
        if not draft.complete and len(claims) > 1:
            claims = claims[:-1]  # cut off by max_tokens mid-sentence
        with request.timer("guard"):
            report = guard(
                claims,
                sources,
                get_bi_encoder(self.config.encoder).encode,
                threshold=self.config.guard_threshold,
                action=self.config.guard_action,
                lexical_weight=self.config.lexical_weight,
                enabled=self.config.guard,
            )
        info["guard"] = report.counts()
        fitted = fit(request, list(report.sentences), room)
        info["sentences_kept"] = len(fitted)
        if self.config.fill:
            fitted = fill(request, fitted, sources, room)
            info["sentences_filled"] = len(fitted) - info["sentences_kept"]
        return MethodOutput(assemble(request, forced, fitted, sources, scores), info)

    def _sources(
        self, request: Request
    ) -> tuple[list[SourceSentence], dict[int, float], float | None]:
        """Source sentences, most relevant document first, with document scores."""
        if not self.config.extractive_prefilter:
            picked: list[SourceSentence] = []
            used = 0
            for i, doc in enumerate(request.documents):
                for span in segment(doc.text)[:8]:
                    text = doc.text[span.start : span.end]
                    used += request.count(text)
                    if used > self.config.prefilter_tokens and picked:
                        return picked, {}, None
                    picked.append(SourceSentence(text, i, span.start, span.end))
            return picked, {}, None
        budget = Budget(tokens=self.config.prefilter_tokens)
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
        config = self.config
        return summary_words(
            request, sources, room, config.min_summary_words, config.max_summary_words
        )

    def _render(self, query: str, sources: list[SourceSentence], words: int) -> str:
        return render_prompt(self.config.prompt, query, sources, words, self.config.sentinel)

    def _summarize(self, request: Request, sources: list[SourceSentence], words: int) -> Draft:
        prompt = self._render(request.query, sources, words)
        temperature = self.config.temperature
        max_tokens = max(8, math.ceil(words * self.config.tokens_per_word))
        generator = self._generator()
        key = summary_key(
            generator=_cache_identity(generator),
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        raw = self.cache.get(key)
        cached = raw is not None
        if raw is None:
            generation = generator.generate(
                [{"role": "user", "content": prompt}],
                max_tokens=max_tokens,
                temperature=temperature,
            )
            raw = str(generation.text)
            if temperature == 0.0:
                self.cache.put(key, raw)
        return Draft.of(raw, cached)


_SETTINGS = frozenset(f.name for f in dataclasses.fields(AbstractiveConfig))
