"""From guarded summary sentences to compressed documents that fit the budget.

Whole sentences are kept while they fit (:func:`fit`), optionally topped up with verbatim
source sentences (:func:`fill`); each is then attributed to the document of its supporting
source sentence (:func:`assemble`), so results keep ids and provenance.
"""

from __future__ import annotations

from ragzip.compressors.abstractive.guard import GuardedSentence, SourceSentence
from ragzip.compressors.base import Request
from ragzip.types import CompressedDocument, Span

__all__ = ["assemble", "fill", "fit"]


def fit(request: Request, kept: list[GuardedSentence], room: int) -> list[GuardedSentence]:
    """Whole sentences, in order, while they fit ``room`` tokens; the first one always, unless
    must-keep sentences take room (the base cuts what straddles the limit)."""
    fitted: list[GuardedSentence] = []
    used = 0
    for sentence in kept:
        size = request.count(sentence.text)
        if (fitted or room < request.limit) and used + size > room:
            continue
        fitted.append(sentence)
        used += size
    return fitted


def fill(
    request: Request,
    fitted: list[GuardedSentence],
    sources: list[SourceSentence],
    room: int,
) -> list[GuardedSentence]:
    """Adds source sentences, most relevant first, verbatim, while they fit."""
    used = sum(request.count(g.text) for g in fitted)
    present = {g.text.strip() for g in fitted}
    out = list(fitted)
    for j, source in enumerate(sources):
        size = request.count(source.text)
        if source.text.strip() in present or used + size > room:
            continue
        out.append(GuardedSentence(source.text, j, 1.0, replaced=True))
        present.add(source.text.strip())
        used += size
    return out


def assemble(
    request: Request,
    forced: list[SourceSentence],
    kept: list[GuardedSentence],
    sources: list[SourceSentence],
    scores: dict[int, float],
) -> list[CompressedDocument]:
    """One document per source document, holding the sentences attributed to it.

    Must-keep sentences come first; a summary sentence goes to the document of its supporting
    source sentence (with that sentence's span when it was copied verbatim), or to the most
    relevant document when it has none.
    """
    best_doc = sources[0].doc if sources else 0
    parts: dict[int, list[tuple[str, Span | None]]] = {}
    seen: set[str] = set()
    for s in forced:
        if s.text not in seen:
            seen.add(s.text)
            parts.setdefault(s.doc, []).append((s.text, Span(s.start, s.end)))
    for g in kept:
        if g.text in seen:
            continue
        seen.add(g.text)
        if g.source >= 0:
            src = sources[g.source]
            span = Span(src.start, src.end) if g.replaced else None
            parts.setdefault(src.doc, []).append((g.text, span))
        else:
            parts.setdefault(best_doc, []).append((g.text, None))
    documents = []
    for i, items in parts.items():
        doc = request.documents[i]
        documents.append(
            CompressedDocument(
                text=" ".join(text for text, _ in items),
                source_id=doc.id,
                spans=tuple(span for _, span in items if span is not None),
                score=scores.get(i),
                metadata={**doc.metadata, "abstractive": True},
            )
        )
    return documents
