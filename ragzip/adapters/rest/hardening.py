"""Limits that protect the server: auth, body size, input size, time and concurrency."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragzip.adapters.rest.errors import (
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    error_response,
)
from ragzip.adapters.rest.metrics import Metrics

__all__ = ["BodyLimitMiddleware", "Limiter", "bearer_auth", "check_input_size"]

T = TypeVar("T")


def bearer_auth(api_key: str | None) -> Callable[[Request], None]:
    """A dependency that requires ``Authorization: Bearer <api_key>`` (no-op without a key)."""
    expected = api_key.encode() if api_key else None

    def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), expected
        ):
            raise Unauthorized(
                "missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="ragzip"'}
            )

    return check


class BodyLimitMiddleware:
    """Answers 413 to request bodies over ``max_bytes``, before the app parses anything.

    A ``Content-Length`` over the limit is refused at once; a chunked body is read up to the
    limit and refused as soon as it passes it. Accepted bodies are replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body exceeds the limit of {self.max_bytes} bytes (max_body_bytes)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = self._too_large()
        response = error_response(exc.status, exc.kind, str(exc), {"Connection": "close"})
        await response(scope, receive, send)


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

    async def run(self, fn: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """Runs ``fn(*args)`` in a worker thread within a slot and the deadline."""
        deadline = self.deadline() if deadline is None else deadline
        await self._acquire(deadline)
        task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        task.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(
                asyncio.shield(task), max(0.0, deadline - time.monotonic())
            )
        except asyncio.TimeoutError:
            self._reject("timeout")
            raise RequestTimeout(
                f"the request took longer than {self.timeout_s:g} s (request_timeout_s)"
            ) from None

    def _finished(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a late failure after a 504 is not logged with text
        self._release()

    @asynccontextmanager
    async def slot(self, deadline: float | None = None) -> AsyncIterator[None]:
        """Holds a slot for async work (a streamed answer) until the block exits."""
        await self._acquire(self.deadline() if deadline is None else deadline)
        try:
            yield
        finally:
            self._release()
