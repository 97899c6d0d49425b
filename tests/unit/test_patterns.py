"""Keep patterns: compiled once, applied with a time limit, the same answers as ``re``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest

import ragzip.patterns as patterns
from ragzip.compressors.token_prune.words import Words, forced_by_strings
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.patterns import (
    DEFAULT_TIMEOUT,
    compile_pattern,
    match_spans,
    matches_any,
    pattern_timeout,
    set_pattern_timeout,
)
from ragzip.types import Budget

# Exponential backtracking for a backtracking engine: (a|aa)+ splits a run of n letters in
# Fibonacci(n) ways, and the "!" makes every split fail. Nothing finishes this in our lifetime.
CATASTROPHIC = r"(a|aa)+$"
EVIL_TEXT = "a" * 64 + "! x."


@pytest.fixture(autouse=True)
def default_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the default limit, whatever the environment or another test set."""
    monkeypatch.delenv("RAGZIP_PATTERN_TIMEOUT", raising=False)
    monkeypatch.setattr(patterns, "_timeout", None)
    yield


# -- the time limit -------------------------------------------------------------------------------
def test_catastrophic_pattern_raises_invalid_input() -> None:
    with pytest.raises(InvalidInputError) as caught:
        matches_any([CATASTROPHIC], EVIL_TEXT, timeout=0.05)
    message = str(caught.value)
    assert CATASTROPHIC in message
    assert "simplify" in message and "literal 'keep' string" in message


def test_catastrophic_pattern_under_the_default_limit() -> None:
    with pytest.raises(InvalidInputError, match=r"took longer than 0\.25 s"):
        matches_any([CATASTROPHIC], EVIL_TEXT)


def test_budget_must_keep_and_word_spans_stop_too() -> None:
    budget = Budget(ratio=2, keep_patterns=(CATASTROPHIC,))  # it compiles: it is valid
    with pytest.raises(InvalidInputError, match="simplify"):
        budget.must_keep(EVIL_TEXT)
    with pytest.raises(InvalidInputError, match="simplify"):
        match_spans([CATASTROPHIC], EVIL_TEXT, timeout=0.05)
    words = Words(np.array([0]), np.array([64]), np.array([0.5]), np.array([False]))
    with pytest.raises(InvalidInputError, match="simplify"):
        forced_by_strings(EVIL_TEXT, words, patterns=[CATASTROPHIC])


def test_a_compressor_request_with_a_catastrophic_pattern_fails_cleanly() -> None:
    from ragzip.compressors.extractive import ExtractiveCompressor

    budget = Budget(ratio=2, keep_patterns=(CATASTROPHIC,))
    docs = [f"The tower is tall. {EVIL_TEXT}", "Another document about the tower."]
    with pytest.raises(InvalidInputError, match="simplify"):
        ExtractiveCompressor().compress("How tall is the tower?", docs, budget)


def test_nested_quantifier_from_issue_13_answers_like_re() -> None:
    # (a+)+$ hangs Python's re on this text; the regex engine sees through it and answers.
    text = "aaaaaaaaaaaaaaaaaaaaaaaaaaa! x."
    assert matches_any([r"(a+)+$"], text) is False
    assert match_spans([r"(a+)+$"], text) == []
    assert matches_any([r"(a+)+"], text) is True


def test_the_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pattern_timeout() == DEFAULT_TIMEOUT
    set_pattern_timeout(0.02)
    assert pattern_timeout() == 0.02
    with pytest.raises(InvalidInputError, match=r"took longer than 0\.02 s"):
        matches_any([CATASTROPHIC], EVIL_TEXT)
    monkeypatch.setattr(patterns, "_timeout", None)
    monkeypatch.setenv("RAGZIP_PATTERN_TIMEOUT", "0.5")
    assert pattern_timeout() == 0.5


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "1", True])
def test_bad_limits_are_config_errors(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError):
        set_pattern_timeout(value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        matches_any([r"\d"], "1", timeout=value)  # type: ignore[arg-type]


def test_bad_limit_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGZIP_PATTERN_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="RAGZIP_PATTERN_TIMEOUT"):
        pattern_timeout()


# -- same answers as before ------------------------------------------------------------------------
CASES = [
    (r"\d+", "rooms 12 and 7, floor 3"),
    (r"\bv\d+\.\d+\b", "fixed in v2.1 and v10.22; not xv3.4"),
    (r"(?i)eiffel", "The EIFFEL tower, Eiffel's design"),
    (r"[A-Z][a-z]+ [A-Z][a-z]+", "Gustave Eiffel met Maurice Koechlin in Paris."),
    (r"^#+ .*$", "# Title\ntext\n## Sub"),
    (r"(?m)^#+ .*$", "# Title\ntext\n## Sub"),
    (r"x*", "abc"),  # only empty matches
    (r"colou?r", "color and colour"),
    (r"\w+@\w+\.com", "mail bob@example.com or ann@site.com"),
    (r"é+", "café crème"),
    (r"nothing", "no match here"),
]


@pytest.mark.parametrize(("pattern", "text"), CASES)
def test_same_matches_as_re(pattern: str, text: str) -> None:
    assert matches_any([pattern], text) == (re.search(pattern, text) is not None)
    expected = [m.span() for m in re.finditer(pattern, text) if m.end() > m.start()]
    assert match_spans([pattern], text) == expected


def test_several_patterns() -> None:
    assert matches_any([r"zzz", r"\d"], "a1") is True
    assert matches_any([], "a1") is False
    assert match_spans([r"\d", r"b+"], "a1bb2") == [(1, 2), (4, 5), (2, 4)]


def test_compiled_once() -> None:
    assert compile_pattern(r"\d+x") is compile_pattern(r"\d+x")


@pytest.mark.parametrize("pattern", ["(unclosed", "[z-a]", "a{2,1}", 5, None])
def test_invalid_patterns_are_invalid_input(pattern: object) -> None:
    with pytest.raises(InvalidInputError, match="keep pattern"):
        compile_pattern(pattern)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="keep pattern"):
        Budget(ratio=2, keep_patterns=(pattern,))  # type: ignore[arg-type]


def test_forced_by_strings_flags_words_under_strings_and_patterns() -> None:
    text = "Call 555 1234 about Article 12 today"
    starts = np.array([0, 5, 9, 14, 20, 28, 31])
    ends = np.array([4, 8, 13, 19, 27, 30, 36])
    words = Words(starts, ends, np.full(7, 0.5), np.zeros(7, dtype=bool))
    forced = forced_by_strings(text, words, ["Article 12"], [r"\d{4}"])
    assert forced.tolist() == [False, False, True, False, True, True, False]
    assert not forced_by_strings(text, words).any()


def test_literal_keep_strings_match_without_overlap() -> None:
    # as re.finditer(re.escape("aa"), "aaa") did: one occurrence at 0..2, none at 1..3
    last = Words(np.array([2]), np.array([3]), np.array([0.5]), np.array([False]))
    assert forced_by_strings("aaa", last, ["aa"]).tolist() == [False]
    first = Words(np.array([0]), np.array([1]), np.array([0.5]), np.array([False]))
    assert forced_by_strings("aaa", first, ["aa", ""]).tolist() == [True]
