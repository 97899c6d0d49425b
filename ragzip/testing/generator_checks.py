"""What every generation keeps, checked by :func:`check_generation`, and helpers of the
generator contract (:mod:`ragzip.testing.generator_contracts`). Needs no pytest."""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from ragzip.generators.base import Generation, Generator, MessagesLike

if TYPE_CHECKING:
    from pytest import MonkeyPatch

__all__ = [
    "FINISH_REASONS",
    "BackendSpy",
    "check_generation",
    "collect",
    "greedy",
    "joined",
    "stop_inside",
]


FINISH_REASONS = frozenset({"stop", "length"})


def check_generation(generation: Generation, max_tokens: int, *, usage: bool = True) -> None:
    """Asserts the invariants of every :class:`Generation`.

    * a frozen Generation with a ``str`` text and a non-empty model name;
    * ``finish_reason`` is ``"stop"``, ``"length"`` or ``None``; ``seconds`` a float >= 0;
    * with ``usage``, builtin-int token counts: a positive prompt count and at most
      ``max_tokens`` completion tokens;
    * ``to_dict()`` is plain JSON.

    Args:
        generation: What the generator returned.
        max_tokens: The ``max_tokens`` it was given.
        usage: Whether the generator reports token counts.
    """
    assert isinstance(generation, Generation), f"expected a Generation, got {generation!r}"
    assert isinstance(generation.text, str), f"text {generation.text!r} is not a str"
    assert isinstance(generation.model, str) and generation.model, generation.model
    assert generation.finish_reason is None or generation.finish_reason in FINISH_REASONS, (
        generation.finish_reason
    )
    assert type(generation.seconds) is float and generation.seconds >= 0, generation.seconds
    if usage:
        prompt, completion = generation.prompt_tokens, generation.completion_tokens
        assert type(prompt) is int and prompt > 0, f"prompt_tokens {prompt!r}"
        assert type(completion) is int, f"completion_tokens {completion!r}"
        assert 0 <= completion <= max_tokens, f"{completion} tokens for max_tokens={max_tokens}"
    as_dict = generation.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict, "to_dict() is not plain JSON"


async def collect(deltas: AsyncIterator[str]) -> list[str]:
    """The items of an async stream, in order."""
    return [d async for d in deltas]


def joined(deltas: Iterator[str]) -> str:
    """A stream's deltas joined, after checking each is a non-empty string."""
    pieces = list(deltas)
    assert all(isinstance(p, str) and p for p in pieces), f"empty or non-str deltas: {pieces}"
    return "".join(pieces)


def stop_inside(text: str) -> str | None:
    """A stop string that first occurs inside ``text``, after its start; None if too short."""
    words = text.split()
    for word in words[1:]:
        if text.index(word) > 0:
            return word
    return text[len(text) // 2 :] if len(text.strip()) > 1 and text[len(text) // 2 :] else None


# Greedy answers by generator object, then by prompt and max_tokens.
_ANSWERS: weakref.WeakKeyDictionary[Any, dict[str, Generation]] = weakref.WeakKeyDictionary()


def greedy(generator: Generator, messages: MessagesLike, max_tokens: int) -> Generation:
    """``generator.generate(messages, max_tokens=max_tokens)``, once per generator object."""
    key = f"{max_tokens}|{json.dumps(messages, sort_keys=True)}"
    try:
        answers = _ANSWERS.setdefault(generator, {})
    except TypeError:  # not weakly referenceable: no reuse
        return generator.generate(messages, max_tokens=max_tokens)
    if key not in answers:
        answers[key] = generator.generate(messages, max_tokens=max_tokens)
    return answers[key]


class BackendSpy:
    """Replaces backend methods of one generator with ones that record and refuse calls
    (for one test: ``monkeypatch`` undoes it)."""

    def __init__(self, monkeypatch: MonkeyPatch, generator: Any, names: tuple[str, ...]):
        self.calls: list[str] = []
        for name in names:
            if callable(getattr(generator, name, None)):
                monkeypatch.setattr(generator, name, self._refuse(name))

    def _refuse(self, name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"{name}() ran for an invalid request")

        return refuse
