"""Text utilities that need no downloaded data: decoding and sentence segmentation.

The segmenter is rule-based and returns character spans into the original text, so every kept
sentence can be traced back to where it came from. It handles paragraphs and list items (one
unit per line), abbreviations and initials, decimals and version numbers, code-like lines, and
over-long sentences (split at clause boundaries, then at word boundaries).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

import numpy as np

from ragzip.types import Span

__all__ = ["decode_text", "scrub", "segment", "sentences", "term_overlap"]

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "vs",
        "etc",
        "al",
        "approx",
        "dept",
        "est",
        "fig",
        "figs",
        "no",
        "nos",
        "vol",
        "vols",
        "ed",
        "eds",
        "rev",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "cmdr",
        "gov",
        "sen",
        "rep",
        "pres",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thurs",
        "fri",
        "sat",
        "sun",
        "e.g",
        "i.e",
        "cf",
        "viz",
        "ca",
        "op",
        "pp",
        "p",
        "ch",
        "sec",
        "art",
        "para",
        "ref",
        "dist",
        "univ",
        "assn",
        "bros",
        "est",
        "govt",
        "natl",
        "intl",
        "u.s",
        "u.k",
        "u.n",
    ]
)
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"([.!?\u2026]+)([\"'\u201d\u2019)\]]*)(\s+)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022\u25cf>]|\d{1,3}[.)]|[a-zA-Z][.)]|#{1,6})\s+")
_CLAUSE = re.compile(r"(?<=[;:,\u2014])\s+|\s+(?=\u2014)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_CODE_CHARS = re.compile(r"[{}();=<>\[\]]")


def decode_text(data: bytes | str, encoding: str = "utf-8") -> str:
    """Decodes bytes, replacing invalid sequences with U+FFFD rather than failing."""
    if isinstance(data, str):
        return data
    return data.decode(encoding, errors="replace")


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at ``dot`` ends an abbreviation or an initial."""
    start = dot
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    word = text[start:dot].lower().rstrip(".")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # initials: "J. R. R. Tolkien"
        return True
    return word in _ABBREVIATIONS


def _next_starts_sentence(text: str, pos: int) -> bool:
    """Whether the character at ``pos`` can open a sentence."""
    if pos >= len(text):
        return True
    ch = text[pos]
    return ch.isupper() or ch.isdigit() or ch in "\"'\u201c\u2018([" or not ch.isalpha()


def _split_paragraph(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        punct_end = match.end(2)
        after = match.end(3)
        if match.group(1) == "." and _is_abbreviation(text, match.start(1)):
            continue
        if not _next_starts_sentence(text, after):
            continue
        if punct_end > cursor:
            yield cursor, punct_end
        cursor = after
    if cursor < end:
        yield cursor, end


def _looks_like_code(lines: list[str]) -> bool:
    code = sum(1 for line in lines if _CODE_CHARS.search(line) and not line.rstrip().endswith("."))
    return len(lines) >= 2 and code >= len(lines) / 2


def _paragraphs(text: str) -> Iterator[tuple[int, int, bool]]:
    """Yields (start, end, line_mode) blocks separated by blank lines."""
    cursor = 0
    bounds = []
    for sep in _PARAGRAPH_BREAK.finditer(text):
        bounds.append((cursor, sep.start()))
        cursor = sep.end()
    bounds.append((cursor, len(text)))
    for raw_start, raw_end in bounds:
        raw = text[raw_start:raw_end]
        body = raw.strip()
        if not body:
            continue
        block_start = raw_start + (len(raw) - len(raw.lstrip()))
        lines = body.split("\n")
        line_mode = len(lines) > 1 and (
            _looks_like_code(lines) or sum(bool(_LIST_ITEM.match(ln)) for ln in lines) >= 2
        )
        if line_mode:
            offset = block_start
            for line in lines:
                stripped = line.strip()
                if stripped:
                    s = offset + line.index(stripped)
                    yield s, s + len(stripped), True
                offset += len(line) + 1
        else:
            yield block_start, block_start + len(body), False


def _split_long(text: str, start: int, end: int, max_words: int) -> Iterator[tuple[int, int]]:
    """Splits a span of more than ``max_words`` words at clauses, then at word boundaries."""
    words = list(re.finditer(r"\S+", text[start:end]))
    if len(words) <= max_words:
        yield start, end
        return
    # Prefer clause boundaries close to the limit.
    pieces: list[tuple[int, int]] = []
    cursor = start
    for match in _CLAUSE.finditer(text, start, end):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, end))
    current: tuple[int, int] | None = None
    for ps, pe in pieces:
        if current is not None and _words(text, current[0], pe) <= max_words:
            current = (current[0], pe)
            continue
        if current is not None:
            yield from _hard_split(text, current[0], current[1], max_words)
        current = (ps, pe)
    if current is not None:
        yield from _hard_split(text, current[0], current[1], max_words)


def _words(text: str, start: int, end: int) -> int:
    return len(text[start:end].split())


def _hard_split(text: str, start: int, end: int, max_words: int) -> Iterator[tuple[int, int]]:
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
    for i in range(0, len(words), max_words):
        chunk = words[i : i + max_words]
        yield chunk[0][0], chunk[-1][1]


def segment(text: str, max_words: int = 60) -> list[Span]:
    """Splits ``text`` into sentence spans.

    Args:
        text: Any text; empty or whitespace-only text gives no spans.
        max_words: Sentences longer than this are split at clause, then word, boundaries.

    Returns:
        Spans in order; ``text[span.start:span.end]`` is a sentence without surrounding space.
    """
    spans: list[Span] = []
    for start, end, line_mode in _paragraphs(text):
        parts = [(start, end)] if line_mode else _split_paragraph(text, start, end)
        for ps, pe in parts:
            for s, e in _split_long(text, ps, pe, max_words):
                raw = text[s:e]
                stripped = raw.strip()
                if stripped:
                    s += len(raw) - len(raw.lstrip())
                    spans.append(Span(s, s + len(stripped)))
    return spans


def sentences(text: str, max_words: int = 60) -> list[str]:
    """The sentences of ``text`` as strings (see :func:`segment`)."""
    return [text[s.start : s.end] for s in segment(text, max_words)]


_SURROGATES = re.compile("[\ud800-\udfff]")
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "who",
        "what",
        "when",
        "where",
        "which",
        "why",
        "how",
        "did",
        "does",
        "do",
        "many",
        "much",
        "whose",
        "whom",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "his",
        "her",
        "their",
        "they",
        "he",
        "she",
        "we",
        "you",
        "i",
        "me",
        "my",
        "our",
        "your",
        "not",
        "no",
    ]
)


def scrub(text: str) -> str:
    """Replaces lone surrogates (legal in Python and JSON, rejected by tokenizers) with U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def term_overlap(query: str, texts: Sequence[str]) -> np.ndarray:
    """IDF-weighted share of the query's content words each text contains (0..1)."""
    terms = {w for w in _WORD.findall(query.lower()) if w not in _STOPWORDS}
    if not terms or not texts:
        return np.zeros(len(texts), dtype=np.float64)
    present = [terms.intersection(_WORD.findall(t.lower())) for t in texts]
    df = {w: sum(w in p for p in present) for w in terms}
    idf = {w: math.log(1 + len(texts) / (df[w] + 0.5)) for w in terms}
    total = sum(idf.values())
    return np.array([sum(idf[w] for w in p) / total for p in present], dtype=np.float64)
