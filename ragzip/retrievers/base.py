"""The retriever contract, and a base class that implements its public edge once.

A retriever maps ``(query, k)`` to at most ``k`` :class:`~ragzip.types.ScoredDocument`, best
first, ranks counted from 0. :meth:`BaseRetriever.retrieve` validates the query and ``k`` and
numbers the ranks; a strategy only writes :meth:`BaseRetriever._search` and :meth:`add`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Container, Iterable, Mapping
from dataclasses import replace
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ragzip.errors import InvalidInputError
from ragzip.types import Document, ScoredDocument

__all__ = [
    "BaseRetriever",
    "DocumentLike",
    "Retriever",
    "check_query",
    "normalize_documents",
    "ranked",
]

DocumentLike = Document | str | Mapping[str, Any]
R = TypeVar("R", bound="BaseRetriever")


@runtime_checkable
class Retriever(Protocol):
    """What every ragzip retriever offers."""

    def retrieve(self, query: str, k: int = 10) -> list[ScoredDocument]: ...

    async def aretrieve(self, query: str, k: int = 10) -> list[ScoredDocument]: ...

    def add(self, documents: Iterable[DocumentLike]) -> None: ...


class BaseRetriever(ABC):
    """Template for retrievers: subclasses implement :meth:`_search` and :meth:`add`.

    Queries must be non-empty strings (an empty query raises :class:`InvalidInputError`: it
    is a caller bug, not a search). ``k`` must be a non-negative int; ``k=0`` and an empty
    index return ``[]`` and a ``k`` larger than the index returns everything that matches.
    """

    name: ClassVar[str] = "base"

    @abstractmethod
    def add(self, documents: Iterable[DocumentLike]) -> None:
        """Indexes more documents; ids must be unique across the whole index."""

    @abstractmethod
    def _search(self, query: str, k: int) -> list[tuple[Document, float]]:
        """Returns up to ``k`` ``(document, score)`` pairs, best first; ``k >= 1``.

        Called with a validated query; must return ``[]`` for an empty index.
        """

    def params(self) -> dict[str, Any]:
        """Constructor arguments that rebuild an empty retriever like this one."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.name, "params": self.params()}

    @classmethod
    def from_documents(cls: type[R], documents: Iterable[DocumentLike], **kwargs: Any) -> R:
        """Builds a retriever with ``cls(**kwargs)`` and adds ``documents`` to it."""
        retriever = cls(**kwargs)
        retriever.add(documents)
        return retriever

    def retrieve(self, query: str, k: int = 10) -> list[ScoredDocument]:
        """The ``k`` documents that best match ``query``, best first.

        Args:
            query: A non-empty string.
            k: How many documents at most.

        Returns:
            Scored documents with ranks 0, 1, ...; fewer than ``k`` when the index is smaller
            or fewer documents match.

        Raises:
            InvalidInputError: ``query`` is empty or not a string, or ``k`` is negative.
        """
        query, k = check_query(query, k)
        if k == 0:
            return []
        return ranked(self._search(query, k)[:k])

    async def aretrieve(self, query: str, k: int = 10) -> list[ScoredDocument]:
        """:meth:`retrieve` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.retrieve, query, k)


def ranked(hits: Iterable[tuple[Document, float]]) -> list[ScoredDocument]:
    """Numbers ``(document, score)`` pairs, best first, as scored documents."""
    return [
        ScoredDocument(document=doc, score=float(score), rank=rank)
        for rank, (doc, score) in enumerate(hits)
    ]


def check_query(query: str, k: int) -> tuple[str, int]:
    """Validates a retrieval request; returns it unchanged."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a str, got {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError("query is empty: pass the text to search for")
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidInputError(f"k must be an int, got {k!r}")
    if k < 0:
        raise InvalidInputError(f"k must be >= 0, got {k}")
    return query, k


def normalize_documents(
    documents: Iterable[DocumentLike], existing: Container[str], offset: int
) -> list[Document]:
    """Turns strings, dicts and documents into documents with unique, non-empty ids.

    Documents without an id get ``str(offset + position)``, so ids stay unique across
    incremental adds. Never mutates the input: an id is set on a copy.

    Raises:
        InvalidInputError: ``documents`` is not a list (a single string, dict or document, or
            no iterable at all), an item is not a document, or an id repeats within
            ``documents`` or is already in ``existing``.
    """
    if isinstance(documents, str | bytes | Mapping | Document):
        raise InvalidInputError("documents must be a list, not a single string, dict or document")
    if not isinstance(documents, Iterable):
        raise InvalidInputError(
            f"documents must be a list of strings, dicts or documents, got "
            f"{type(documents).__name__}"
        )
    out: list[Document] = []
    seen: set[str] = set()
    for i, obj in enumerate(documents):
        doc = Document.from_any(obj, offset + i)
        if not doc.id:
            doc = replace(doc, id=str(offset + i))
        if doc.id in seen or doc.id in existing:
            raise InvalidInputError(
                f"duplicate document id {doc.id!r}: ids must be unique in a retriever; "
                "give each document its own id (nothing was added)"
            )
        seen.add(doc.id)
        out.append(doc)
    return out
