"""The baseline: keep the first tokens of the context, in document order."""

from __future__ import annotations

from ragzip.compressors.base import BaseCompressor, MethodOutput, Request, truncate
from ragzip.compressors.registry import compressors
from ragzip.types import CompressedDocument, Span

__all__ = ["TruncateCompressor"]


@compressors.register("truncate")
class TruncateCompressor(BaseCompressor):
    """Keeps documents in order until the budget is spent and cuts the last one (no model).

    A baseline for benchmarks and a safe fallback when no model can be loaded.
    """

    name = "truncate"

    def _compress(self, request: Request) -> MethodOutput:
        kept, left = [], request.limit
        for doc, tokens in zip(request.documents, request.tokens, strict=True):
            if left <= 0:
                break
            full = CompressedDocument(
                doc.text, doc.id, (Span(0, len(doc.text)),), None, doc.metadata
            )
            kept.append(full if tokens <= left else truncate(full, left, request.counter))
            left -= tokens
        return MethodOutput(kept)
