"""Limits that protect the server: auth, body size, input size, time and concurrency."""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragzip.adapters.rest.errors import (
    BodyTimeout,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    ServerError,
    Unauthorized,
    invalid_response,
)
from ragzip.adapters.rest.metrics import Metrics
from ragzip.errors import InvalidInputError

__all__ = [
    "AuthMiddleware",
    "BodyLimitMiddleware",
    "Limiter",
    "Slot",
    "check_input_size",
    "json_depth",
]

T = TypeVar("T")


class AuthMiddleware:
    """Requires ``Authorization: Bearer <api_key>`` before a byte of the body is read.

    HTTP Basic with the key as password (any user name) is accepted too, so that a browser
    can open the inspector page (``/ui``), whose 401 asks for Basic credentials.

    Paths under ``protected`` need the key; probes (``/healthz``, ``/readyz``) and the docs do
    not. An unauthenticated request is answered 401 at once and its connection closed, so a
    stalled or huge upload cannot hold memory or a connection. No key configured: a no-op.
    """

    def __init__(
        self, app: ASGIApp, api_key: str | None, protected: Sequence[str] = ("/v1/", "/metrics")
    ) -> None:
        self.app = app
        self.expected = api_key.encode() if api_key else None
        self.protected = tuple(protected)

    def allowed(self, scope: Scope) -> bool:
        if self.expected is None or not str(scope.get("path", "")).startswith(self.protected):
            return True
        if scope.get("method") == "OPTIONS":
            return True  # CORS preflight carries no credentials
        headers = dict(scope.get("headers") or [])
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        scheme = scheme.lower()
        if scheme == b"basic":  # a browser's own prompt: any user name, the key as password
            try:
                token = base64.b64decode(token.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        elif scheme != b"bearer":
            return False
        return secrets.compare_digest(token.strip(), self.expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        exc = Unauthorized("missing or invalid bearer token")
        challenge = 'Bearer realm="ragzip"'
        if str(scope.get("path", "")).startswith("/ui"):  # a browser asks for the key itself
            challenge = 'Basic realm="ragzip", charset="UTF-8"'
        headers = {"WWW-Authenticate": challenge, "Connection": "close"}
        await invalid_response(scope, exc.status, exc.kind, str(exc), headers)(scope, receive, send)


class BodyLimitMiddleware:
    """Reads request bodies within a size, a time and a nesting limit, before any parsing.

    A ``Content-Length`` over ``max_bytes`` is refused (413) without storing a byte of it; a
    chunked body is read up to the limit and refused as soon as it passes it. Before the 413
    the rest of a refused body is read and dropped, up to ``drain_bytes`` and within
    ``timeout_s`` (a lingering close, as web servers do: closing a connection with unread
    data resets it, and the client would never read the answer); a larger one is refused at
    once. A body that does not arrive within
    ``timeout_s`` is refused with 408, and a JSON body nested deeper than ``max_depth`` with
    a 4xx naming the limit (a recursive parser would otherwise fail with a 500). Accepted
    bodies are replayed to the app.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0, max_depth: int = 64
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_depth = max_depth
        self.drain_bytes = max(4 * max_bytes, 16 * 2**20)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body exceeds the limit of {self.max_bytes} bytes (max_body_bytes)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        deadline = time.monotonic() + self.timeout_s
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            if int(length) <= self.drain_bytes:
                await _discard(receive, int(length), deadline)
            await self._refuse(scope, receive, send, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                slow = BodyTimeout(
                    f"the request body did not arrive within {self.timeout_s:g} s (body_timeout_s)"
                )
                await self._refuse(scope, receive, send, slow)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await _discard(receive, self.drain_bytes - size, deadline)
                await self._refuse(scope, receive, send, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body) > self.max_depth:
            deep = InvalidInputError(
                f"the JSON body is nested deeper than {self.max_depth} levels (max_json_depth)"
            )
            await invalid_response(scope, 422, "invalid_request", str(deep))(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: ServerError) -> None:
        headers = {**exc.headers, "Connection": "close"}
        await invalid_response(scope, exc.status, exc.kind, str(exc), headers)(scope, receive, send)


async def _discard(receive: Receive, limit: int, deadline: float) -> None:
    """Reads and drops the rest of a request body: at most ``limit`` bytes, until ``deadline``."""
    while limit > 0:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return
        if message["type"] == "http.disconnect":
            return
        limit -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in a JSON text (strings skipped), in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def check_input_size(
    query: str,
    texts: Sequence[str],
    *,
    max_documents: int,
    max_tokens: int,
    count: Callable[[str], int],
) -> int:
    """Raises :class:`PayloadTooLarge` past the document or token limit; returns the tokens."""
    if len(texts) > max_documents:
        raise PayloadTooLarge(
            f"{len(texts)} documents exceed the limit of {max_documents} per request "
            "(max_documents)"
        )
    total = count(query)
    for text in texts:
        total += count(text)
        if total > max_tokens:
            raise PayloadTooLarge(
                f"the request exceeds the limit of {max_tokens} tokens (max_tokens_per_request)"
            )
    return total


class Limiter:
    """Bounded concurrency with a bounded queue and a per-request deadline.

    At most ``max_concurrency`` requests compute at once and at most ``max_queue`` wait for a
    slot. A request that finds the queue full gets 429 and one that waits past its deadline
    for a slot gets 503, both with ``Retry-After``. Work runs in a worker thread; if it runs
    past the deadline the client gets 504 while the thread finishes in the background,
    still holding its slot, so timed-out work cannot pile up beyond ``max_concurrency``.
    """

    def __init__(
        self,
        max_concurrency: int,
        max_queue: int,
        timeout_s: float,
        retry_after_s: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self._free = max_concurrency
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def busy(self) -> int:
        return self.max_concurrency - self._free

    async def _acquire(self, deadline: float) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            self._report()
            return
        if len(self._waiters) >= self.max_queue:
            self._reject("queue_full")
            raise Overloaded(
                f"server busy: {self.max_concurrency} requests running and {self.max_queue} "
                "waiting (max_concurrency, max_queue); retry later",
                self.retry_after_s,
                429,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._report()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), max(0.0, deadline - time.monotonic()))
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted just as we gave up: pass the slot on
            else:
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            self._report()
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._reject("queue_timeout")
            raise Overloaded(
                "server busy: no compute slot freed up within the request timeout; retry later",
                self.retry_after_s,
                503,
            ) from None
        self._report()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the waiter
                self._report()
                return
        self._free += 1
        self._report()

    def _report(self) -> None:
        if self.metrics is not None:
            self.metrics.computing.set(self.busy)
            self.metrics.waiting.set(len(self._waiters))

    def _reject(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels(reason).inc()

    def deadline(self) -> float:
        return time.monotonic() + self.timeout_s

    @asynccontextmanager
    async def slot(self, deadline: float | None = None) -> AsyncIterator[Slot]:
        """Holds one compute slot for the block (429/503 when none is to be had in time).

        Work handed to :meth:`in_thread` that outlives the block keeps the slot until it ends.
        """
        held = Slot(self.deadline() if deadline is None else deadline)
        await self._acquire(held.deadline)
        try:
            yield held
        finally:
            if not held.handed_off:
                self._release()

    async def in_thread(self, held: Slot, fn: Callable[..., T], *args: Any) -> T:
        """Runs ``fn(*args)`` in a worker thread under ``held``, within its deadline (504)."""
        task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.wait_for(
                asyncio.shield(task), max(0.0, held.deadline - time.monotonic())
            )
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if not task.done():  # the thread runs on: it keeps the slot until it ends
                held.handed_off = True
                task.add_done_callback(self._finished)
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._reject("timeout")
            raise RequestTimeout(
                f"the request took longer than {self.timeout_s:g} s (request_timeout_s)"
            ) from None

    async def run(self, fn: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """Runs ``fn(*args)`` in a worker thread within a slot and the deadline."""
        async with self.slot(deadline) as held:
            return await self.in_thread(held, fn, *args)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a late failure after a 504 is not logged with text
        self._release()


class Slot:
    """A held compute slot: its deadline, and whether a late worker thread now owns it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.handed_off = False

    def left(self) -> float:
        """Seconds until the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())
