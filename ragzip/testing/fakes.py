"""Deterministic fakes for plumbing tests (pipelines, adapters, the contract suite itself).

They need no model and no network. They are not registered in
:data:`ragzip.middleware.registry.compressors`; they exist to exercise the code around a
compressor, never to stand in for the quality of a real method.
"""

from __future__ import annotations

import re

from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.text import segment
from ragzip.types import CompressedDocument, Span

__all__ = ["KeywordCompressor"]

_WORD = re.compile(r"\w+")
_STOPWORD_TEXT = (
    "a an and are as at be by did do does for from how in is it its of on or the to was were "
    "what when where which who whom why with"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def keywords(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stopwords and one-letter words."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOPWORDS}


class KeywordCompressor(BaseCompressor):
    """Keeps the sentences that share the most words with the query, within the budget.

    Sentences containing must-keep strings or patterns come first; then sentences by the
    number of query words they contain (ties in input order) while they fit. Each kept
    document carries its sentences' spans and, as score, its best sentence's overlap.

    Args:
        min_overlap: Sentences sharing fewer query words are never kept (unless must-keep).
        max_sentence_words: Longer sentences are split (see :func:`ragzip.text.segment`).
        tokenizer: Token counter name.

    Example:
        >>> KeywordCompressor(tokenizer="words").compress("capital of France", docs, 4).text()
    """

    name = "keyword-fake"

    def __init__(
        self,
        *,
        min_overlap: int = 1,
        max_sentence_words: int = 60,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        self.min_overlap = min_overlap
        self.max_sentence_words = max_sentence_words

    def params(self) -> dict[str, object]:
        return {
            **super().params(),
            "min_overlap": self.min_overlap,
            "max_sentence_words": self.max_sentence_words,
        }

    def _compress(self, request: Request) -> MethodOutput:
        query_words = keywords(request.query)
        units: list[tuple[int, Span, str, int]] = []  # (document, span, text, overlap)
        for i, doc in enumerate(request.documents):
            for span in segment(doc.text, self.max_sentence_words):
                text = doc.text[span.start : span.end]
                units.append((i, span, text, len(query_words & keywords(text))))
        forced = [u for u in units if request.budget.must_keep(u[2])]
        is_forced = {(u[0], u[1]) for u in forced}
        ranked = sorted(
            (u for u in units if u[3] >= self.min_overlap and (u[0], u[1]) not in is_forced),
            key=lambda u: -u[3],
        )
        chosen: list[tuple[int, Span, str, int]] = []
        used = 0
        for unit in forced + ranked:
            size = request.count(unit[2])
            if used + size <= request.limit:
                chosen.append(unit)
                used += size
        by_document: dict[int, list[tuple[int, Span, str, int]]] = {}
        for unit in chosen:
            by_document.setdefault(unit[0], []).append(unit)
        kept = []
        for i, members in by_document.items():
            members.sort(key=lambda u: u[1].start)
            doc = request.documents[i]
            kept.append(
                CompressedDocument(
                    text=" ".join(u[2] for u in members),
                    source_id=doc.id,
                    spans=tuple(u[1] for u in members),
                    score=float(max(u[3] for u in members)),
                    metadata=doc.metadata,
                )
            )
        return MethodOutput(kept, {"sentences_kept": len(chosen)})
