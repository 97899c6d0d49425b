"""Asking for a summary: how many words, the prompt, and what came back before the guard."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragzip.compressors.abstractive.guard import SourceSentence
from ragzip.compressors.abstractive.parsing import clean_summary, is_sentinel
from ragzip.compressors.base import Request
from ragzip.text import scrub

__all__ = ["LENGTHS", "Draft", "render_prompt", "summary_words"]

# Summary lengths are rounded down to these, so nearby budgets share cached summaries.
LENGTHS = (12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_TERMINAL = re.compile(r"[.!?][\"')\]]*\s*$")


@dataclass(frozen=True)
class Draft:
    """The summary of one request before the guard."""

    text: str  # cleaned summary
    raw: str
    cached: bool
    complete: bool  # the generator ended its last sentence

    @classmethod
    def of(cls, raw: str, cached: bool) -> Draft:
        """The draft of a raw generation: cleaned, and whether its last sentence ended."""
        complete = bool(_TERMINAL.search(raw.strip())) or is_sentinel(clean_summary(raw))
        return cls(clean_summary(raw), raw, cached, complete)


def summary_words(
    request: Request,
    sources: list[SourceSentence],
    room: int,
    min_words: int,
    max_words: int,
) -> int | None:
    """Words to ask for: ``room`` tokens in words, at most ``max_words``, rounded down to one
    of :data:`LENGTHS`; ``None`` below ``min_words`` (no summary fits)."""
    sample = " ".join(s.text for s in sources)
    units = max(request.count(sample), 1)
    words = room * len(sample.split()) / units
    words = min(words, max_words)
    if words < min_words:
        return None
    fitting = [n for n in LENGTHS if n <= words]
    return fitting[-1] if fitting else int(words)


def render_prompt(
    template: str, query: str, sources: list[SourceSentence], words: int, sentinel: str
) -> str:
    """The prompt: the source sentences as ``- fact`` lines, the question and the length."""
    facts = "\n".join(f"- {s.text}" for s in sources)
    return scrub(
        template.format(
            documents=facts,
            query=query.strip() or "(none: summarise the main facts)",
            words=words,
            sentinel=sentinel,
        )
    )
