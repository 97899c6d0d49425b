"""The abstractive compressor's settings: one frozen, validated record.

:class:`~ragzip.compressors.abstractive.AbstractiveCompressor` takes the same settings as
constructor keywords (the registry spec is those keywords); it keeps them here, so the
defaults and the checks are written once.

Example:
    >>> config = AbstractiveConfig(max_summary_words=32, guard_action="drop")
    >>> AbstractiveCompressor.from_config(config, tokenizer="words")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ragzip.compressors.abstractive.parsing import DEFAULT_SENTINEL
from ragzip.errors import ConfigError

__all__ = ["DEFAULT_GENERATOR", "DEFAULT_PROMPT", "AbstractiveConfig", "GuardAction"]

DEFAULT_GENERATOR: dict[str, Any] = {"type": "transformers", "params": {"model": "smollm2-135m"}}
DEFAULT_PROMPT = (
    "Read the facts below and write a short summary, in at most {words} words, of the facts "
    "that help answer the question. Copy names, numbers and dates exactly. If no fact helps "
    "answer the question, reply {sentinel}.\n\n"
    "Facts:\n{documents}\n\n"
    "Question: {query}\n"
    "Summary:"
)

GuardAction = Literal["replace", "drop"]


@dataclass(frozen=True)
class AbstractiveConfig:
    """How the abstractive compressor prefilters, summarises, guards and caches.

    The fields, in the constructor's order, come in four groups: what writes the summary
    (``generator``, ``prompt``, the word and token limits, ``sentinel``, ``temperature``), what
    it reads (``min_relevance``, ``extractive_prefilter``, ``prefilter_tokens``, ``encoder``),
    what is kept of it (``guard`` and its settings, ``fill``) and where summaries are kept
    (``cache_size``, ``cache_path``).

    Attributes:
        generator: Generator spec (``{"type": ..., "params": ...}``) or name; ``None`` is the
            local SmolLM2-135M-Instruct (:data:`DEFAULT_GENERATOR`). ``{"type": "openai",
            "params": {"base_url": ..., "model": ...}}`` uses any OpenAI-compatible server
            (vLLM in production).
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
        prefilter_tokens: Tokens (of the compressor's tokenizer) of source sentences the
            generator reads.
        encoder: Bi-encoder of the prefilter and the guard.
        temperature: Generation temperature (0 is greedy and deterministic).
        cache_size: Summaries kept in the process-wide cache (0 disables caching).
        cache_path: A JSON-lines file that keeps summaries across processes (evaluations).

    Raises:
        ConfigError: the prompt lacks ``{documents}`` or ``{words}``, or a number is out of
            range.
    """

    generator: str | dict[str, Any] | None = None
    prompt: str = DEFAULT_PROMPT
    max_summary_words: int = 64
    min_summary_words: int = 8
    tokens_per_word: float = 1.6
    sentinel: str = DEFAULT_SENTINEL
    min_relevance: float | None = None
    guard: bool = True
    guard_threshold: float = 0.6
    guard_action: GuardAction = "replace"
    lexical_weight: float = 0.6
    fill: bool = False
    extractive_prefilter: bool = True
    prefilter_tokens: int = 200
    encoder: str = "minilm"
    temperature: float = 0.0
    cache_size: int = 4096
    cache_path: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.generator, Mapping):
            object.__setattr__(self, "generator", dict(self.generator))  # the caller's stays
        for field in ("{documents}", "{words}"):
            if field not in self.prompt:
                raise ConfigError(f"prompt must contain {field}; got {self.prompt[:80]!r}")
        if self.guard_action not in ("replace", "drop"):
            raise ConfigError(
                f"guard_action must be 'replace' or 'drop', got {self.guard_action!r}"
            )
        if not 0.0 <= self.guard_threshold <= 1.0 or not 0.0 <= self.lexical_weight <= 1.0:
            raise ConfigError("guard_threshold and lexical_weight must lie in [0, 1]")
        if self.min_summary_words < 1 or self.max_summary_words < self.min_summary_words:
            raise ConfigError("need 1 <= min_summary_words <= max_summary_words")
        if self.prefilter_tokens < 1 or self.tokens_per_word <= 0:
            raise ConfigError("prefilter_tokens and tokens_per_word must be positive")

    @property
    def generator_spec(self) -> dict[str, Any] | str:
        """The generator spec, :data:`DEFAULT_GENERATOR` when none was given."""
        return self.generator if self.generator is not None else DEFAULT_GENERATOR

    def to_params(self) -> dict[str, Any]:
        """The settings as constructor keywords, in the constructor's order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
