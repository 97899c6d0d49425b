"""Provence pruning: a checkpoint reads the question with each passage and keeps the sentences
it judges relevant (Chirkova et al., ICLR 2025; :mod:`ragzip.encoders.provence`).

The model decides how much to keep; the budget is a ceiling. Documents are cut into windows of
whole sentences (about one model block each). When the model keeps more than the budget
holds, documents go by the model's reranking score, best first, each with its kept sentences
in order, and sentences that do not fit are skipped. Sentences holding a must-keep string come
first. When there are more windows than ``max_windows``, those sharing the most query terms
are read and the others dropped, so huge inputs cost a bounded number of forward passes.

Example:
    >>> comp = ProvenceCompressor("naver/provence-reranker-debertav3-v1", trust_remote_code=True)
    >>> comp.compress("Who discovered penicillin?", docs, Budget(tokens=300)).text()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.registry import compressors
from ragzip.encoders.provence import DEFAULT_PROVENCE, ProvenceModel
from ragzip.errors import ConfigError
from ragzip.text import segment, term_overlap
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import CompressedDocument, Span

__all__ = ["ProvenceCompressor"]

_Window = tuple[int, int, int]  # document index, first sentence, end sentence (exclusive)


@compressors.register("provence")
class ProvenceCompressor(BaseCompressor):
    """Keeps the sentences a Provence checkpoint marks relevant, within a token budget.

    Args:
        model: Hub id (``naver/provence-reranker-debertav3-v1``,
            ``naver/xprovence-reranker-bgem3-v1``) or a local directory of a checkpoint.
        trust_remote_code: Must be ``True``: the checkpoint's own code builds the model.
        threshold: Keep-probability a sentence needs (0.1 conservative ... 0.5 aggressive).
        min_score: Documents whose reranking score (a logit) is below this are dropped;
            ``None`` keeps every document the model keeps sentences of.
        window_chars: Most characters per window read by the model (whole sentences; a
            longer sentence is a window of its own).
        max_windows: Most windows read per call; beyond it a lexical pre-filter picks them.
        device: ``"cpu"``, ``"cuda"`` or ``None`` for CUDA when available.
        batch_size: Windows per forward pass.
        tokenizer: Token counter name.

    Raises:
        ConfigError: ``trust_remote_code`` is not set, or an argument is out of range.

    Example:
        >>> comp = ProvenceCompressor(trust_remote_code=True, threshold=0.1)
        >>> result = comp.compress("Who wrote Hamlet?", docs, Budget(ratio=4))
        >>> result.text(), result.documents[0].spans
    """

    name = "provence"
    request_params: ClassVar[frozenset[str]] = frozenset({"min_score", "threshold"})

    def __init__(
        self,
        model: str = DEFAULT_PROVENCE,
        *,
        trust_remote_code: bool = False,
        threshold: float = 0.1,
        min_score: float | None = None,
        window_chars: int = 2000,
        max_windows: int = 64,
        device: str | None = None,
        batch_size: int = 16,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        for label, value, least in (
            ("window_chars", window_chars, 1),
            ("max_windows", max_windows, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{label} must be an integer >= {least}, got {value!r}")
        if min_score is not None and (
            isinstance(min_score, bool) or not isinstance(min_score, int | float)
        ):
            raise ConfigError(f"min_score must be a number or None, got {min_score!r}")
        self.pruner = ProvenceModel(
            model,
            trust_remote_code=trust_remote_code,
            threshold=threshold,
            device=device,
            batch_size=batch_size,
        )
        self.model = self.pruner.model_name
        self.trust_remote_code = trust_remote_code
        self.threshold = self.pruner.threshold
        self.min_score = None if min_score is None else float(min_score)
        self.window_chars = window_chars
        self.max_windows = max_windows
        self.device = device
        self.batch_size = batch_size

    def params(self) -> dict[str, Any]:
        names = (
            "model",
            "trust_remote_code",
            "threshold",
            "min_score",
            "window_chars",
            "max_windows",
            "device",
            "batch_size",
        )
        return {**super().params(), **{n: getattr(self, n) for n in names}}

    def warm_up(self) -> None:
        self.pruner.warm_up()

    def _compress(self, request: Request) -> MethodOutput:
        docs = request.documents
        with request.timer("segment"):
            units = [segment(d.text) for d in docs]
            windows = self._windows(units)
            read = self._pick(request, units, windows)
        passages, sentences = [], []
        for w in read:
            d, lo, hi = windows[w]
            base = units[d][lo].start
            passages.append(docs[d].text[base : units[d][hi - 1].end])
            sentences.append([Span(u.start - base, u.end - base) for u in units[d][lo:hi]])
        with request.timer("provence"):
            results = self.pruner.prune(request.query, passages, sentences=sentences)
        scores: dict[int, float] = {}
        kept: dict[int, list[int]] = {}
        for k, (w, result) in enumerate(zip(read, results, strict=True)):
            d, lo, _ = windows[w]
            scores[d] = max(scores.get(d, float("-inf")), result.score)
            position = {span: lo + i for i, span in enumerate(sentences[k])}
            kept.setdefault(d, []).extend(position[s] for s in result.spans)
        with request.timer("select"):
            chosen = self._select(request, units, scores, kept)
        out = []
        for d, members in sorted(chosen.items()):
            members.sort()
            spans = tuple(units[d][j] for j in members)
            out.append(
                CompressedDocument(
                    text=" ".join(docs[d].text[s.start : s.end] for s in spans),
                    source_id=docs[d].id,
                    spans=spans,
                    score=scores.get(d),
                    metadata=docs[d].metadata,
                )
            )
        info: dict[str, Any] = {
            "model": self.model,
            "threshold": self.threshold,
            "windows_read": len(read),
            "windows_skipped": len(windows) - len(read),
            "sentences_kept": sum(len(m) for m in chosen.values()),
        }
        if scores:
            info["relevance"] = max(scores.values())
        return MethodOutput(out, info)

    def _windows(self, units: Sequence[Sequence[Span]]) -> list[_Window]:
        """Runs of whole sentences of at most ``window_chars`` characters, per document."""
        windows: list[_Window] = []
        for d, spans in enumerate(units):
            lo = 0
            for j in range(1, len(spans)):
                if spans[j].end - spans[lo].start > self.window_chars:
                    windows.append((d, lo, j))
                    lo = j
            if spans:
                windows.append((d, lo, len(spans)))
        return windows

    def _pick(
        self, request: Request, units: Sequence[Sequence[Span]], windows: list[_Window]
    ) -> list[int]:
        """Indices of the windows to read: all of them, or the ``max_windows`` sharing the
        most query terms (IDF-weighted), in input order."""
        if len(windows) <= self.max_windows:
            return list(range(len(windows)))
        texts = [
            request.documents[d].text[units[d][lo].start : units[d][hi - 1].end]
            for d, lo, hi in windows
        ]
        overlap = term_overlap(request.query, texts)
        best = np.argsort(-overlap, kind="stable")[: self.max_windows]
        return sorted(int(i) for i in best)

    def _select(
        self,
        request: Request,
        units: Sequence[Sequence[Span]],
        scores: dict[int, float],
        kept: dict[int, list[int]],
    ) -> dict[int, list[int]]:
        """Sentences within the limit: must-keep ones, then the kept sentences of documents
        by score, best first (a sentence that does not fit is skipped; the first one is
        always taken and the base class cuts it)."""
        limit = request.limit
        chosen: dict[int, list[int]] = {}
        taken: set[tuple[int, int]] = set()
        used = 0
        candidates: list[tuple[int, int]] = []
        if request.budget.keep or request.budget.keep_patterns:
            for d, spans in enumerate(units):
                text = request.documents[d].text
                candidates += [
                    (d, j)
                    for j, s in enumerate(spans)
                    if request.budget.must_keep(text[s.start : s.end])
                ]
        order = sorted(scores, key=lambda d: -scores[d])  # stable: ties keep input order
        for d in order:
            if self.min_score is None or scores[d] >= self.min_score:
                candidates += [(d, j) for j in sorted(set(kept.get(d, ())))]
        for d, j in candidates:
            if used >= limit:
                break
            if (d, j) in taken:
                continue
            span = units[d][j]
            tokens = request.count(request.documents[d].text[span.start : span.end])
            if used + tokens > limit and taken:
                continue
            taken.add((d, j))
            chosen.setdefault(d, []).append(j)
            used += tokens
        return chosen
