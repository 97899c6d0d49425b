"""The generator contract, and a base class that implements its public edge once.

A generator turns chat messages (or one prompt string, meaning one user message) into text.
:class:`BaseGenerator` validates the request, times it and applies stop strings; a backend only
writes :meth:`BaseGenerator._generate` and :meth:`BaseGenerator._stream`. Async twins run the
sync methods in a worker thread unless a backend has a native async path.

The request and answer types live in :mod:`ragzip.generators.request`, stop strings in
:mod:`ragzip.generators.stop` and the thread-driven async iteration in
:mod:`ragzip.generators.threaded`; all are importable from here as well.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from ragzip.errors import InvalidInputError
from ragzip.generators.request import (
    Generation,
    GenerationRequest,
    Message,
    MessagesLike,
    normalize_messages,
)
from ragzip.generators.stop import StopFilter, apply_stop, truncate_at_stop
from ragzip.generators.threaded import iterate_in_thread

__all__ = [
    "BaseGenerator",
    "Generation",
    "GenerationRequest",
    "Generator",
    "Message",
    "MessagesLike",
    "StopFilter",
    "apply_stop",
    "count_usage",
    "iterate_in_thread",
    "normalize_messages",
    "truncate_at_stop",
]

G = TypeVar("G", bound="BaseGenerator")


@runtime_checkable
class Generator(Protocol):
    """What every ragzip generator offers."""

    def generate(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Generation: ...

    def stream(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]: ...

    async def agenerate(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Generation: ...

    def astream(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]: ...


class BaseGenerator(ABC):
    """Template for generators: subclasses implement :meth:`_generate` and :meth:`_stream`.

    The public methods validate arguments (raising :class:`InvalidInputError`), time the call
    and cut the text at stop strings, so backends that ignore ``stop`` still honour it. The
    async twins run the sync methods in a worker thread; override them for native async I/O.
    """

    name: ClassVar[str] = "base"

    @abstractmethod
    def _generate(self, request: GenerationRequest) -> Generation:
        """Generates for a validated request; ``seconds`` is overwritten by the caller."""

    @abstractmethod
    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yields text deltas for a validated request."""

    # -- public edge ---------------------------------------------------------------------------
    def generate(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Generation:
        """Generates a completion.

        Args:
            messages: A prompt string (one user message) or chat messages.
            max_tokens: Most tokens to generate.
            temperature: 0 for greedy decoding, higher to sample.
            stop: Strings that end the completion; the text is cut before the first one.

        Returns:
            The completion with token counts and timing.

        Raises:
            InvalidInputError: malformed messages or options.
            GenerationError: the backend failed.
        """
        return self._timed(GenerationRequest.of(messages, max_tokens, temperature, stop))

    def stream(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        """Yields the completion as text deltas; arguments as for :meth:`generate`.

        Arguments are checked at once, not on the first ``next()``.
        """
        request = GenerationRequest.of(messages, max_tokens, temperature, stop)
        return apply_stop(self._stream(request), request.stop)

    def generate_batch(
        self,
        messages: Sequence[MessagesLike],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        """Generates a completion for every item of ``messages``, in order.

        Every request is checked before any runs. The default runs them one after another;
        backends that can batch (a local model in one padded forward pass, an HTTP server
        with concurrent requests) override this.

        Args:
            messages: Prompts or chat message lists, one per completion.
            max_tokens: Most tokens to generate, per completion.
            temperature: 0 for greedy decoding, higher to sample.
            stop: Strings that end a completion.

        Returns:
            One :class:`Generation` per item of ``messages``, in the same order.

        Raises:
            InvalidInputError: ``messages`` is not a list, or an item or option is malformed.
            GenerationError: the backend failed.
        """
        return self._generate_batch(self._batch_requests(messages, max_tokens, temperature, stop))

    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Completions of validated requests, in order (override to batch)."""
        return [self._timed(request) for request in requests]

    def _timed(self, request: GenerationRequest) -> Generation:
        """:meth:`_generate` of a validated request, timed and cut at its stop strings."""
        start = time.perf_counter()
        result = self._generate(request)
        return self._finish(result, request, time.perf_counter() - start)

    @staticmethod
    def _batch_requests(
        messages: Sequence[MessagesLike],
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] | None,
    ) -> list[GenerationRequest]:
        if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable):
            raise InvalidInputError(
                "generate_batch takes a list of prompts or message lists, got "
                f"{type(messages).__name__}: wrap a single prompt in a list"
            )
        return [GenerationRequest.of(m, max_tokens, temperature, stop) for m in messages]

    async def agenerate(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Generation:
        """:meth:`generate` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(
            self.generate, messages, max_tokens=max_tokens, temperature=temperature, stop=stop
        )

    def astream(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]:
        """:meth:`stream` driven by a worker thread; arguments are checked at once."""
        iterator = self.stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop)
        return iterate_in_thread(iterator)

    # -- lifecycle and config --------------------------------------------------------------------
    def warm_up(self) -> None:
        """Loads models or opens connections ahead of the first request (no-op by default)."""
        return None

    def close(self) -> None:
        """Releases connections or models (no-op by default)."""
        return None

    def __enter__(self: G) -> G:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def params(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this generator (never secrets)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.name, "params": self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    @staticmethod
    def _finish(result: Generation, request: GenerationRequest, seconds: float) -> Generation:
        text, cut = truncate_at_stop(result.text, request.stop)
        reason = "stop" if cut else result.finish_reason
        return replace(result, text=text, finish_reason=reason, seconds=seconds)


def count_usage(generator: Any, messages: MessagesLike, text: str) -> tuple[int | None, int | None]:
    """Prompt and completion tokens of a streamed answer, when the generator can count them."""
    count = getattr(generator, "count_tokens", None)
    if count is None:
        return None, None
    messages = normalize_messages(messages)
    prompt_count = getattr(generator, "count_prompt_tokens", None)
    prompt = (
        prompt_count(messages)
        if prompt_count is not None
        else sum(count(str(m.get("content", ""))) for m in messages)
    )
    return int(prompt), int(count(text)) if text else 0
