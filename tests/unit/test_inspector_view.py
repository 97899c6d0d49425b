"""The inspector's view model and its HTML: segments cover each document exactly, pieces
without spans are shown as written, and a report is one valid, self-contained file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ragzip.errors import ConfigError
from ragzip.inspector import (
    Run,
    build_view,
    check_report_path,
    render_page,
    render_report,
    segments,
    write_report,
)
from ragzip.types import CompressedDocument, CompressionResult, Document, Span


def _result(*kept: CompressedDocument, info: dict | None = None) -> CompressionResult:
    return CompressionResult(
        documents=kept,
        tokens_before=20,
        tokens_after=5,
        tokenizer="words",
        compressor="test",
        timings={"total": 0.01},
        info=info or {},
    )


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], [("abcdef", False)]),
        ([Span(0, 6)], [("abcdef", True)]),
        ([Span(1, 3)], [("a", False), ("bc", True), ("def", False)]),
        ([Span(2, 4), Span(1, 3)], [("a", False), ("bcd", True), ("ef", False)]),  # overlap
        ([Span(1, 2), Span(2, 3)], [("a", False), ("bc", True), ("def", False)]),  # touching
        ([Span(4, 99), Span(-3, 1)], [("a", True), ("bcd", False), ("ef", True)]),  # clipped
        ([Span(3, 3)], [("abcdef", False)]),  # empty
    ],
)
def test_segments_cover_the_text(spans: list[Span], expected: list[tuple[str, bool]]) -> None:
    got = segments("abcdef", spans)
    assert got == expected
    assert "".join(piece for piece, _ in got) == "abcdef"


def test_view_of_kept_spans_generated_text_and_dropped_documents() -> None:
    docs = [
        Document("Paris is in France. It is big.", id="a", metadata={"title": "Paris"}),
        Document("Bananas are yellow.", id="a"),  # a repeated id, made unique as compressors do
        Document("Berlin is in Germany.", id="c"),
    ]
    kept = CompressedDocument("Paris is in France.", "a", (Span(0, 19),), score=0.9)
    summary = CompressedDocument("A summary.", "c")  # written, not cut: no spans
    info = {"document_scores": [0.9, 0.1, 0.5], "allocation": [8, 0, "n/a"]}
    result = _result(kept, summary, info=info)
    view = build_view("Where is Paris?", docs, [Run("x", result, answer="France")], budget={})
    json.dumps(view, allow_nan=False)  # JSON-able
    first, second, third = view["runs"][0]["documents"]
    assert [d["id"] for d in view["runs"][0]["documents"]] == ["a", "a#1", "c"]
    assert first["segments"] == [["Paris is in France.", True], [" It is big.", False]]
    assert first["kept"] and first["title"] == "Paris" and first["relevance"] == 0.9
    assert [d["budget"] for d in view["runs"][0]["documents"]] == [8.0, 0.0, None]
    assert first["tokens_before"] == 7 and first["tokens_after"] == 4
    assert not second["kept"] and second["segments"] == [["Bananas are yellow.", False]]
    assert second["relevance"] == 0.1
    assert third["generated"] == ["A summary."] and third["segments"][0][1] is False
    assert view["runs"][0]["answer"] == "France" and view["runs"][0]["ratio"] == 4.0


def test_report_is_valid_self_contained_and_escapes_text(tmp_path: Path) -> None:
    html5lib = pytest.importorskip("html5lib")
    nasty = 'x</script><script>alert("no")</script><img src=https://example.com/t.png>'
    docs = [Document(nasty, id="d")]
    result = _result(CompressedDocument("x", "d", (Span(0, 1),)))
    view = build_view(nasty, docs, [Run("x", result)], title="<b>case</b>")
    text = render_report([view], title="<b>title</b>")
    parser = html5lib.HTMLParser(strict=True)
    parser.parse(text)
    assert not parser.errors
    assert "</script><script>alert" not in text and "<b>title</b>" not in text
    head, rest = text.split('id="ragzip-data">', 1)
    data, tail = rest.split("</script>", 1)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", head + tail)  # nothing fetched
    assert json.loads(data)["views"][0]["query"] == nasty  # escaped, not altered
    assert "default-src 'none'" in text

    path = write_report(tmp_path / "out" / "case.html", [view])
    assert path.read_text("utf-8") == render_report([view])
    assert [p.name for p in path.parent.iterdir()] == ["case.html"]  # no temporary left
    with pytest.raises(ConfigError, match="directory"):
        write_report(tmp_path, [view])
    with pytest.raises(ConfigError, match="is a file"):
        check_report_path(path / "inside.html")


def test_page_links_its_assets_and_has_the_form() -> None:
    page = render_page()
    assert 'src="/ui/inspector.js"' in page and 'href="/ui/inspector.css"' in page
    assert 'id="ask"' in page and 'data-mode="app"' in page and "<script>" not in page
