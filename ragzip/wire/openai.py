"""The OpenAI chat-completions wire format, written once.

Plain functions over dicts and bytes (no web framework): request options, completion bodies,
stream chunks, usage, errors, model lists and server-sent events. The compressing proxy, the
local upstream router, the stdlib test server and the HTTP client generator all use them, so
the four speak exactly the same dialect.

Example:
    >>> options = ChatOptions.of({"messages": [{"role": "user", "content": "hi"}]})
    >>> completion("m", "hello", finish_reason="stop", prompt_tokens=3, completion_tokens=1)
    >>> sse(chunk("chatcmpl-1", 0, "m", {"content": "he"}))
    b'data: {...}\\n\\n'
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ragzip.errors import InvalidInputError

__all__ = [
    "SSE_DONE",
    "ChatOptions",
    "ChunkWriter",
    "SSEDecoder",
    "chunk",
    "completion",
    "error",
    "finish_of",
    "iter_sse_data",
    "message_texts",
    "models_list",
    "new_id",
    "redact_url",
    "sse",
    "text_completion",
    "usage",
]

SSE_DONE = b"data: [DONE]\n\n"


def new_id(prefix: str = "chatcmpl") -> str:
    """A fresh completion id such as ``chatcmpl-3f2a...``."""
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int]:
    """OpenAI's ``usage`` object (unknown counts as 0)."""
    prompt, completion_ = prompt_tokens or 0, completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_,
        "total_tokens": prompt + completion_,
    }


def completion(
    model: str,
    text: str,
    *,
    finish_reason: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    ident: str | None = None,
) -> dict[str, Any]:
    """A whole ``chat.completion`` body with one choice."""
    return {
        "id": ident or new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason or "stop",
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def text_completion(
    model: str,
    text: str,
    *,
    finish_reason: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> dict[str, Any]:
    """A ``text_completion`` body (``/v1/completions``) with one choice."""
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": finish_reason or "stop"}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(
    ident: str,
    created: int,
    model: str,
    delta: Mapping[str, str] | None,
    finish_reason: str | None = None,
    *,
    usage_: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` makes the usage-only final chunk."""
    body: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason}],
    }
    if usage_ is not None:
        body["usage"] = dict(usage_)
    return body


def error(
    message: str,
    kind: str = "invalid_request_error",
    *,
    param: str | None = None,
    code: str | int | None = None,
) -> dict[str, Any]:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def models_list(names: Iterable[str], owned_by: str = "ragzip") -> dict[str, Any]:
    """The ``GET /v1/models`` body."""
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": owned_by} for n in names],
    }


def sse(payload: Any) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def finish_of(completion_tokens: int | None, max_tokens: int | None) -> str:
    """``"length"`` when a completion used its whole token allowance, else ``"stop"``."""
    if completion_tokens is None or max_tokens is None:
        return "stop"
    return "length" if completion_tokens >= max_tokens else "stop"


def message_texts(message: Mapping[str, Any]) -> list[str]:
    """The text of a message: its string content, or the ``text`` parts of a list content."""
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"]
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]
    return []


def redact_url(url: str) -> str:
    """``url`` without user info or query (credentials never reach an error message)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class ChatOptions:
    """What a chat completions request asks of a generator.

    Attributes:
        messages: The messages as sent, list contents (text parts) joined into strings.
        max_tokens: ``max_completion_tokens`` or ``max_tokens``; ``None`` for the default.
        temperature: Sampling temperature; ``None`` for the default.
        stop: Stop strings.
        stream: Server-sent events instead of one body.
        include_usage: ``stream_options.include_usage``: a last chunk with ``usage``.
    """

    messages: Any
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False

    @classmethod
    def of(cls, body: Any) -> ChatOptions:
        """Reads a request body; raises :class:`InvalidInputError` naming the field.

        Messages must be a list; list contents are joined to text. The generator validates
        the messages themselves and the numbers (``max_tokens >= 1``...).
        """
        if not isinstance(body, Mapping):
            raise InvalidInputError("the request body must be a JSON object")
        if "messages" not in body:
            raise InvalidInputError("'messages' is required")
        messages = body["messages"]
        if not isinstance(messages, list):
            raise InvalidInputError("'messages' must be a list of messages")
        messages = [_plain_message(m) for m in messages]
        stop = body.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)
        ):
            raise InvalidInputError("'stop' must be a string or a list of strings")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise InvalidInputError("'stream' must be true or false")
        if body.get("n", 1) not in (1, None):
            raise InvalidInputError("only n=1 is supported")
        stream_options = body.get("stream_options") or {}
        if not isinstance(stream_options, Mapping):
            raise InvalidInputError("'stream_options' must be an object")
        include_usage = stream_options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise InvalidInputError("'stream_options.include_usage' must be true or false")
        return cls(
            messages=messages,
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
            temperature=body.get("temperature"),
            stop=tuple(stop or ()),
            stream=stream,
            include_usage=include_usage,
        )

    def generation_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a ragzip generator's ``generate``/``stream``."""
        kwargs: dict[str, Any] = {}
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.stop:
            kwargs["stop"] = list(self.stop)
        return kwargs


def _plain_message(message: Any) -> Any:
    """A message whose list content (text parts) is joined into one string."""
    if isinstance(message, Mapping) and isinstance(message.get("content"), list):
        return {**message, "content": "\n".join(message_texts(message))}
    return message


class SSEDecoder:
    """Incremental decoder of server-sent events: feed lines, get each event's ``data``.

    Multi-line data is joined with ``"\\n"``; comments and fields other than ``data`` are
    skipped.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Takes one line without its line ending; returns the data of a completed event."""
        line = line.rstrip("\r\n")
        if not line:
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """The data of a last event that was not followed by a blank line."""
        return self.feed("")


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yields the ``data`` of each server-sent event in ``lines``."""
    decoder = SSEDecoder()
    for line in lines:
        payload = decoder.feed(line)
        if payload is not None:
            yield payload
    payload = decoder.flush()
    if payload is not None:
        yield payload


class ChunkWriter:
    """The events of one streamed completion, all with the same id, time and model.

    Example:
        >>> w = ChunkWriter("m")
        >>> events = [w.start(), w.delta("Hel"), w.delta("lo"), w.finish("stop"), SSE_DONE]
    """

    def __init__(self, model: str) -> None:
        self.ident = new_id()
        self.created = int(time.time())
        self.model = model

    def start(self) -> bytes:
        """The first chunk: the assistant role with empty content."""
        return sse(
            chunk(self.ident, self.created, self.model, {"role": "assistant", "content": ""})
        )

    def delta(self, text: str) -> bytes:
        return sse(chunk(self.ident, self.created, self.model, {"content": text}))

    def finish(self, reason: str) -> bytes:
        """The chunk with an empty delta and the finish reason."""
        return sse(chunk(self.ident, self.created, self.model, {}, reason))

    def usage(self, prompt_tokens: int | None, completion_tokens: int | None) -> bytes:
        """The usage-only chunk sent when ``stream_options.include_usage`` is set."""
        body = chunk(
            self.ident,
            self.created,
            self.model,
            None,
            usage_=usage(prompt_tokens, completion_tokens),
        )
        return sse(body)
