"""Core value types: documents, budgets and compression results.

Every type here is a frozen dataclass. Compressors never mutate what they are given; they
return new objects that say where each kept piece of text came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ragzip.errors import InvalidInputError
from ragzip.patterns import compile_pattern, matches_any

__all__ = [
    "Budget",
    "CompressedDocument",
    "CompressionResult",
    "Document",
    "ScoredDocument",
    "Span",
    "as_documents",
    "unique_ids",
]


def _freeze(metadata: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(metadata or {}))


@dataclass(frozen=True)
class Document:
    """A piece of retrieved text.

    Args:
        text: The document's text.
        id: A stable identifier; results refer back to it.
        metadata: Free-form attributes (title, source, language, ...). Copied and frozen.

    Example:
        >>> Document("Paris is the capital of France.", id="d1", metadata={"title": "Paris"})
    """

    text: str
    id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.text, bytes):
            raise InvalidInputError(
                "Document.text must be str, got bytes: decode it first "
                "(ragzip.text.decode_text() replaces invalid UTF-8)."
            )
        if not isinstance(self.text, str):
            raise InvalidInputError(f"Document.text must be str, got {type(self.text).__name__}.")
        object.__setattr__(self, "id", str(self.id))
        object.__setattr__(self, "metadata", _freeze(self.metadata))

    @property
    def title(self) -> str:
        """The ``title`` metadata entry, or an empty string."""
        return str(self.metadata.get("title", "") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": dict(self.metadata)}

    @classmethod
    def from_any(cls, obj: Document | str | Mapping[str, Any], index: int = 0) -> Document:
        """Builds a document from a string, a dict (``text``/``id``/``metadata``/``title``) or a
        document; ids default to the position."""
        if isinstance(obj, Document):
            return obj
        if isinstance(obj, str):
            return cls(obj, id=str(index))
        if isinstance(obj, Mapping):
            if "text" not in obj:
                raise InvalidInputError(f"document {index} has no 'text' field: {sorted(obj)}")
            meta = dict(obj.get("metadata") or {})
            for key, value in obj.items():
                if key not in ("text", "id", "metadata"):
                    meta.setdefault(key, value)
            return cls(obj["text"], id=str(obj.get("id", index)), metadata=meta)
        raise InvalidInputError(
            f"document {index} must be a str, a dict with 'text' or a Document, "
            f"got {type(obj).__name__}"
        )


@dataclass(frozen=True)
class ScoredDocument:
    """A document with a relevance score, as returned by retrievers and rankers."""

    document: Document
    score: float
    rank: int = 0


@dataclass(frozen=True)
class Budget:
    """How much context may remain after compression.

    Give a compression ``ratio`` (original / compressed, e.g. ``4.0`` keeps a quarter), a
    ``tokens`` ceiling, or both (the stricter one wins). ``keep`` lists strings and
    ``keep_patterns``
    regular expressions whose occurrences must survive; compressors that cannot split text (the
    extractive one keeps whole sentences) keep the units that contain them first.

    Example:
        >>> Budget(ratio=10)
        >>> Budget(tokens=300, keep=("Article 12",))
    """

    ratio: float | None = None
    tokens: int | None = None
    keep: tuple[str, ...] = ()
    keep_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ratio is None and self.tokens is None:
            raise InvalidInputError("Budget needs a ratio, a token count, or both.")
        if self.ratio is not None:
            if isinstance(self.ratio, bool) or not isinstance(self.ratio, int | float):
                raise InvalidInputError(f"Budget.ratio must be a number, got {self.ratio!r}")
            if not math.isfinite(self.ratio) or self.ratio < 1.0:
                raise InvalidInputError(
                    f"Budget.ratio must be a finite number >= 1 (original/compressed), "
                    f"got {self.ratio!r}"
                )
            object.__setattr__(self, "ratio", float(self.ratio))
        if self.tokens is not None:
            if isinstance(self.tokens, bool) or not isinstance(self.tokens, int):
                raise InvalidInputError(f"Budget.tokens must be an int, got {self.tokens!r}")
            if self.tokens < 0:
                raise InvalidInputError(f"Budget.tokens must be >= 0, got {self.tokens}")
        if isinstance(self.keep, str) or isinstance(self.keep_patterns, str):
            raise InvalidInputError("Budget.keep and keep_patterns take a list of strings.")
        object.__setattr__(self, "keep", tuple(str(k) for k in self.keep if str(k)))
        object.__setattr__(self, "keep_patterns", tuple(self.keep_patterns))
        for pattern in self.keep_patterns:
            compile_pattern(pattern)

    def limit(self, tokens_before: int) -> int:
        """The token ceiling for a context of ``tokens_before`` tokens."""
        limits = []
        if self.ratio is not None:
            limits.append(math.floor(tokens_before / self.ratio))
        if self.tokens is not None:
            limits.append(self.tokens)
        return max(0, min(limits))

    def must_keep(self, text: str) -> bool:
        """Whether ``text`` contains a string or pattern that has to be kept.

        Raises:
            InvalidInputError: a keep pattern ran past its time limit (see
                :mod:`ragzip.patterns`).
        """
        if any(k in text for k in self.keep):
            return True
        return matches_any(self.keep_patterns, text)

    @classmethod
    def of(cls, value: Budget | float | int | Mapping[str, Any]) -> Budget:
        """Accepts a budget, a ratio as a float, or a dict of fields."""
        if isinstance(value, Budget):
            return value
        if isinstance(value, Mapping):
            return cls(**dict(value))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"cannot make a Budget of {value!r}")
        return cls(ratio=float(value))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "tokens": self.tokens,
            "keep": list(self.keep),
            "keep_patterns": list(self.keep_patterns),
        }


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of the source document that were kept."""

    start: int
    end: int


@dataclass(frozen=True)
class CompressedDocument:
    """What remains of one source document."""

    text: str
    source_id: str
    spans: tuple[Span, ...] = ()
    score: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _freeze(self.metadata))
        object.__setattr__(self, "spans", tuple(self.spans))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "text": self.text,
            "spans": [[s.start, s.end] for s in self.spans],
            "score": self.score,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class CompressionResult:
    """The outcome of one compression call.

    Attributes:
        documents: Kept documents in their original order (dropped ones are absent).
        tokens_before: Tokens of the input context under ``tokenizer``.
        tokens_after: Tokens of the compressed context under ``tokenizer``.
        tokenizer: Name of the token counter used.
        compressor: Name of the compressor that produced this.
        timings: Seconds per stage (``total`` included).
        dropped_ids: Ids of input documents that kept nothing.
        info: Extra, method-specific numbers (e.g. ``{"augmented": 0.0}``).
    """

    documents: tuple[CompressedDocument, ...]
    tokens_before: int
    tokens_after: int
    tokenizer: str
    compressor: str
    timings: Mapping[str, float] = field(default_factory=dict)
    dropped_ids: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "documents", tuple(self.documents))
        object.__setattr__(self, "dropped_ids", tuple(self.dropped_ids))
        object.__setattr__(self, "timings", _freeze(self.timings))
        object.__setattr__(self, "info", _freeze(self.info))

    @property
    def ratio(self) -> float:
        """tokens_before / tokens_after; ``inf`` for an empty result of a non-empty input."""
        if self.tokens_after == 0:
            return math.inf if self.tokens_before else 1.0
        return self.tokens_before / self.tokens_after

    @property
    def is_empty(self) -> bool:
        return not self.documents

    def text(self, separator: str = "\n") -> str:
        """The compressed context as one string."""
        return separator.join(d.text for d in self.documents)

    def by_source(self) -> dict[str, tuple[CompressedDocument, ...]]:
        """The kept documents grouped by source document id, sources and pieces in input order.

        A compressor may return several pieces of one source (kept spans, summary sentences);
        adapters that give back one document per source join them.

        Example:
            >>> {sid: [p.text for p in pieces] for sid, pieces in result.by_source().items()}
            {'0': ['Paris is the capital.', 'It has two million people.'], '2': ['...']}
        """
        groups: dict[str, list[CompressedDocument]] = {}
        for doc in self.documents:
            groups.setdefault(doc.source_id, []).append(doc)
        return {source: tuple(pieces) for source, pieces in groups.items()}

    def to_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "compressor": self.compressor,
            "tokenizer": self.tokenizer,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "ratio": ratio if math.isfinite(ratio) else None,
            "timings": dict(self.timings),
            "dropped_ids": list(self.dropped_ids),
            "info": dict(self.info),
            "documents": [d.to_dict() for d in self.documents],
        }


def as_documents(items: Iterable[Document | str | Mapping[str, Any]]) -> list[Document]:
    """Normalises a list of strings, dicts or documents into documents."""
    if isinstance(items, str | bytes | Mapping):
        raise InvalidInputError("documents must be a list, not a single string or dict")
    return [Document.from_any(obj, i) for i, obj in enumerate(items)]


def unique_ids(documents: Iterable[Document]) -> list[Document]:
    """The documents with repeated ids made unique (``id#position``), as compressors see them.

    Results refer to documents by id; a later duplicate becomes ``f"{id}#{position}"``.
    """
    seen: set[str] = set()
    out = []
    for i, doc in enumerate(documents):
        if doc.id in seen:
            doc = Document(doc.text, id=f"{doc.id}#{i}", metadata=doc.metadata)
        seen.add(doc.id)
        out.append(doc)
    return out
