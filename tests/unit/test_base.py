"""BaseCompressor's public edge: validation, ids, ordering, limit enforcement, results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ragzip.compressors.base import (
    BaseCompressor,
    Compressor,
    MethodOutput,
    Request,
    enforce_limit,
    truncate,
)
from ragzip.errors import InvalidInputError
from ragzip.testing import KeywordCompressor
from ragzip.tokens import get_counter
from ragzip.types import Budget, CompressedDocument, Document, Span

WORDS = get_counter("words")


class Scripted(BaseCompressor):
    """Returns whatever ``method`` builds from the request, and remembers the requests."""

    name = "scripted"

    def __init__(self, method: Callable[[Request], MethodOutput], tokenizer: str = "words") -> None:
        super().__init__(tokenizer=tokenizer)
        self.method = method
        self.requests: list[Request] = []

    def _compress(self, request: Request) -> MethodOutput:
        self.requests.append(request)
        return self.method(request)


def keep_all(request: Request) -> MethodOutput:
    return MethodOutput(
        [
            CompressedDocument(d.text, d.id, (Span(0, len(d.text)),), float(i))
            for i, d in enumerate(request.documents)
        ],
        {"kept": len(request.documents)},
    )


def doc(text: str, source: str = "d", score: float | None = None) -> CompressedDocument:
    return CompressedDocument(text, source, (Span(10, 10 + len(text)),), score)


# -- enforce_limit and truncate -------------------------------------------------------------
def test_enforce_limit_returns_the_input_when_it_fits() -> None:
    docs = [doc("a b c", "1"), doc("d e", "2")]
    assert enforce_limit(docs, 5, WORDS) is docs
    assert enforce_limit([], 0, WORDS) == []


def test_enforce_limit_drops_the_lowest_scored_first() -> None:
    docs = [doc("a b c", "1", 0.9), doc("d e f", "2", 0.1), doc("g h i", "3", 0.5)]
    kept = enforce_limit(docs, 6, WORDS)
    assert [d.source_id for d in kept] == ["1", "3"]  # input order is kept


def test_enforce_limit_treats_missing_scores_as_least_relevant() -> None:
    docs = [doc("a b c", "1", None), doc("d e f", "2", -5.0)]
    assert [d.source_id for d in enforce_limit(docs, 3, WORDS)] == ["2"]


def test_enforce_limit_cuts_the_document_that_straddles_the_limit() -> None:
    docs = [doc("a b c d", "1", 0.9), doc("e f g h", "2", 0.1)]
    kept = enforce_limit(docs, 6, WORDS)
    assert [(d.source_id, d.text) for d in kept] == [("1", "a b c d"), ("2", "e f")]
    assert kept[1].metadata["truncated"] is True
    assert sum(WORDS.count(d.text) for d in kept) == 6


def test_enforce_limit_zero_keeps_nothing() -> None:
    assert enforce_limit([doc("a b", "1", 1.0), doc("c", "2", 0.0)], 0, WORDS) == []


@pytest.mark.parametrize("limit", range(0, 12))
def test_enforce_limit_always_holds(limit: int) -> None:
    docs = [
        doc("one two three", "1", 0.3),
        doc("four five", "2", None),
        doc("six seven eight nine", "3", 0.8),
    ]
    kept = enforce_limit(docs, limit, WORDS)
    assert sum(WORDS.count(d.text) for d in kept) <= limit
    assert all(d.text.strip() for d in kept)


def test_enforce_limit_with_a_subword_counter() -> None:
    approx = get_counter("approx")
    docs = [doc("internationalization, standardization and decentralization.", "1", 0.5)]
    for limit in range(0, 12):
        kept = enforce_limit(docs, limit, approx)
        assert sum(approx.count(d.text) for d in kept) <= limit


def test_truncate_keeps_the_longest_fitting_word_prefix() -> None:
    original = CompressedDocument("one two three four", "x", (Span(5, 23),), 0.4, {"k": 1})
    cut = truncate(original, 2, WORDS)
    assert cut.text == "one two" and cut.source_id == "x" and cut.score == 0.4
    assert dict(cut.metadata) == {"k": 1, "truncated": True}
    assert cut.spans == (Span(5, 12),)
    assert original.text == "one two three four" and "truncated" not in original.metadata
    assert truncate(original, 0, WORDS).text == ""
    assert truncate(original, 99, WORDS).text == "one two three four"


def test_truncate_keeps_spacing_so_the_span_points_at_the_kept_text() -> None:
    source = "Title line\n\n  First paragraph,  two spaces.\n- item one\n- item two"
    start = source.index("First")
    piece = source[start:]
    original = CompressedDocument("  " + piece, "x", (Span(start - 2, len(source)),))
    for limit in range(0, 10):
        cut = truncate(original, limit, WORDS)
        assert WORDS.count(cut.text) == min(limit, WORDS.count(piece))
        (span,) = cut.spans
        assert source[span.start : span.end] == cut.text
    assert truncate(original, 5, WORDS).text == "First paragraph,  two spaces.\n-"


def test_truncate_span_stays_within_the_original_span() -> None:
    two_spans = CompressedDocument("aa bb cc", "x", (Span(0, 2), Span(50, 55)))
    cut = truncate(two_spans, 2, WORDS)
    assert cut.spans == (Span(0, 2),)
    no_spans = CompressedDocument("aa bb cc", "x")
    assert truncate(no_spans, 1, WORDS).spans == ()


# -- the public edge ------------------------------------------------------------------------
def test_compress_builds_a_result_in_input_order() -> None:
    reversed_output = Scripted(lambda r: MethodOutput(list(reversed(keep_all(r).documents))))
    result = reversed_output.compress("q", ["a b", "c d e", "f"], Budget(ratio=1))
    assert [d.source_id for d in result.documents] == ["0", "1", "2"]
    assert (result.tokens_before, result.tokens_after) == (6, 6)
    assert result.compressor == "scripted" and result.tokenizer == "words"
    assert {"method", "enforce", "total"} <= set(result.timings)
    assert result.dropped_ids == ()


def test_pieces_of_one_document_are_ordered_by_span() -> None:
    def pieces(request: Request) -> MethodOutput:
        d = request.documents[0]
        return MethodOutput(
            [
                CompressedDocument("later", d.id, (Span(20, 25),)),
                CompressedDocument("earlier", d.id, (Span(3, 10),)),
            ]
        )

    result = Scripted(pieces).compress("q", ["x " * 30], 1)
    assert [d.text for d in result.documents] == ["earlier", "later"]


def test_compress_enforces_the_limit_on_what_the_method_returns() -> None:
    result = Scripted(keep_all).compress("q", ["a b c d", "e f g h"], Budget(tokens=5))
    assert result.tokens_after == 5
    assert [(d.source_id, d.text) for d in result.documents] == [("0", "a"), ("1", "e f g h")]


def test_info_is_passed_through_and_blank_output_dropped() -> None:
    def blank(request: Request) -> MethodOutput:
        return MethodOutput([CompressedDocument("   ", request.documents[0].id)], {"why": "blank"})

    result = Scripted(blank).compress("q", ["a b"], 1)
    assert result.documents == () and result.dropped_ids == ("0",)
    assert dict(result.info) == {"why": "blank"}


def test_unknown_source_ids_are_a_bug_in_the_method() -> None:
    bad = Scripted(lambda r: MethodOutput([CompressedDocument("x", "nope")]))
    with pytest.raises(RuntimeError, match="unknown source ids"):
        bad.compress("q", ["a b"], 1)


def test_duplicate_input_ids_are_made_unique() -> None:
    compressor = Scripted(keep_all)
    docs = [
        Document("a", id="x"),
        Document("b", id="x"),
        Document("c", id="y"),
        Document("d", id="x"),
    ]
    result = compressor.compress("q", docs, 1)
    ids = [d.id for d in compressor.requests[0].documents]
    assert ids == ["x", "x#1", "y", "x#3"]
    assert [d.source_id for d in result.documents] == ids
    assert [d.text for d in result.documents] == ["a", "b", "c", "d"]
    assert docs[1].id == "x"  # the caller's documents are untouched


def test_duplicate_ids_are_kept_unique_even_when_a_renamed_id_exists() -> None:
    compressor = Scripted(keep_all)
    docs = [Document("a", id="x"), Document("b", id="x#1"), Document("c", id="x")]
    compressor.compress("q", docs, 1)
    ids = [d.id for d in compressor.requests[0].documents]
    assert len(set(ids)) == 3


def test_the_request_carries_counts_and_limit() -> None:
    compressor = Scripted(keep_all)
    compressor.compress("question", ["a b c", {"text": "d e", "id": "k", "title": "T"}], 2.5)
    request = compressor.requests[0]
    assert request.query == "question"
    assert request.tokens == (3, 2) and request.limit == 2
    assert request.budget == Budget(ratio=2.5)
    assert request.documents[1].title == "T"
    assert request.count("x y") == 2


def test_nothing_to_compress_skips_the_method() -> None:
    compressor = Scripted(keep_all)
    for documents in ([], ["", "  "]):
        result = compressor.compress("q", documents, 2)
        assert result.documents == () and result.tokens_before == result.tokens_after == 0
    assert compressor.requests == []


def test_a_none_query_is_an_empty_query() -> None:
    compressor = Scripted(keep_all)
    compressor.compress(None, ["a"], 1)  # type: ignore[arg-type]
    assert compressor.requests[0].query == ""


@pytest.mark.parametrize(
    ("query", "documents", "budget", "message"),
    [
        ("q", None, 2, "documents must be a list"),
        ("q", "just a string", 2, "not a single string"),
        ("q", {"text": "a dict"}, 2, "not a single string or dict"),
        ("q", [None], 2, "document 0 must be"),
        ("q", ["ok", 5], 2, "document 1 must be"),
        ("q", [b"raw bytes"], 2, "got bytes"),
        ("q", [{"id": "no text"}], 2, "no 'text' field"),
        (42, ["a"], 2, "query must be a string, got int"),
        (b"q", ["a"], 2, "query must be a string, got bytes"),
        (["q"], ["a"], 2, "query must be a string, got list"),
        ("q", ["a"], 0.5, ">= 1"),
        ("q", ["a"], "4", "cannot make a Budget"),
        ("q", ["a"], None, "cannot make a Budget"),
        ("q", ["a"], {"tokens": -1}, ">= 0"),
    ],
)
def test_invalid_input(query: object, documents: object, budget: object, message: str) -> None:
    compressor = Scripted(keep_all)
    with pytest.raises(InvalidInputError, match=message):
        compressor.compress(query, documents, budget)  # type: ignore[arg-type]
    assert compressor.requests == []


def test_acompress_runs_in_a_thread_and_matches_compress() -> None:
    compressor = KeywordCompressor(tokenizer="words")
    docs = ["Bees make honey. Rivers flow.", "Honey is sweet. Stones are hard."]
    sync = compressor.compress("honey bees", docs, 2)
    result = asyncio.run(compressor.acompress("honey bees", docs, 2))
    assert result.to_dict()["documents"] == sync.to_dict()["documents"]


def test_configuration_and_protocol() -> None:
    compressor = Scripted(keep_all, tokenizer="approx")
    assert isinstance(compressor, Compressor)
    assert compressor.to_dict() == {"type": "scripted", "params": {"tokenizer": "approx"}}
    assert compressor.counter is get_counter("approx")
    compressor.warm_up()  # optional, a no-op by default
    with pytest.raises(TypeError):
        BaseCompressor()  # type: ignore[abstract]
