"""naver's Provence context pruners (and XProvence), loaded by hub id or local path.

A Provence checkpoint is a cross-encoder reranker with a second head: it reads
``question [SEP] passage``, scores the passage (the reranking head, a logit on the pooled first
token) and marks every token keep or drop (the pruning head); a sentence is kept when the mean
keep probability of its tokens exceeds ``threshold``. The checkpoint ships its own model code
(``modeling_provence.py``, named by ``auto_map`` in its ``config.json``) with a
``process(question, context, title=..., threshold=..., always_select_title=..., ...)`` method
that returns ``{"pruned_context": ..., "reranking_score": ...}``, so loading it runs code from
the checkpoint: ragzip only does so when asked with ``trust_remote_code=True``.

``process`` returns the kept sentences as the tokenizer decodes them, which can differ from the
source (case, spacing, characters outside the vocabulary). :class:`ProvenceModel` maps them back
to character spans of the passage and returns the original text of those sentences.

Known checkpoints: ``naver/provence-reranker-debertav3-v1`` (English, DeBERTa-v3-large, 512
tokens per block) and ``naver/xprovence-reranker-bgem3-v1``/``-v2`` (multilingual, BGE-M3).
Their code splits sentences with ``nltk`` (``pip install nltk``); their model cards state a
non-commercial licence (CC BY-NC 4.0): check it before use.

Example:
    >>> model = ProvenceModel("naver/provence-reranker-debertav3-v1", trust_remote_code=True)
    >>> [(p.score, p.text) for p in model.prune("Who wrote Hamlet?", passages)]
"""

from __future__ import annotations

import inspect
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ragzip._optional import require
from ragzip.errors import ConfigError, MissingDependencyError, ModelNotFoundError
from ragzip.models import normalize_model_name
from ragzip.models_cache import shared_model
from ragzip.text import scrub, segment
from ragzip.types import Span

__all__ = ["DEFAULT_PROVENCE", "ProvenceModel", "PrunedPassage", "kept_spans"]

DEFAULT_PROVENCE = "naver/provence-reranker-debertav3-v1"
# Arguments of process() ragzip sets; a checkpoint whose process() lacks one is not sent it.
_PROCESS_ARGS = (
    "title",
    "threshold",
    "always_select_title",
    "batch_size",
    "reorder",
    "enable_warnings",
)
_SLACK = 8  # folded characters a kept sentence may start after the previous one ended
_FUZZY = 0.8  # share of a sentence's folded characters found in the output to count as kept


@dataclass(frozen=True)
class PrunedPassage:
    """What a Provence model keeps of one passage.

    Attributes:
        score: The reranking score (a logit: higher is more relevant; not a probability).
            ``-inf`` for a blank passage, which is not sent to the model.
        text: The kept sentences as they are in the passage, joined by single spaces.
        spans: Character spans of the kept sentences in the passage, in order.
        pruned_text: The model's own output (decoded tokens; may differ from the source).
    """

    score: float
    text: str
    spans: tuple[Span, ...] = ()
    pruned_text: str = ""


@dataclass(frozen=True)
class _Loaded:
    """A loaded checkpoint, the process() arguments it accepts, and the lock that serializes
    calls into its code (remote code is not known to be thread-safe)."""

    model: Any
    accepts: frozenset[str]
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)


class ProvenceModel:
    """Scores and prunes passages for a question with a Provence checkpoint.

    Loads on first use (or :meth:`warm_up`), once per process for a given model and device.

    Args:
        model: Hub id (``naver/provence-reranker-debertav3-v1``) or a local directory.
        trust_remote_code: Must be ``True``: the checkpoint's own Python code is imported and
            run to build the model. Only set it for checkpoints whose code you trust.
        threshold: Keep-probability a sentence needs to be kept (0..1). Provence's authors
            suggest 0.1 (conservative, the default) to 0.5 (prunes more).
        always_select_title: Keep the title (when titles are given) whenever any sentence is
            kept, as the model card recommends for Wikipedia-like passages.
        device: ``"cpu"``, ``"cuda"``... or ``None`` for CUDA when available.
        batch_size: Passages per forward pass inside ``process``.

    Raises:
        ConfigError: ``trust_remote_code`` is not set, or an argument is out of range.

    Example:
        >>> model = ProvenceModel("naver/provence-reranker-debertav3-v1", trust_remote_code=True)
        >>> result = model.prune("What goes on the bottom of shepherd's pie?", [passage])[0]
        >>> result.score, result.text, result.spans
    """

    def __init__(
        self,
        model: str = DEFAULT_PROVENCE,
        *,
        trust_remote_code: bool = False,
        threshold: float = 0.1,
        always_select_title: bool = False,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        name = normalize_model_name(model)
        if trust_remote_code is not True:
            raise ConfigError(
                f"loading the Provence checkpoint {name!r} imports and runs the Python code it "
                "ships (its modeling file, named by auto_map in config.json); ragzip does that "
                "only when asked: pass trust_remote_code=True (in a spec: "
                '{"trust_remote_code": true}) once you have read that code and trust it'
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.model_name = name
        self.trust_remote_code = True
        self.threshold = float(threshold)
        self.always_select_title = bool(always_select_title)
        self.device = device
        self.batch_size = batch_size
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def _load(self) -> _Loaded:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    device = self.device
                    self._loaded = shared_model(
                        "provence",
                        self.model_name,
                        lambda name: _load_checkpoint(name, device),
                        settings=(device,),
                    )
        return self._loaded

    def warm_up(self) -> None:
        """Loads the checkpoint now instead of on the first call."""
        self._load()

    def prune(
        self,
        question: str,
        passages: Sequence[str],
        titles: Sequence[str] | None = None,
        sentences: Sequence[Sequence[Span]] | None = None,
    ) -> list[PrunedPassage]:
        """One :class:`PrunedPassage` per passage, in order.

        Args:
            question: The question the kept sentences must serve (may be empty).
            passages: Passage texts; blank ones are not sent and come back empty.
            titles: Optional title per passage, read by the model as context (never part of
                the kept text or spans).
            sentences: Optional sentence spans per passage, the units reported kept or not
                (default: :func:`ragzip.text.segment`); kept spans are taken from these.

        Raises:
            ConfigError: ``titles`` or ``sentences`` has another length than ``passages``,
                or the checkpoint's ``process`` does not return what Provence returns.
            ModelNotFoundError: No checkpoint at the path, or the hub id cannot be fetched.
            MissingDependencyError: torch, transformers or a package the checkpoint's code
                imports is missing.
        """
        if titles is not None and len(titles) != len(passages):
            raise ConfigError("titles and passages must have the same length")
        if sentences is not None and len(sentences) != len(passages):
            raise ConfigError("sentences and passages must have the same length")
        results = [PrunedPassage(float("-inf"), "") for _ in passages]
        live = [i for i, p in enumerate(passages) if p.strip()]
        if not live:
            return results
        loaded = self._load()
        heads = [str(titles[i] or "") for i in live] if titles is not None else []
        if not any(heads):
            heads = []
        wanted: dict[str, Any] = {
            "title": [[scrub(h) for h in heads]] if heads else None,
            "threshold": self.threshold,
            "always_select_title": self.always_select_title and bool(heads),
            "batch_size": self.batch_size,
            "reorder": False,
            "enable_warnings": False,
        }
        kwargs = {k: v for k, v in wanted.items() if k in loaded.accepts}
        torch = require("torch", "Provence models")
        with loaded.lock, torch.inference_mode():
            output = loaded.model.process(
                [scrub(question)], [[scrub(passages[i]) for i in live]], **kwargs
            )
        pruned, scores = _unpack(output, len(live), self.model_name)
        for k, i in enumerate(live):
            units = sentences[i] if sentences is not None else None
            spans = kept_spans(passages[i], pruned[k], heads[k] if heads else "", units)
            text = " ".join(passages[i][s.start : s.end] for s in spans)
            results[i] = PrunedPassage(scores[k], text, spans, pruned[k])
        return results


def kept_spans(
    passage: str, pruned: str, title: str = "", sentences: Sequence[Span] | None = None
) -> tuple[Span, ...]:
    """The spans of the sentences of ``passage`` that ``pruned`` (a model's decoded output of
    kept sentences, in order, after ``title`` when the model read one) contains.

    ``sentences`` are the candidate spans, in order (default: :func:`ragzip.text.segment`).

    Both sides are compared folded: letters and digits only, accents removed, case-folded, so
    tokenizer round trips (lower-casing, spacing around punctuation) do not matter. A sentence
    is kept when its folded text starts where the previous kept one ended (within a few
    characters) and at least 80% of it is found there, so characters the tokenizer lost (out
    of its vocabulary) do not drop a sentence.
    """
    output = _fold(pruned)
    if not output:
        return ()
    cursor = 0
    folded_title = _fold(title)
    if folded_title and output.startswith(folded_title):
        cursor = len(folded_title)
    kept: list[Span] = []
    for span in segment(passage) if sentences is None else sentences:
        sentence = _fold(passage[span.start : span.end])
        if not sentence or cursor >= len(output):
            continue
        end = _match(sentence, output, cursor)
        if end is not None:
            kept.append(span)
            cursor = end
    return tuple(kept)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum()).casefold()


def _match(sentence: str, output: str, cursor: int) -> int | None:
    """Where ``sentence`` ends in ``output`` if it is found at ``cursor``, else ``None``."""
    if output.startswith(sentence, cursor):
        return cursor + len(sentence)
    window = output[cursor : cursor + len(sentence) + _SLACK]
    blocks = [
        b
        for b in SequenceMatcher(None, sentence, window, autojunk=False).get_matching_blocks()
        if b.size
    ]
    if not blocks or blocks[0].b > _SLACK:
        return None
    if sum(b.size for b in blocks) < _FUZZY * len(sentence):
        return None
    return cursor + blocks[-1].b + blocks[-1].size


def _unpack(output: object, n: int, name: str) -> tuple[list[str], list[float]]:
    """The pruned texts and scores of one question's ``n`` passages from ``process``'s output
    (``[[...]]`` for a list of questions, ``[...]`` or scalars for some checkpoints)."""
    if not isinstance(output, Mapping) or not {"pruned_context", "reranking_score"} <= set(output):
        raise ConfigError(
            f"{name}: process() returned {type(output).__name__}, not a dict with "
            "'pruned_context' and 'reranking_score': is it a Provence checkpoint?"
        )
    texts = _strings(output["pruned_context"])
    scores = _floats(output["reranking_score"])
    if len(texts) != n or len(scores) != n:
        raise ConfigError(
            f"{name}: process() returned {len(texts)} texts and {len(scores)} scores "
            f"for {n} passages"
        )
    return texts, scores


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return ["" if value is None else str(value)]


def _floats(value: object) -> list[float]:
    if isinstance(value, list | tuple):
        return [f for v in value for f in _floats(v)]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist):
        listed = tolist()
        return _floats(listed) if isinstance(listed, list) else [float(listed)]
    return [float(value)]  # type: ignore[arg-type]


def _locate(name: str) -> str:
    """A local directory, or ``name`` as a hub id when it reads as one.

    Raises:
        ModelNotFoundError: ``name`` is a path (absolute, relative or with several
            components) with nothing there.
    """
    path = Path(name).expanduser()
    if path.exists():
        return str(path)
    if name.startswith(("/", ".", "~", "\\")) or name.count("/") > 1 or "\\" in name:
        raise ModelNotFoundError(
            f"no Provence checkpoint at {path}: pass a directory holding its config.json, "
            f"modeling code, weights and tokenizer, or a hub id such as {DEFAULT_PROVENCE!r}"
        )
    return name


def _load_checkpoint(name: str, device: str | None) -> _Loaded:
    """Builds the model from the checkpoint's own code (the caller opted in to running it)."""
    torch = require("torch", "Provence models")
    transformers = require("transformers", "Provence models")
    path = _locate(name)
    try:
        model = transformers.AutoModel.from_pretrained(
            path, trust_remote_code=True, dtype=torch.float32
        )
    except ImportError as exc:
        raise MissingDependencyError(
            f"the code shipped with {name} imports a package that is missing ({exc}); "
            "install it (Provence's needs nltk: pip install nltk) and retry"
        ) from exc
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot load the Provence checkpoint {name!r} ({exc}); without internet, "
            "download it elsewhere and pass its local directory"
        ) from exc
    process: Callable[..., Any] | None = getattr(model, "process", None)
    if not callable(process):
        raise ConfigError(
            f"{name} loads as {type(model).__name__}, which has no process(question, context, "
            "...) method: it is not a Provence checkpoint"
        )
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    return _Loaded(model, _accepted(process))


def _accepted(process: Callable[..., Any]) -> frozenset[str]:
    """The arguments of :data:`_PROCESS_ARGS` that ``process`` takes."""
    try:
        parameters = inspect.signature(process).parameters.values()
    except (TypeError, ValueError):
        return frozenset(_PROCESS_ARGS)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return frozenset(_PROCESS_ARGS)
    names = {p.name for p in parameters}
    return frozenset(a for a in _PROCESS_ARGS if a in names)
