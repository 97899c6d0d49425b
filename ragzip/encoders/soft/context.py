"""What soft compression returns: documents as soft embeddings, segment by segment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SoftContext", "SoftDocument"]


@dataclass(frozen=True)
class SoftDocument:
    """One document as soft embeddings.

    Attributes:
        source_id: The input document's id.
        title: Its title (kept as plain tokens in the prompt), or ``""``.
        embeddings: ``(positions, hidden)`` float32: its segments' embeddings in order.
        tokens: Decoder tokens of its text (what the decoder would read uncompressed).
        segments: Segments it was cut into.
        cached: Segments that came from the cache instead of the encoder.
    """

    source_id: str
    title: str
    embeddings: np.ndarray = field(repr=False)
    tokens: int
    segments: int
    cached: int

    @property
    def positions(self) -> int:
        return int(self.embeddings.shape[0])


@dataclass(frozen=True)
class SoftContext:
    """Documents compressed into the decoder's input space, ready for a soft generator.

    Attributes:
        documents: The compressed documents, in input order.
        decoder: The decoder the embeddings were made for (they are meaningless to others).
        rate: Tokens per embedding.
        encoder: The encoder's fingerprint (config and weights).
        seconds: Wall time of encoding, cache lookups included.
    """

    documents: tuple[SoftDocument, ...]
    decoder: str
    rate: int
    encoder: str
    seconds: float

    @property
    def tokens_before(self) -> int:
        return sum(d.tokens for d in self.documents)

    @property
    def positions(self) -> int:
        return sum(d.positions for d in self.documents)

    @property
    def segments(self) -> int:
        return sum(d.segments for d in self.documents)

    @property
    def cached_segments(self) -> int:
        return sum(d.cached for d in self.documents)

    @property
    def ratio(self) -> float:
        return self.tokens_before / self.positions if self.positions else 1.0

    def stats(self) -> dict[str, Any]:
        """Plain-JSON numbers for logs and responses."""
        return {
            "decoder": self.decoder,
            "rate": self.rate,
            "encoder": self.encoder,
            "documents": len(self.documents),
            "tokens_before": self.tokens_before,
            "positions": self.positions,
            "ratio": round(self.ratio, 3),
            "segments": self.segments,
            "cached_segments": self.cached_segments,
            "seconds": round(self.seconds, 4),
        }
