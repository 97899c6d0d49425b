"""One exception tree for everything ragzip raises on purpose.

Catch :class:`RagzipError` to handle them all. Each subclass also derives from the builtin that
fits (``ValueError``, ``KeyError``, ``ImportError``...), so existing handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GenerationError",
    "IndexStoreError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "RagzipError",
    "UnknownComponentError",
]


class RagzipError(Exception):
    """Base class of every error ragzip raises on purpose."""


class InvalidInputError(RagzipError, ValueError):
    """Input that cannot be processed: wrong types, empty where content is required, bad bytes."""


class ConfigError(RagzipError, ValueError):
    """A component spec or parameter is invalid (wrong name, type or range)."""


class UnknownComponentError(ConfigError, KeyError):
    """A registry has nothing under the requested name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(RagzipError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ModelNotFoundError(RagzipError, FileNotFoundError):
    """A model name resolves to nothing that can be loaded here."""


class IndexStoreError(RagzipError, OSError):
    """A vector index cannot be read, written or used as asked."""


class GenerationError(RagzipError, RuntimeError):
    """The generator (remote endpoint or local model) failed after retries."""
