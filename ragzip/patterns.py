"""Must-keep patterns (``Budget.keep_patterns``), compiled once and applied under a time limit.

A regular expression from a request can backtrack for minutes on a few dozen characters
(``(a|aa)+$`` over a long run of ``a``). Every place that applies keep patterns goes through
this module: patterns are compiled with the third-party ``regex`` package (the same syntax as
:mod:`re` for keep patterns) and every search carries its ``timeout``, so a pathological pattern
fails the request with :class:`~ragzip.errors.InvalidInputError` instead of holding a thread.

The limit applies to each search of one pattern over one text: :data:`DEFAULT_TIMEOUT` seconds
unless ``RAGZIP_PATTERN_TIMEOUT`` or :func:`set_pattern_timeout` says otherwise, or a call
passes its own ``timeout``.

Example:
    >>> matches_any([r"\\bv\\d+\\.\\d+\\b"], "fixed in v2.1.")
    True
    >>> match_spans([r"\\d+"], "rooms 12 and 7")
    [(6, 8), (13, 14)]
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Iterable
from typing import Any

import regex

from ragzip.errors import ConfigError, InvalidInputError

__all__ = [
    "DEFAULT_TIMEOUT",
    "compile_pattern",
    "match_spans",
    "matches_any",
    "pattern_timeout",
    "set_pattern_timeout",
]

DEFAULT_TIMEOUT = 0.25
_ENV = "RAGZIP_PATTERN_TIMEOUT"
_timeout: float | None = None  # None: not read from the environment yet
_timeout_lock = threading.Lock()


def _check_timeout(value: object, source: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{source} must be a number of seconds > 0, got {value!r}")
    return float(value)


def pattern_timeout() -> float:
    """Seconds one keep-pattern search may take (``$RAGZIP_PATTERN_TIMEOUT``, else
    :data:`DEFAULT_TIMEOUT`, unless :func:`set_pattern_timeout` changed it).

    Raises:
        ConfigError: ``RAGZIP_PATTERN_TIMEOUT`` is not a number > 0.
    """
    global _timeout
    with _timeout_lock:
        if _timeout is None:
            raw = os.environ.get(_ENV, "").strip()
            value: object = DEFAULT_TIMEOUT
            if raw:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
            _timeout = _check_timeout(value, _ENV)
        return _timeout


def set_pattern_timeout(seconds: float) -> None:
    """Sets the process-wide limit of one keep-pattern search.

    Raises:
        ConfigError: ``seconds`` is not a finite number > 0.
    """
    global _timeout
    value = _check_timeout(seconds, "the keep-pattern timeout")
    with _timeout_lock:
        _timeout = value


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise InvalidInputError(f"invalid keep pattern {pattern!r}: {exc}") from exc


def compile_pattern(pattern: str) -> Any:
    """The compiled ``regex`` pattern of a keep pattern (compiled once, then cached).

    Args:
        pattern: A regular expression (:mod:`re` syntax).

    Returns:
        A ``regex.Pattern``.

    Raises:
        InvalidInputError: ``pattern`` is not a string or does not compile.
    """
    if not isinstance(pattern, str):
        raise InvalidInputError(
            f"a keep pattern must be a string, got {type(pattern).__name__} {pattern!r}"
        )
    return _compile(pattern)


def _limit(timeout: float | None) -> float:
    return pattern_timeout() if timeout is None else _check_timeout(timeout, "timeout")


def _too_slow(pattern: str, limit: float) -> InvalidInputError:
    return InvalidInputError(
        f"keep pattern {pattern!r} took longer than {limit:g} s on one text and was stopped "
        "(it backtracks too much): simplify the pattern, or pass the text to keep as a literal "
        "'keep' string instead"
    )


def matches_any(patterns: Iterable[str], text: str, *, timeout: float | None = None) -> bool:
    """Whether any pattern occurs in ``text`` (``re.search`` semantics).

    Args:
        patterns: Keep patterns.
        text: The text searched.
        timeout: Seconds each search may take; ``None`` uses :func:`pattern_timeout`.

    Raises:
        InvalidInputError: a pattern does not compile, or a search ran out of time.
    """
    limit = _limit(timeout)
    for pattern in patterns:
        compiled = compile_pattern(pattern)
        try:
            if compiled.search(text, timeout=limit) is not None:
                return True
        except TimeoutError as exc:
            raise _too_slow(pattern, limit) from exc
    return False


def match_spans(
    patterns: Iterable[str], text: str, *, timeout: float | None = None
) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the non-empty matches of each pattern in ``text``
    (``re.finditer`` semantics, pattern by pattern).

    Args:
        patterns: Keep patterns.
        text: The text searched.
        timeout: Seconds all matches of one pattern may take; ``None`` uses
            :func:`pattern_timeout`.

    Raises:
        InvalidInputError: a pattern does not compile, or a search ran out of time.
    """
    limit = _limit(timeout)
    spans: list[tuple[int, int]] = []
    for pattern in patterns:
        compiled = compile_pattern(pattern)
        try:
            spans.extend(
                m.span() for m in compiled.finditer(text, timeout=limit) if m.end() > m.start()
            )
        except TimeoutError as exc:
            raise _too_slow(pattern, limit) from exc
    return spans
