"""Documents, budgets and results: validation, limits, immutability, serialization."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from ragzip.errors import InvalidInputError, RagzipError
from ragzip.types import (
    Budget,
    CompressedDocument,
    CompressionResult,
    Document,
    Span,
    as_documents,
)


def result(tokens_before: int, tokens_after: int, **kwargs: object) -> CompressionResult:
    docs = (CompressedDocument("kept text", "d1", (Span(0, 9),), 0.5, {"title": "T"}),)
    return CompressionResult(docs, tokens_before, tokens_after, "words", "fake", **kwargs)  # type: ignore[arg-type]


# -- Budget -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a ratio, a token count, or both"),
        ({"ratio": None, "tokens": None}, "needs a ratio"),
        ({"ratio": 0.5}, ">= 1"),
        ({"ratio": 0}, ">= 1"),
        ({"ratio": -4}, ">= 1"),
        ({"ratio": math.inf}, "finite"),
        ({"ratio": math.nan}, "finite"),
        ({"ratio": True}, "must be a number"),
        ({"ratio": "4"}, "must be a number"),
        ({"ratio": [4]}, "must be a number"),
        ({"tokens": True}, "must be an int"),
        ({"tokens": 10.0}, "must be an int"),
        ({"tokens": "10"}, "must be an int"),
        ({"tokens": -1}, ">= 0"),
        ({"ratio": 2, "keep": "Article 12"}, "list of strings"),
        ({"ratio": 2, "keep_patterns": r"\d+"}, "list of strings"),
        ({"ratio": 2, "keep_patterns": ("(unclosed",)}, "invalid keep pattern"),
        ({"ratio": 2, "keep_patterns": ("[z-a]",)}, "invalid keep pattern"),
    ],
)
def test_invalid_budgets_raise_invalid_input_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        Budget(**kwargs)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RagzipError)


def test_budget_normalises_fields() -> None:
    budget = Budget(ratio=4, keep=["Article 12", "", 7], keep_patterns=[r"\d+"])  # type: ignore[arg-type]
    assert budget.ratio == 4.0 and type(budget.ratio) is float
    assert budget.keep == ("Article 12", "7") and budget.keep_patterns == (r"\d+",)
    assert Budget(ratio=1).ratio == 1.0
    assert Budget(tokens=0).limit(100) == 0


@pytest.mark.parametrize(
    ("budget", "before", "limit"),
    [
        (Budget(ratio=4), 100, 25),
        (Budget(ratio=4), 103, 25),  # floors
        (Budget(ratio=3), 10, 3),
        (Budget(ratio=1), 57, 57),
        (Budget(ratio=4), 0, 0),
        (Budget(tokens=30), 100, 30),
        (Budget(tokens=300), 100, 300),  # a ceiling, not a target
        (Budget(ratio=2, tokens=30), 100, 30),  # the stricter wins
        (Budget(ratio=10, tokens=30), 100, 10),
        (Budget(ratio=2.5), 10, 4),
    ],
)
def test_budget_limit(budget: Budget, before: int, limit: int) -> None:
    assert budget.limit(before) == limit


def test_must_keep_strings_and_patterns() -> None:
    budget = Budget(ratio=2, keep=("Article 12",), keep_patterns=(r"\bv\d+\.\d+\b",))
    assert budget.must_keep("See Article 12 of the treaty.")
    assert budget.must_keep("Fixed in v2.10 last week.")
    assert not budget.must_keep("See article 12 of the treaty.")  # case-sensitive
    assert not budget.must_keep("Nothing here v2 or 2.10.")
    assert not Budget(ratio=2).must_keep("anything")


def test_budget_of_accepts_budgets_numbers_and_dicts() -> None:
    budget = Budget(ratio=3)
    assert Budget.of(budget) is budget
    assert Budget.of(4) == Budget(ratio=4.0)
    assert Budget.of(2.5) == Budget(ratio=2.5)
    assert Budget.of({"tokens": 50, "keep": ["x"]}) == Budget(tokens=50, keep=("x",))
    for bad in ("4", True, None, [4]):
        with pytest.raises(InvalidInputError):
            Budget.of(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Budget.of({"ratio": 0.1})
    with pytest.raises(TypeError):  # unknown field names are a programming error
        Budget.of({"ration": 4})


def test_budget_round_trips_through_to_dict() -> None:
    budget = Budget(ratio=2, tokens=100, keep=("a",), keep_patterns=(r"\d",))
    data = budget.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Budget.of(data) == budget


def test_budget_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Budget(ratio=2).ratio = 3  # type: ignore[misc]


# -- Document -----------------------------------------------------------------------------------
def test_document_from_str_dict_and_document() -> None:
    assert Document.from_any("hello", 3) == Document("hello", id="3")
    doc = Document.from_any(
        {"text": "Paris.", "id": 7, "title": "Paris", "metadata": {"lang": "en"}}, 0
    )
    assert doc.id == "7" and doc.title == "Paris"
    assert dict(doc.metadata) == {"lang": "en", "title": "Paris"}
    assert Document.from_any(doc) is doc
    assert Document.from_any({"text": "no id"}, 4).id == "4"
    # An explicit metadata title wins over a top-level one.
    both = Document.from_any({"text": "t", "title": "outer", "metadata": {"title": "inner"}})
    assert both.title == "inner"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (b"bytes", "got bytes"),
        ({"id": "1"}, "no 'text' field"),
        ({"text": b"bytes"}, "decode it first"),
        ({"text": None}, "must be str"),
        (42, "must be a str, a dict"),
        (None, "must be a str, a dict"),
    ],
)
def test_document_from_bad_input(obj: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Document.from_any(obj)  # type: ignore[arg-type]


def test_document_text_must_be_str() -> None:
    with pytest.raises(InvalidInputError, match="decode_text"):
        Document(b"caf\xc3\xa9")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Document(12)  # type: ignore[arg-type]


def test_document_copies_and_freezes_metadata() -> None:
    meta = {"title": "T", "tags": ["a"]}
    doc = Document("text", id=5, metadata=meta)  # type: ignore[arg-type]
    meta["title"] = "changed"
    assert doc.title == "T" and doc.id == "5"
    with pytest.raises(TypeError):
        doc.metadata["title"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.text = "other"  # type: ignore[misc]
    assert Document("no title").title == ""
    assert doc.to_dict() == {"id": "5", "text": "text", "metadata": {"title": "T", "tags": ["a"]}}


def test_as_documents() -> None:
    docs = as_documents(["a", {"text": "b", "id": "x"}, Document("c", id="y")])
    assert [(d.id, d.text) for d in docs] == [("0", "a"), ("x", "b"), ("y", "c")]
    for bad in ("one string", b"bytes", {"text": "a dict"}):
        with pytest.raises(InvalidInputError, match="must be a list"):
            as_documents(bad)  # type: ignore[arg-type]
    assert as_documents([]) == []


# -- results ------------------------------------------------------------------------------------
def test_result_ratio() -> None:
    assert result(100, 25).ratio == 4.0
    assert type(result(100, 25).ratio) is float
    assert result(100, 0).ratio == math.inf
    assert result(0, 0).ratio == 1.0
    assert result(10, 10).ratio == 1.0


def test_result_to_dict_is_plain_json() -> None:
    data = result(
        100, 0, timings={"total": 0.5}, dropped_ids=["d2"], info={"augmented": 1.0}
    ).to_dict()
    assert data["ratio"] is None  # inf is not JSON
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "compressor": "fake",
        "tokenizer": "words",
        "tokens_before": 100,
        "tokens_after": 0,
        "ratio": None,
        "timings": {"total": 0.5},
        "dropped_ids": ["d2"],
        "info": {"augmented": 1.0},
        "documents": [
            {
                "source_id": "d1",
                "text": "kept text",
                "spans": [[0, 9]],
                "score": 0.5,
                "metadata": {"title": "T"},
            }
        ],
    }
    assert result(100, 25).to_dict()["ratio"] == 4.0


def test_result_is_frozen_all_the_way_down() -> None:
    res = result(10, 5, timings={"total": 1.0}, info={"k": 1}, dropped_ids=["x"])
    assert isinstance(res.documents, tuple) and res.dropped_ids == ("x",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.tokens_after = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.documents[0].text = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.documents[0].spans[0].start = 3  # type: ignore[misc]
    for mapping in (res.timings, res.info, res.documents[0].metadata):
        with pytest.raises(TypeError):
            mapping["new"] = 1  # type: ignore[index]


def test_result_text_and_is_empty() -> None:
    two = CompressionResult(
        (CompressedDocument("a", "1"), CompressedDocument("b", "2")), 4, 2, "words", "x"
    )
    assert two.text() == "a\nb" and two.text(" | ") == "a | b"
    assert not two.is_empty
    assert CompressionResult((), 0, 0, "words", "x").is_empty


def test_by_source_groups_pieces_per_source_in_input_order() -> None:
    pieces = (
        CompressedDocument("first of 0.", "0", (Span(0, 11),)),
        CompressedDocument("only of 2.", "2"),
        CompressedDocument("second of 0.", "0", (Span(20, 32),)),
    )
    groups = CompressionResult(pieces, 10, 5, "words", "x").by_source()
    assert list(groups) == ["0", "2"]
    assert groups["0"] == (pieces[0], pieces[2]) and groups["2"] == (pieces[1],)
    assert CompressionResult((), 0, 0, "words", "x").by_source() == {}
