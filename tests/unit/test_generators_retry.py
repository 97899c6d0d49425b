"""The retry plan shared by the sync and async OpenAI-compatible clients, driven by fakes.

The plan does no I/O, so these tests feed it scripted responses and errors through both
drivers and check that they take the same steps and end the same way. The HTTP behaviour on a
real loopback server is in test_generators_openai.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import pytest

from ragzip.generators.retry import (
    MAX_RETRY_AFTER,
    Drain,
    RetryPolicy,
    Send,
    Wait,
    adrive,
    drive,
    retry_after,
)


@dataclass
class FakeResponse:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    drained: bool = False

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class Transient(Exception):
    pass


class Rejected(Exception):
    pass


class Exhausted(Exception):
    pass


class Rules:
    """Outcomes that record what the plan asked."""

    def transient(self, exc: Exception) -> str | None:
        return f"transient {exc}" if isinstance(exc, Transient) else None

    def describe(self, response: FakeResponse) -> str:
        return f"body of {response.status_code}"

    def rejected(self, response: FakeResponse) -> Exception:
        return Rejected(response.status_code)

    def exhausted(self, last: str, attempts: int) -> Exception:
        return Exhausted(last, attempts)


Script = list[FakeResponse | Exception]


def run_sync(policy: RetryPolicy, script: Script, stream: bool = False) -> tuple[Any, list[str]]:
    log: list[str] = []
    replies = iter(script)

    def send() -> FakeResponse:
        reply = next(replies)
        log.append(f"send:{getattr(reply, 'status_code', type(reply).__name__)}")
        if isinstance(reply, Exception):
            raise reply
        return reply

    def drain(response: FakeResponse) -> None:
        response.drained = True
        log.append("drain")

    def sleep(seconds: float) -> None:
        log.append(f"wait:{seconds:g}")

    try:
        result: Any = drive(
            policy.plan(Rules(), stream=stream), send=send, drain=drain, sleep=sleep
        )
    except Exception as exc:  # the outcome, compared below
        result = exc
    return result, log


def run_async(policy: RetryPolicy, script: Script, stream: bool = False) -> tuple[Any, list[str]]:
    log: list[str] = []
    replies = iter(script)

    async def send() -> FakeResponse:
        reply = next(replies)
        log.append(f"send:{getattr(reply, 'status_code', type(reply).__name__)}")
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def drain(response: FakeResponse) -> None:
        response.drained = True
        log.append("drain")

    async def sleep(seconds: float) -> None:
        log.append(f"wait:{seconds:g}")

    async def main() -> Any:
        plan = policy.plan(Rules(), stream=stream)
        return await adrive(plan, send=send, drain=drain, sleep=sleep)

    try:
        result: Any = asyncio.run(main())
    except Exception as exc:
        result = exc
    return result, log


DRIVERS: list[Callable[..., tuple[Any, list[str]]]] = [run_sync, run_async]


def outcome(result: Any) -> Any:
    return (type(result).__name__, result.args) if isinstance(result, Exception) else result


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
def test_success_on_the_first_attempt(drive_with) -> None:
    ok = FakeResponse(200)
    result, log = drive_with(RetryPolicy(max_retries=2, backoff=0.5), [ok])
    assert result is ok and log == ["send:200"]


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
def test_5xx_and_transport_errors_are_retried_with_doubling_backoff(drive_with) -> None:
    ok = FakeResponse(200)
    result, log = drive_with(
        RetryPolicy(max_retries=3, backoff=0.5), [FakeResponse(503), Transient("reset"), ok]
    )
    assert result is ok
    assert log == ["send:503", "wait:0.5", "send:Transient", "wait:1", "send:200"]


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
@pytest.mark.parametrize("status", [408, 409, 429, 500, 502])
def test_retryable_statuses(drive_with, status: int) -> None:
    ok = FakeResponse(200)
    result, _ = drive_with(RetryPolicy(max_retries=1, backoff=0), [FakeResponse(status), ok])
    assert result is ok


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_rejected_at_once(drive_with, status: int) -> None:
    result, log = drive_with(RetryPolicy(max_retries=3, backoff=1), [FakeResponse(status)])
    assert outcome(result) == ("Rejected", (status,))
    assert log == [f"send:{status}"]


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
def test_exhausted_after_every_attempt_names_the_last_failure(drive_with) -> None:
    script: Script = [Transient("refused"), FakeResponse(500), FakeResponse(502)]
    result, log = drive_with(RetryPolicy(max_retries=2, backoff=0.25), script)
    assert outcome(result) == ("Exhausted", ("HTTP 502: body of 502", 3))
    assert log == ["send:Transient", "wait:0.25", "send:500", "wait:0.5", "send:502"]


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
def test_unknown_errors_propagate_unretried(drive_with) -> None:
    result, log = drive_with(RetryPolicy(max_retries=3, backoff=1), [KeyError("bug")])
    assert outcome(result) == ("KeyError", ("bug",))
    assert log == ["send:KeyError"]


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
def test_streamed_failures_are_drained_before_the_decision(drive_with) -> None:
    failed, ok = FakeResponse(500), FakeResponse(200)
    result, log = drive_with(RetryPolicy(max_retries=1, backoff=0), [failed, ok], stream=True)
    assert result is ok and failed.drained and not ok.drained
    assert log == ["send:500", "drain", "wait:0", "send:200"]
    rejected = FakeResponse(400)
    result, log = drive_with(RetryPolicy(max_retries=1, backoff=0), [rejected], stream=True)
    assert outcome(result) == ("Rejected", (400,)) and rejected.drained


@pytest.mark.parametrize("drive_with", DRIVERS, ids=["sync", "async"])
def test_retry_after_replaces_the_backoff_and_is_capped(drive_with) -> None:
    ok = FakeResponse(200)
    script: Script = [
        FakeResponse(429, {"retry-after": "3"}),
        FakeResponse(503, {"retry-after": "100000"}),
        ok,
    ]
    result, log = drive_with(RetryPolicy(max_retries=2, backoff=0.1), script)
    assert result is ok
    assert log == ["send:429", "wait:3", "send:503", f"wait:{MAX_RETRY_AFTER:g}", "send:200"]


def test_no_retries_means_one_attempt() -> None:
    result, log = run_sync(RetryPolicy(max_retries=0, backoff=1), [FakeResponse(503)])
    assert outcome(result) == ("Exhausted", ("HTTP 503: body of 503", 1))
    assert log == ["send:503"]


def test_the_plan_yields_plain_steps() -> None:
    plan = RetryPolicy(max_retries=1, backoff=2).plan(Rules(), stream=True)
    assert next(plan) == Send()
    failed = FakeResponse(500)
    assert plan.send(failed) == Drain(failed)
    assert plan.send(None) == Wait(2)
    assert plan.send(None) == Send()
    with pytest.raises(StopIteration) as done:
        plan.send(FakeResponse(200))
    assert done.value.value.status_code == 200


def test_retry_after_parses_seconds_and_http_dates() -> None:
    import time

    assert retry_after("2") == 2.0
    assert retry_after("-5") == 0.0
    assert retry_after(None) is None and retry_after("") is None
    assert retry_after("soon") is None
    assert 8 < (retry_after(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10
