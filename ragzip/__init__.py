"""ragzip: compress retrieved context between the retriever and the generator.

Example:
    >>> from ragzip import Budget, build_compressor
    >>> compressor = build_compressor({"type": "extractive"})
    >>> result = compressor.compress("Who wrote Hamlet?", ["...", "..."], Budget(ratio=10))
    >>> result.text(), result.ratio
"""

from typing import Any

from ragzip.compressors.base import BaseCompressor, Compressor
from ragzip.errors import (
    ConfigError,
    GenerationError,
    IndexStoreError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    RagzipError,
    UnknownComponentError,
)
from ragzip.types import (
    Budget,
    CompressedDocument,
    CompressionResult,
    Document,
    ScoredDocument,
    Span,
)

__version__ = "0.1.0"


def build_compressor(spec: str | dict[str, Any]) -> Compressor:
    """Builds a registered compressor from ``NAME`` or ``{"type": NAME, "params": {...}}``."""
    from ragzip.compressors.registry import compressors

    built: Compressor = compressors.build(spec)
    return built


__all__ = [
    "BaseCompressor",
    "Budget",
    "CompressedDocument",
    "CompressionResult",
    "Compressor",
    "ConfigError",
    "Document",
    "GenerationError",
    "IndexStoreError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "RagzipError",
    "ScoredDocument",
    "Span",
    "UnknownComponentError",
    "build_compressor",
]
