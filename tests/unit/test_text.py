"""The rule-based segmenter and decode_text."""

from __future__ import annotations

import pytest

from ragzip.testing.fixtures import (
    DOCUMENTS,
    INVALID_UTF8,
    UNICODE_TEXTS,
    large_document,
    unique_text,
)
from ragzip.text import decode_text, segment, sentences


def check_spans(text: str, max_words: int = 60) -> list[str]:
    """Asserts the span invariants and returns the sentences."""
    spans = segment(text, max_words)
    previous_end = 0
    for span in spans:
        assert previous_end <= span.start < span.end <= len(text)
        piece = text[span.start : span.end]
        assert piece == piece.strip() and piece
        assert len(piece.split()) <= max_words
        previous_end = span.end
    # Nothing but whitespace is left out.
    covered = set()
    for span in spans:
        covered.update(range(span.start, span.end))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)
    return [text[s.start : s.end] for s in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith met Mr. J. R. R. Tolkien at 5 p.m. on Friday. They talked for hours.",
            ["Dr. Smith met Mr. J. R. R. Tolkien at 5 p.m. on Friday.", "They talked for hours."],
        ),
        (
            "Prices rose, e.g. bread and milk, i.e. basics. See Fig. 3 and the appendix, etc.",
            ["Prices rose, e.g. bread and milk, i.e. basics.", "See Fig. 3 and the appendix, etc."],
        ),
        (
            "The U.S. economy grew 3.5% in 2023. Python 3.12.1 was released. Pi is 3.14159.",
            [
                "The U.S. economy grew 3.5% in 2023.",
                "Python 3.12.1 was released.",
                "Pi is 3.14159.",
            ],
        ),
        (
            'He said "Stop!" Then he left. Really? Yes. (It was.) Next one\u2026 The end.',
            [
                'He said "Stop!"',
                "Then he left.",
                "Really?",
                "Yes.",
                "(It was.)",
                "Next one\u2026",
                "The end.",
            ],
        ),
        (
            "lowercase after a period. continues the sentence. But this starts anew.",
            ["lowercase after a period. continues the sentence.", "But this starts anew."],
        ),
    ],
    ids=[
        "abbreviations-initials",
        "latin-abbreviations",
        "decimals-versions",
        "punctuation",
        "lowercase",
    ],
)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert check_spans(text) == expected


def test_list_items_are_units() -> None:
    text = (
        "Items we need:\n- eggs and milk\n- bread\n* 2.5 kg of flour\n\n"
        "1. First step.\n2) Second step"
    )
    assert check_spans(text) == [
        "Items we need:",
        "- eggs and milk",
        "- bread",
        "* 2.5 kg of flour",
        "1. First step.",
        "2) Second step",
    ]


def test_code_lines_are_units() -> None:
    text = (
        "Example:\n\ndef area(r):\n    return 3.14 * r * r\nprint(area(2))  # 12.56\n\nThat is it."
    )
    assert check_spans(text) == [
        "Example:",
        "def area(r):",
        "return 3.14 * r * r",
        "print(area(2))  # 12.56",
        "That is it.",
    ]


def test_paragraphs_split_at_blank_lines_and_lines_join_within() -> None:
    text = "First paragraph\nwraps here.\n\n\n  Second paragraph.  \r\n\r\nThird"
    assert check_spans(text) == ["First paragraph\nwraps here.", "Second paragraph.", "Third"]


def test_long_sentences_split_at_clauses_first() -> None:
    clauses = [f"clause {i} has a few more words in it" for i in range(12)]
    text = ", ".join(clauses) + "."
    pieces = check_spans(text, max_words=20)
    assert len(pieces) > 1
    assert all(p.endswith((",", ".")) for p in pieces)  # cut after a comma, not mid-clause
    assert " ".join(pieces) == text


def test_long_sentences_without_clauses_split_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(250))
    pieces = check_spans(text, max_words=60)
    assert [len(p.split()) for p in pieces] == [60, 60, 60, 60, 10]
    assert " ".join(pieces) == text


def test_a_single_overlong_clause_is_hard_split() -> None:
    text = "short start, " + " ".join(f"x{i}" for i in range(130)) + "; short end."
    pieces = check_spans(text, max_words=50)
    assert all(len(p.split()) <= 50 for p in pieces)
    assert " ".join(pieces) == text


@pytest.mark.parametrize(
    "text",
    [
        *(d.text for d in DOCUMENTS),
        *UNICODE_TEXTS,
        decode_text(INVALID_UTF8),
        unique_text(20_000, seed=3),
        "\ufeffLeading BOM. Then\u00a0non-breaking\u2003spaces. \u3000Ideographic space.",
        "  \n\n  padded  \n\n\t",
        "no terminal punctuation at all",
        "...!?",
        "a.b.c. d.e.f. G.H.I.",
    ],
)
def test_spans_map_back_to_the_original_text(text: str) -> None:
    check_spans(text)
    check_spans(text, max_words=5)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \r\n", "\u3000\u2003"])
def test_empty_or_whitespace_gives_no_spans(text: str) -> None:
    assert segment(text) == [] and sentences(text) == []


def test_five_megabytes_are_segmented() -> None:  # speed: benchmarks, not tests
    text = large_document(5_000_000).text
    spans = segment(text)
    assert len(spans) > 40_000
    assert spans[-1].end <= len(text)


def test_five_megabytes_in_one_paragraph_without_punctuation() -> None:
    text = " ".join(["word"] * 1_000_000)  # 5 MB, no boundaries at all: word splitting only
    spans = segment(text)
    assert len(spans) == 1_000_000 // 60 + 1


def test_decode_text() -> None:
    assert decode_text("already text") == "already text"
    decoded = decode_text(INVALID_UTF8)
    assert "\ufffd" in decoded and "Café résumé" in decoded and "answer is 42" in decoded
    assert decode_text(b"caf\xe9", encoding="latin-1") == "café"
    assert decode_text(b"\xff\xfe\xfd") == "\ufffd\ufffd\ufffd"
