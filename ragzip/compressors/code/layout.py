"""A source file as lines, and how kept pieces of it are rendered with elision markers.

The code compressor decides which character spans of a file to keep (:class:`Piece`);
:func:`render` writes them back in their original order, whole lines verbatim, each gap
replaced by a comment in the file's language (``# ... 12 lines omitted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ragzip.compressors.code.chunking import Chunk, chunk_code, comment_prefix, detect_language
from ragzip.types import Span

__all__ = [
    "Elision",
    "Piece",
    "SourceLines",
    "chunk_text",
    "has_text",
    "marker",
    "prepare",
    "render",
]

Elision = Literal["count", "short", "none"]


@dataclass
class SourceLines:
    """One document split into lines and chunks, with each line's character offset."""

    text: str
    language: str | None
    is_code: bool
    offsets: list[int]  # character offset of each line start, plus len(text)
    lines: list[str]
    chunks: list[Chunk]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Character span of lines ``[start, end)`` without the final line break."""
        return self.offsets[start], self.offsets[start] + len(
            self.text[self.offsets[start] : self.offsets[end]].rstrip(
                "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
            )
        )


@dataclass(frozen=True)
class Piece:
    """A character span of document ``doc`` to keep, with the priority of its chunk."""

    doc: int
    start: int  # character span
    end: int
    priority: float


def prepare(text: str, metadata: dict[str, object]) -> SourceLines:
    """Splits a document into lines and chunks (blank-line blocks when it is not code)."""
    language = detect_language(text, metadata)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    bare = [ln.rstrip("\r\n") for ln in lines]
    chunks = chunk_code(text, language) if language else chunk_code(text, "text")
    return SourceLines(text, language, language is not None, offsets, bare, chunks)


def has_text(doc: SourceLines, chunk: Chunk) -> bool:
    """Whether ``chunk`` holds anything but blank lines."""
    return any(ln.strip() for ln in doc.lines[chunk.start : chunk.end])


def chunk_text(doc: SourceLines, chunk: Chunk) -> str:
    start, end = doc.span(chunk.start, chunk.end)
    return doc.text[start:end]


def marker(doc: SourceLines, omitted: int, elision: Elision, indent: str = "") -> str:
    """The line standing for ``omitted`` elided lines (``"..."`` in prose)."""
    if elision == "none":
        return ""
    comment = comment_prefix(doc.language)
    if not doc.is_code:
        return "..."
    if elision == "short":
        return f"{indent}{comment} ..."
    return f"{indent}{comment} ... {omitted} lines omitted"


def render(doc: SourceLines, pieces: list[Piece], elision: Elision) -> tuple[str, list[Span]]:
    """The kept pieces in file order, adjacent ones merged, gaps marked; and their spans."""
    spans: list[list[int]] = []
    for p in sorted(pieces, key=lambda p: p.start):
        if spans and not doc.text[spans[-1][1] : p.start].strip():
            spans[-1][1] = max(spans[-1][1], p.end)
        else:
            spans.append([p.start, p.end])
    parts: list[str] = []
    position = 0
    sep = "\n" if doc.is_code else " "
    for start, end in spans:
        gap = doc.text[position:start]
        if gap.strip():
            mark = marker(doc, _line_count(gap, position == 0), elision, _indent(doc.text, start))
            if mark:
                parts.append(mark)
        parts.append(doc.text[start:end])
        position = end
    tail = doc.text[position:]
    if tail.strip():
        mark = marker(doc, _line_count(tail, position == 0, True), elision, "")
        if mark:
            parts.append(mark)
    return sep.join(parts), [Span(s, e) for s, e in spans]


def _indent(text: str, start: int) -> str:
    line = text[start : text.find("\n", start) if "\n" in text[start:] else len(text)]
    return line[: len(line) - len(line.lstrip())]


def _line_count(gap: str, leading: bool, trailing: bool = False) -> int:
    """Lines in an omitted gap between two kept line spans (or before the first/after the last)."""
    breaks = gap.count("\n")
    return max(1, breaks + (1 if leading else 0) + (1 if trailing else 0) - 1)
