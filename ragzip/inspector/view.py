"""What a compressor kept, as data a page can draw: the inspector's one view model.

:func:`build_view` turns the input documents and one or more :class:`Run` (a compressor's
result, and optionally the answer it led to) into a plain JSON-able dict. The sidecar's
inspector page (``/ui``) and the HTML report of ``ragzip compress --html`` draw the same dict
with the same script (:mod:`ragzip.inspector.report`), so what a user sees in either place is
computed once, here.

Each document of each run is cut into ``segments``: ``[text, kept]`` pairs that together are
the whole document, ``kept`` true for the characters inside the result's spans. Pieces a
compressor wrote itself (an abstractive summary has no spans) are listed as ``generated``.
``relevance`` and ``budget`` come from the per-document lists a compressor may put in its
result's ``info`` (``document_scores``, ``allocation``: tokens allotted to each document),
else the kept pieces' scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragzip.tokens import get_counter
from ragzip.types import CompressedDocument, CompressionResult, Document, Span, unique_ids

__all__ = ["VIEW_VERSION", "Run", "build_view", "segments"]

VIEW_VERSION = 1


@dataclass(frozen=True)
class Run:
    """One compressor's outcome on the shared input.

    Attributes:
        name: What the user picked (a registered type or a server preset name).
        result: The compression result.
        answer: The generator's answer from this compressed context, if one was asked for.
        answer_seconds: Time the answer took.
    """

    name: str
    result: CompressionResult
    answer: str | None = None
    answer_seconds: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def segments(text: str, spans: Sequence[Span]) -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, kept)`` runs: kept inside ``spans``, dropped outside.

    Overlapping or touching spans merge; spans are clipped to the text. Joining the pieces
    gives ``text`` back.

    Example:
        >>> segments("abcdef", [Span(1, 3)])
        [('a', False), ('bc', True), ('def', False)]
    """
    cuts: list[list[int]] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        start, end = max(0, span.start), min(len(text), span.end)
        if end <= start:
            continue
        if cuts and start <= cuts[-1][1]:
            cuts[-1][1] = max(cuts[-1][1], end)
        else:
            cuts.append([start, end])
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in cuts:
        if start > at:
            out.append((text[at:start], False))
        out.append((text[start:end], True))
        at = end
    if at < len(text):
        out.append((text[at:], False))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _at(values: Any, position: int) -> float | None:
    """``values[position]`` of a per-document list in ``info``, when it is a number."""
    if isinstance(values, Sequence) and not isinstance(values, str) and len(values) > position:
        return _number(values[position])
    return None


def _document(
    doc: Document,
    position: int,
    pieces: Sequence[CompressedDocument],
    count: Callable[[str], int],
    info: Mapping[str, Any],
) -> dict[str, Any]:
    spans = [s for p in pieces for s in p.spans]
    generated = [p.text for p in pieces if not p.spans]
    relevance = _at(info.get("document_scores"), position)
    if relevance is None:
        relevance = max((s for p in pieces if (s := _number(p.score)) is not None), default=None)
    kept_text = [p.text for p in pieces]
    return {
        "id": doc.id,
        "title": doc.title,
        "segments": [[text, kept] for text, kept in segments(doc.text, spans)],
        "generated": generated,
        "kept": bool(pieces),
        "tokens_before": count(doc.text),
        "tokens_after": sum(count(t) for t in kept_text),
        "relevance": relevance,
        "budget": _at(info.get("allocation"), position),
    }


def _run(run: Run, documents: Sequence[Document]) -> dict[str, Any]:
    result = run.result
    count = get_counter(result.tokenizer).count
    by_source = result.by_source()
    summary = result.to_dict()
    return {
        "name": run.name,
        **{k: summary[k] for k in ("compressor", "tokenizer", "tokens_before", "tokens_after")},
        "ratio": summary["ratio"],
        "timings": {k: round(float(v), 6) for k, v in result.timings.items()},
        "documents": [
            _document(doc, i, by_source.get(doc.id, ()), count, result.info)
            for i, doc in enumerate(documents)
        ],
        "answer": run.answer,
        "answer_seconds": run.answer_seconds,
        **dict(run.extra),
    }


def build_view(
    query: str,
    documents: Sequence[Document],
    runs: Sequence[Run],
    *,
    budget: Mapping[str, Any] | None = None,
    full_answer: str | None = None,
    full_answer_seconds: float | None = None,
    title: str = "",
) -> dict[str, Any]:
    """The view of one question's documents under each run.

    Args:
        query: The question.
        documents: The input documents, as given to every compressor.
        runs: One per compressor, in the order to show.
        budget: The budget the runs had (``Budget.to_dict()``), shown in the header.
        full_answer: The answer from the uncompressed context, shown beside each run's answer.
        full_answer_seconds: Time that answer took.
        title: A heading (a report's case name).

    Returns:
        A JSON-able dict (``version``, ``query``, ``budget``, ``runs``, ``full_answer``, ...).
    """
    docs = unique_ids(documents)  # the ids compressors refer to
    return {
        "version": VIEW_VERSION,
        "title": title,
        "query": query,
        "budget": dict(budget or {}),
        "documents": len(docs),
        "runs": [_run(run, docs) for run in runs],
        "full_answer": full_answer,
        "full_answer_seconds": full_answer_seconds,
    }
