"""What a generator is asked and what it answers: messages, a validated request, a generation.

:meth:`GenerationRequest.of` is the one place the public arguments of every generator are
checked, so that backends only ever see valid requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

from ragzip.errors import InvalidInputError

__all__ = ["Generation", "GenerationRequest", "Message", "MessagesLike", "normalize_messages"]


class Message(TypedDict):
    """One chat message, as OpenAI's chat API takes it: ``{"role": ..., "content": ...}``."""

    role: str
    content: str


MessagesLike = str | Sequence[Message] | Sequence[Mapping[str, Any]]
"""A prompt string (one user message) or a sequence of role/content mappings."""


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
