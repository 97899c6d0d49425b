"""Reading what an OpenAI-compatible server answers: completions, stream events and failures.

The client (:mod:`ragzip.generators.openai_compat`) sends; this module turns the server's JSON
into :class:`~ragzip.generators.request.Generation` objects and text deltas, and its failures
into :class:`~ragzip.errors.GenerationError` messages that quote the server and name the
endpoint without credentials. :class:`Failures` is what the retry plan
(:mod:`ragzip.generators.retry`) asks about failed attempts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ragzip._optional import require
from ragzip.errors import GenerationError
from ragzip.generators.request import Generation
from ragzip.wire.openai import redact_url

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Failures",
    "error_message",
    "error_message_of",
    "excerpt",
    "parse_completion",
    "parse_delta",
]


def parse_completion(
    response: httpx.Response, model: str, shown_url: str, chat: bool = True
) -> Generation:
    """A chat completion (``choices[0].message.content``) or, with ``chat=False``, a text
    completion (``choices[0].text``); ``model`` when the answer names none.

    Raises:
        GenerationError: the answer holds no completion.
    """
    try:
        data = response.json()
        choice = data["choices"][0]
        text = (choice["message"].get("content") if chat else choice.get("text")) or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        kind = "chat completion" if chat else "completion"
        raise GenerationError(
            f"{shown_url} answered HTTP {response.status_code} with no {kind}: "
            f"{excerpt(response.text)}"
        ) from exc
    usage = data.get("usage") or {}
    return Generation(
        text=text,
        model=str(data.get("model") or model),
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        finish_reason=choice.get("finish_reason"),
        seconds=0.0,
    )


def parse_delta(payload: str, shown_url: str) -> str:
    """The text of one streamed chunk (``choices[0].delta.content``; ``""`` when it has none).

    Raises:
        GenerationError: the event is not JSON, is an error event, or has no delta.
    """
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise GenerationError(f"{shown_url} streamed invalid JSON: {excerpt(payload)}") from exc
    if isinstance(event, dict) and event.get("error"):
        raise GenerationError(f"{shown_url} failed mid-stream: {error_message(event)}")
    try:
        content = event["choices"][0]["delta"].get("content") if event["choices"] else None
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise GenerationError(
            f"{shown_url} streamed an event with no choices[0].delta: {excerpt(payload)}"
        ) from exc
    return content or ""


class Failures:
    """How the OpenAI-compatible client reads failed attempts (a retry plan's outcomes).

    Args:
        shown_url: The endpoint as messages name it (without credentials).
        timeout: The client's timeout in seconds, for the timeout message.
    """

    def __init__(self, shown_url: str, timeout: float) -> None:
        self.shown_url = shown_url
        self.timeout = timeout

    def transient(self, exc: Exception) -> str | None:
        """Timeouts and transport errors (connection refused or reset) are worth a retry."""
        hx = require("httpx", "the OpenAI-compatible generator")
        if isinstance(exc, hx.TimeoutException):
            return f"timed out after {self.timeout:g} s ({type(exc).__name__})"
        if isinstance(exc, hx.TransportError):
            return f"{type(exc).__name__}: {exc}"
        return None

    def describe(self, response: httpx.Response) -> str:
        return error_message_of(response)

    def rejected(self, response: httpx.Response) -> GenerationError:
        return GenerationError(
            f"{redact_url(str(response.request.url))} answered HTTP {response.status_code}: "
            f"{error_message_of(response)}"
        )

    def exhausted(self, last: str, attempts: int) -> GenerationError:
        return GenerationError(
            f"{self.shown_url} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
            f"{last}. Check that the server is up and the model is served, or raise "
            "timeout/max_retries."
        )


def error_message_of(response: httpx.Response) -> str:
    """The server's message in an error answer, or an excerpt of its body."""
    try:
        return error_message(response.json())
    except ValueError:
        return excerpt(response.text) or response.reason_phrase


def error_message(data: Any) -> str:
    """The human message in OpenAI-style (``{"error": {"message"}}``) and other error bodies."""
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error is not None:
            return str(error)
    return excerpt(json.dumps(data))


def excerpt(text: str, limit: int = 500) -> str:
    """``text`` stripped and cut to ``limit`` characters."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
