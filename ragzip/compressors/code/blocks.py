"""The fine stage's units: a chunk's header, and its body in blocks of a few lines.

Body blocks end at blank lines, after ``max_block_lines`` lines and, optionally, before lines
where a language model's perplexity peaks (LongCodeZip's block boundaries). Prose (a document
that is not code) is split into sentences instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ragzip.compressors.code.chunking import Chunk
from ragzip.compressors.code.layout import SourceLines
from ragzip.text import segment

__all__ = ["Spans", "blocks", "header_lines_end", "perplexity_peaks"]

Spans = list[tuple[int, int]]


def blocks(
    doc: SourceLines, chunk: Chunk, max_block_lines: int, peaks: set[int] | None = None
) -> tuple[Spans, Spans]:
    """(header spans, body block spans) of a chunk, as character spans.

    The header is a definition's decorators, comments and signature. Body blocks end at blank
    lines, after ``max_block_lines`` lines, and before each line number in ``peaks``.
    """
    if not doc.is_code:
        start, end = doc.span(chunk.start, chunk.end)
        spans = [(start + s.start, start + s.end) for s in segment(doc.text[start:end])]
        return [], spans
    header_end = header_lines_end(doc, chunk)
    header = [doc.span(chunk.start, header_end)] if header_end > chunk.start else []
    body: Spans = []
    peaks = peaks or set()
    start = header_end
    for k in range(header_end, chunk.end + 1):
        blank = k < chunk.end and not doc.lines[k].strip()
        peak = k in peaks and k > start
        if k == chunk.end or blank or peak or k - start >= max_block_lines:
            if any(ln.strip() for ln in doc.lines[start:k]):
                first = next(x for x in range(start, k) if doc.lines[x].strip())
                body.append(doc.span(first, k))
            start = k + 1 if blank else k
    return header, body


def header_lines_end(doc: SourceLines, chunk: Chunk) -> int:
    """The line after a definition's header (``chunk.start`` for chunks without one)."""
    header_end = chunk.start
    if chunk.is_definition or chunk.kind == "class":
        for k in range(chunk.start, min(chunk.end, chunk.start + 12)):
            stripped = doc.lines[k].strip()
            header_end = k + 1
            if stripped.startswith(("@", "#", "//", "/*", "*")) or not stripped:
                continue
            if stripped.endswith((":", "{", "}", ";")) or "{" in stripped:
                break
    return header_end


def perplexity_peaks(lm: Any, doc: SourceLines, context: int, start: int, end: int) -> set[int]:
    """Lines in ``[start, end)`` where the LM's perplexity peaks (block boundaries).

    A peak is higher than both neighbours and than the lines' mean by half a standard
    deviation; lines from ``context`` on (the chunk's header) are read first. ``lm`` has
    ``line_surprisal(lines)`` (:class:`~ragzip.compressors.code.scoring.LMScorer`).
    """
    nll = lm.line_surprisal(doc.lines[context:end])[start - context :]
    filled = np.where(np.isnan(nll), -np.inf, nll)
    known = nll[~np.isnan(nll)]
    if known.size < 3:
        return set()
    level = float(known.mean() + 0.5 * known.std())
    peaks = set()
    for k in range(1, len(filled) - 1):
        if filled[k] > level and filled[k] > filled[k - 1] and filled[k] >= filled[k + 1]:
            peaks.add(start + k)
    return peaks
