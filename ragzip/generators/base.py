"""The generator contract, and a base class that implements its public edge once.

A generator turns chat messages (or one prompt string, meaning one user message) into text.
:class:`BaseGenerator` validates the request, times it and applies stop strings; a backend only
writes :meth:`BaseGenerator._generate` and :meth:`BaseGenerator._stream`. Async twins run the
sync methods in a worker thread unless a backend has a native async path.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypedDict, TypeVar, runtime_checkable

from ragzip.errors import InvalidInputError

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


class Message(TypedDict):
    """One chat message, as OpenAI's chat API takes it: ``{"role": ..., "content": ...}``."""

    role: str
    content: str


MessagesLike = str | Sequence[Message] | Sequence[Mapping[str, Any]]
"""A prompt string (one user message) or a sequence of role/content mappings."""

G = TypeVar("G", bound="BaseGenerator")


@dataclass(frozen=True)
class Generation:
    """What one generation produced.

    Attributes:
        text: The completion, cut before the first stop string.
        model: The model that answered (as the backend names it).
        prompt_tokens: Tokens in the rendered prompt, when the backend reports them.
        completion_tokens: Tokens generated, when the backend reports them.
        finish_reason: ``"stop"`` (end of turn or a stop string), ``"length"`` (hit
            ``max_tokens``) or whatever the backend reports; ``None`` when unknown.
        seconds: Wall-clock time of the call.
    """

    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    """A validated generation request, as backends receive it."""

    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float
    stop: tuple[str, ...]

    @classmethod
    def of(
        cls,
        messages: MessagesLike,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
    ) -> GenerationRequest:
        """Validates the public arguments.

        Raises:
            InvalidInputError: empty or malformed messages, ``max_tokens < 1``, a negative or
                non-finite temperature, or empty stop strings.
        """
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise InvalidInputError(f"max_tokens must be an int, got {max_tokens!r}")
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}")
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise InvalidInputError(f"temperature must be a number, got {temperature!r}")
        if not math.isfinite(temperature) or temperature < 0:
            raise InvalidInputError(f"temperature must be >= 0 and finite, got {temperature}")
        return cls(
            messages=tuple(normalize_messages(messages)),
            max_tokens=max_tokens,
            temperature=float(temperature),
            stop=_normalize_stop(stop),
        )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def normalize_messages(messages: MessagesLike) -> list[Message]:
    """Turns a prompt string or role/content mappings into a fresh list of messages.

    Raises:
        InvalidInputError: an empty prompt or list, or a message without a string role and
            content.
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise InvalidInputError("prompt is empty: pass the text to answer")
        return [Message(role="user", content=messages)]
    if isinstance(messages, bytes | Mapping) or not isinstance(messages, Iterable):
        raise InvalidInputError(
            "messages must be a string or a list of {'role': ..., 'content': ...} dicts, "
            f"got {type(messages).__name__}"
        )
    out: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidInputError(
                f"message {i} must be a dict with 'role' and 'content', "
                f"got {type(message).__name__}"
            )
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role.strip():
            raise InvalidInputError(f"message {i} needs a non-empty string 'role', got {role!r}")
        if not isinstance(content, str):
            raise InvalidInputError(
                f"message {i} needs a string 'content', got {type(content).__name__}"
            )
        out.append(Message(role=role, content=content))
    if not out:
        raise InvalidInputError("messages is empty: pass at least one message")
    return out


def _normalize_stop(stop: Sequence[str] | str | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, Iterable):
        raise InvalidInputError(f"stop must be a string or a list of strings, got {stop!r}")
    out = tuple(items)
    for s in out:
        if not isinstance(s, str) or not s:
            raise InvalidInputError(f"stop strings must be non-empty strings, got {s!r}")
    return out


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cuts ``text`` before the earliest stop string; says whether it cut."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class StopFilter:
    """Applies stop strings to a stream of text deltas.

    Text that could be the start of a stop string is held back until the next delta settles
    it, so the concatenated output equals :func:`truncate_at_stop` of the whole text.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = tuple(stop)
        self.stopped = False
        self._pending = ""

    def feed(self, delta: str) -> str:
        """Returns the part of ``pending + delta`` that is safe to emit now."""
        if self.stopped:
            return ""
        text = self._pending + delta
        if not self.stop:
            return text
        # Earliest place a stop string could still start: a suffix that may complete later.
        hold = max(_overlap(text, s) for s in self.stop)
        safe = len(text) - hold
        cut, found = truncate_at_stop(text, self.stop)
        if found and len(cut) <= safe:
            self.stopped = True
            self._pending = ""
            return cut
        self._pending = text[safe:]
        return text[:safe]

    def flush(self) -> str:
        """What was held back, once the stream has ended."""
        rest, self._pending = self._pending, ""
        if self.stopped:
            return ""
        self.stopped = True
        return truncate_at_stop(rest, self.stop)[0]


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


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


def apply_stop(deltas: Iterator[str], stop: Sequence[str]) -> Iterator[str]:
    """Cuts a stream of text deltas before the first stop string (empty deltas dropped)."""
    if not stop:
        yield from (d for d in deltas if d)
        return
    stops = StopFilter(stop)
    try:
        for delta in deltas:
            text = stops.feed(delta)
            if text:
                yield text
            if stops.stopped:
                return
        rest = stops.flush()
        if rest:
            yield rest
    finally:
        close: Callable[[], object] | None = getattr(deltas, "close", None)
        if close is not None:
            close()


async def iterate_in_thread(iterator: Iterator[str]) -> AsyncIterator[str]:
    """Drives a blocking iterator from a worker thread and yields its items asynchronously.

    When the consumer stops early, the worker stops at the next item and closes the iterator,
    so backends can cancel work in their ``finally`` blocks.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancelled = threading.Event()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancelled.set()

    def produce() -> None:
        try:
            for item in iterator:
                if cancelled.is_set():
                    break
                put("item", item)
        except BaseException as exc:
            put("error", exc)
        else:
            put("done", None)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    threading.Thread(target=produce, name="ragzip-astream", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        cancelled.set()
