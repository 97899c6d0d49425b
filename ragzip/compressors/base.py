"""The one compressor contract, and the base class that implements its public edge once.

A compressor maps ``(query, documents, budget)`` to a :class:`~ragzip.types.CompressionResult`.
:class:`BaseCompressor.compress` validates the input, counts tokens, turns the budget into a
token limit, times the call, enforces the limit on whatever the method returns and builds the
frozen result. A method only writes :meth:`BaseCompressor._compress`.
"""

from __future__ import annotations

import asyncio
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ragzip.errors import InvalidInputError
from ragzip.tokens import DEFAULT_COUNTER, TokenCounter, get_counter
from ragzip.types import (
    Budget,
    CompressedDocument,
    CompressionResult,
    Document,
    as_documents,
    unique_ids,
)

__all__ = ["BaseCompressor", "Compressor", "MethodOutput", "Request", "StageTimer"]

DocumentsLike = Sequence[Document | str | Mapping[str, Any]]
BudgetLike = Budget | float | int | Mapping[str, Any]


@runtime_checkable
class Compressor(Protocol):
    """What every ragzip compressor offers."""

    name: str

    def compress(
        self, query: str, documents: DocumentsLike, budget: BudgetLike
    ) -> CompressionResult: ...

    async def acompress(
        self, query: str, documents: DocumentsLike, budget: BudgetLike
    ) -> CompressionResult: ...

    def to_dict(self) -> dict[str, Any]: ...


class StageTimer:
    """Collects wall seconds per named stage: ``with timer("encode"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class Request:
    """A validated compression request, as a method sees it."""

    query: str
    documents: tuple[Document, ...]
    budget: Budget
    limit: int  # token ceiling for the whole compressed context
    counter: TokenCounter
    timer: StageTimer = field(default_factory=StageTimer, compare=False)
    tokens: tuple[int, ...] = ()  # tokens per input document

    def count(self, text: str) -> int:
        return self.counter.count(text)

    def subset(
        self, indices: Sequence[int], *, limit: int, budget: Budget | None = None
    ) -> Request:
        """A sub-request over some documents, for a nested compressor's :meth:`~BaseCompressor.run`.

        Nothing is validated or counted again: the documents, their token counts and the
        counter are this request's. ``budget`` defaults to this one's keep strings and
        patterns with ``limit`` as the token ceiling.
        """
        if budget is None:
            budget = Budget(
                tokens=max(0, int(limit)),
                keep=self.budget.keep,
                keep_patterns=self.budget.keep_patterns,
            )
        return Request(
            query=self.query,
            documents=tuple(self.documents[i] for i in indices),
            budget=budget,
            limit=max(0, int(limit)),
            counter=self.counter,
            tokens=tuple(self.tokens[i] for i in indices),
        )


@dataclass(frozen=True)
class MethodOutput:
    """What a method returns: kept documents (any order; the base restores input order)."""

    documents: Sequence[CompressedDocument]
    info: Mapping[str, Any] = field(default_factory=dict)


class BaseCompressor(ABC):
    """Template for compressors: subclasses implement :meth:`_compress` and set ``name``.

    Constructors stay cheap: load models lazily or in :meth:`warm_up`. The constructor
    arguments are the configuration; :meth:`to_dict` returns them for the registry.

    Args:
        tokenizer: Token counter name (see :func:`ragzip.tokens.get_counter`).
    """

    name: ClassVar[str] = "base"
    # Parameters a request to the REST sidecar may set: ratios, thresholds, switches, keep
    # strings. Never one that names a model, file, URL, generator, cache or tokenizer: those
    # come from the server's configuration (see ragzip.adapters.rest.policy).
    request_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, tokenizer: str = DEFAULT_COUNTER) -> None:
        self.tokenizer = tokenizer
        self._counter: TokenCounter | None = None

    # -- configuration -----------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this compressor (override to add yours)."""
        return {"tokenizer": self.tokenizer}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.name, "params": self.params()}

    def warm_up(self) -> None:  # noqa: B027 - optional hook, a no-op for model-free methods
        """Loads models ahead of the first call (optional)."""

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = get_counter(self.tokenizer)
        return self._counter

    # -- the public edge ---------------------------------------------------------------------
    def compress(
        self, query: str, documents: DocumentsLike, budget: BudgetLike
    ) -> CompressionResult:
        """Compresses ``documents`` for ``query`` within ``budget``.

        Args:
            query: The question or instruction the context must serve (may be empty).
            documents: Strings, dicts with ``text`` (and ``id``, ``metadata``) or documents.
            budget: A :class:`Budget`, a ratio (``4`` keeps a quarter) or a dict of fields.

        Returns:
            A frozen result whose documents keep their input order and ids.

        Raises:
            InvalidInputError: the query, documents or budget are malformed.
        """
        started = time.perf_counter()
        request = self._request(query, documents, budget)
        tokens_before = sum(request.tokens)
        output = self.run(request)
        kept = list(output.documents)
        info = output.info
        tokens_after = sum(request.count(d.text) for d in kept)
        timings = dict(request.timer.seconds)
        timings["total"] = time.perf_counter() - started
        kept_ids = {d.source_id for d in kept}
        return CompressionResult(
            documents=tuple(kept),
            tokens_before=tokens_before,
            tokens_after=tokens_after,
            tokenizer=request.counter.name,
            compressor=self.name,
            timings=timings,
            dropped_ids=tuple(d.id for d in request.documents if d.id not in kept_ids),
            info=info,
        )

    async def acompress(
        self, query: str, documents: DocumentsLike, budget: BudgetLike
    ) -> CompressionResult:
        """Async twin of :meth:`compress`, run in a worker thread."""
        return await asyncio.to_thread(self.compress, query, documents, budget)

    def run(self, request: Request, *, enforce: bool = True) -> MethodOutput:
        """The stage behind :meth:`compress`: the method on a validated request.

        Kept documents come back in input order and, with ``enforce``, within
        ``request.limit``. Nested compressors (the router's routes, the token pruner's coarse
        stage) call this with :meth:`Request.subset` instead of the public :meth:`compress`,
        so the query and documents are validated and counted once, and kept spans come
        straight from the method. ``enforce=False`` returns the method's own selection
        (a coarse stage that a later stage cuts to the budget).
        """
        if not request.documents or sum(request.tokens) == 0:
            return MethodOutput([])
        with request.timer("method"):
            output = self._compress(request)
        kept = self._order(request, output.documents)
        if enforce:
            with request.timer("enforce"):
                kept = enforce_limit(kept, request.limit, request.counter)
        return MethodOutput(kept, output.info)

    @abstractmethod
    def _compress(self, request: Request) -> MethodOutput:
        """The method itself. Return new documents; never modify ``request.documents``."""

    # -- helpers -----------------------------------------------------------------------------
    def _request(self, query: str, documents: DocumentsLike, budget: BudgetLike) -> Request:
        if query is None:
            query = ""
        if not isinstance(query, str):
            raise InvalidInputError(f"query must be a string, got {type(query).__name__}")
        if documents is None:
            raise InvalidInputError("documents must be a list (it may be empty), got None")
        unique = unique_ids(as_documents(documents))  # results refer to documents by id
        counter = self.counter
        tokens = tuple(counter.count(d.text) for d in unique)
        resolved = Budget.of(budget)
        return Request(
            query=query,
            documents=tuple(unique),
            budget=resolved,
            limit=resolved.limit(sum(tokens)),
            counter=counter,
            tokens=tokens,
        )

    @staticmethod
    def _order(request: Request, kept: Sequence[CompressedDocument]) -> list[CompressedDocument]:
        position = {d.id: i for i, d in enumerate(request.documents)}
        unknown = [d.source_id for d in kept if d.source_id not in position]
        if unknown:
            raise RuntimeError(f"compressor returned unknown source ids {unknown[:3]}")
        return sorted(
            (d for d in kept if d.text.strip()),
            key=lambda d: (position[d.source_id], d.spans[0].start if d.spans else 0),
        )


def enforce_limit(
    documents: list[CompressedDocument], limit: int, counter: TokenCounter
) -> list[CompressedDocument]:
    """Drops the lowest-scored documents, then cuts the words of the one that straddles the
    limit, until ``limit`` holds. Documents without a score count as least relevant."""
    counts = [counter.count(d.text) for d in documents]
    total = sum(counts)
    if total <= limit:
        return documents
    result: list[CompressedDocument | None] = list(documents)
    scores = [d.score if d.score is not None else float("-inf") for d in documents]
    order = sorted(range(len(documents)), key=scores.__getitem__)
    for i in order:
        if total <= limit:
            break
        rest = total - counts[i]
        if rest >= limit:
            result[i] = None
            total = rest
        else:
            cut = truncate(documents[i], limit - rest, counter)
            result[i] = cut
            total = rest + counter.count(cut.text)
    return [d for d in result if d is not None and d.text.strip()]


def truncate(doc: CompressedDocument, limit: int, counter: TokenCounter) -> CompressedDocument:
    """Keeps the longest word prefix of ``doc`` that fits in ``limit`` tokens.

    The prefix keeps the original spacing, so for a document with one span the new span
    points at exactly the kept text."""
    words = [m.span() for m in re.finditer(r"\S+", doc.text)]
    start = words[0][0] if words else 0
    lo, hi = 0, len(words)
    while lo < hi:  # binary search on the number of words
        mid = (lo + hi + 1) // 2
        if counter.count(doc.text[start : words[mid - 1][1]]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    text = doc.text[start : words[lo - 1][1]] if lo else ""
    spans = doc.spans[:1] if doc.spans else ()
    if spans:
        first = spans[0]
        begin = min(first.end, first.start + start)
        spans = (type(first)(begin, min(first.end, begin + len(text))),)
    return CompressedDocument(
        text=text,
        source_id=doc.source_id,
        spans=spans,
        score=doc.score,
        metadata={**doc.metadata, "truncated": True},
    )
