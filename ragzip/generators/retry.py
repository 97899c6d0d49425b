"""Retries of one HTTP request, written once for sync and async clients.

The retry loop is a plan that does no I/O itself (:meth:`RetryPolicy.plan`): a Python generator
that yields what to do next (:class:`Send` the request, :class:`Drain` a failed streamed answer,
:class:`Wait`) and receives what happened (the response, or the exception the step raised,
thrown back into it). It decides what is retried, how long to wait and what error to raise in
the end. Two small drivers carry the steps out, :func:`drive` with blocking calls and
:func:`adrive` with awaits, so the sync and async clients share every decision.

Example:
    >>> policy = RetryPolicy(max_retries=2, backoff=0.5)
    >>> response = drive(policy.plan(rules), send=send, drain=drain, sleep=time.sleep)
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Drain",
    "Outcomes",
    "Plan",
    "RetryPolicy",
    "Send",
    "Step",
    "Wait",
    "adrive",
    "drive",
    "retry_after",
]

MAX_RETRY_AFTER = 60.0  # seconds; a server asking for longer waits is not worth blocking for
RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx


class Response(Protocol):
    """What the plan reads of an HTTP response (``httpx.Response`` fits)."""

    @property
    def status_code(self) -> int: ...

    @property
    def is_success(self) -> bool: ...

    @property
    def headers(self) -> Any: ...


@dataclass(frozen=True)
class Send:
    """Send the request; answer with the response (or let the exception be thrown in)."""


@dataclass(frozen=True)
class Drain:
    """Read and close this unsuccessful streamed response, so its error message is known."""

    response: Any


@dataclass(frozen=True)
class Wait:
    """Sleep this many seconds before the next attempt."""

    seconds: float


Step = Send | Drain | Wait
Plan = Generator[Step, Any, Any]
"""Yields steps, is sent each step's result, returns the successful response."""


class Outcomes(Protocol):
    """How one client reads failures; :meth:`RetryPolicy.plan` asks it."""

    def transient(self, exc: Exception) -> str | None:
        """Why ``exc`` (raised by a step) is worth another attempt; ``None`` if it is not."""

    def describe(self, response: Any) -> str:
        """The server's error message in a failed response."""

    def rejected(self, response: Any) -> Exception:
        """The error for a failed response that is not retried (a 4xx)."""

    def exhausted(self, last: str, attempts: int) -> Exception:
        """The error once every attempt failed; ``last`` says how the last one did."""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry a request.

    Connection errors, timeouts, HTTP 408/409/429 and 5xx are retried with exponential backoff
    (``backoff * 2**attempt``); a ``Retry-After`` header replaces the backoff, capped at
    ``max_retry_after`` seconds.

    Args:
        max_retries: Retries after the first attempt.
        backoff: First retry delay in seconds.
        max_retry_after: Longest ``Retry-After`` wait honoured.
    """

    max_retries: int
    backoff: float
    max_retry_after: float = MAX_RETRY_AFTER

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    @staticmethod
    def retryable(status: int) -> bool:
        return status in RETRY_STATUS or status >= 500

    def delay(self, attempt: int, response: Response | None) -> float:
        """Seconds to wait after attempt ``attempt`` (0-based) that got ``response``."""
        delay = self.backoff * (2**attempt)
        if response is not None:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                delay = min(after, self.max_retry_after)
        return delay

    def plan(self, outcomes: Outcomes, *, stream: bool = False) -> Plan:
        """The retry loop for one request, as steps for :func:`drive` or :func:`adrive`.

        Args:
            outcomes: How the client reads failures and names its errors.
            stream: Whether responses are streamed: an unsuccessful one is then drained
                (read and closed) before its message is read.

        Returns:
            A generator returning the first successful response.

        Raises:
            Exception: ``outcomes.rejected(response)`` for an answer not worth retrying,
                ``outcomes.exhausted(...)`` once all attempts failed, or any step's exception
                that ``outcomes.transient`` does not recognise.
        """
        last = ""
        for attempt in range(self.attempts):
            response: Response | None = None
            try:
                response = yield Send()
                if not response.is_success and stream:
                    yield Drain(response)
            except Exception as exc:
                reason = outcomes.transient(exc)
                if reason is None:
                    raise
                last = reason
            else:
                if response.is_success:
                    return response
                if not self.retryable(response.status_code):
                    raise outcomes.rejected(response)
                last = f"HTTP {response.status_code}: {outcomes.describe(response)}"
            if attempt < self.max_retries:
                yield Wait(self.delay(attempt, response))
        raise outcomes.exhausted(last, self.attempts)


def drive(
    plan: Plan,
    *,
    send: Callable[[], Any],
    drain: Callable[[Any], object],
    sleep: Callable[[float], object] = time.sleep,
) -> Any:
    """Carries out a plan's steps with blocking calls; returns what the plan returns."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = plan.send(result) if error is None else plan.throw(error)
        except StopIteration as done:
            return done.value
        result, error = None, None
        try:
            if isinstance(step, Send):
                result = send()
            elif isinstance(step, Drain):
                drain(step.response)
            else:
                sleep(step.seconds)
        except Exception as exc:  # handed to the plan, which decides
            error = exc


async def adrive(
    plan: Plan,
    *,
    send: Callable[[], Awaitable[Any]],
    drain: Callable[[Any], Awaitable[object]],
    sleep: Callable[[float], Awaitable[object]],
) -> Any:
    """:func:`drive` for async clients: the same plan, its steps awaited."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = plan.send(result) if error is None else plan.throw(error)
        except StopIteration as done:
            return done.value
        result, error = None, None
        try:
            if isinstance(step, Send):
                result = await send()
            elif isinstance(step, Drain):
                await drain(step.response)
            else:
                await sleep(step.seconds)
        except Exception as exc:  # handed to the plan, which decides
            error = exc


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
