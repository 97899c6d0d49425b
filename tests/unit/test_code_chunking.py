"""Syntax-aware chunking of real source files in every supported language."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ragzip.compressors.code.chunking import (
    LANGUAGES,
    Chunk,
    chunk_code,
    comment_prefix,
    detect_language,
    line_blocks,
)

pytest.importorskip("tree_sitter")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "code"

# file -> (language, expected (kind, name) pairs among the chunks)
EXPECTED: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "inventory.py": (
        "python",
        [("class", "Item"), ("method", "Item.restock"), ("method", "Item.empty"),
         ("function", "load_items")],
    ),
    "cart.js": (
        "javascript",
        [("class", "Cart"), ("method", "Cart.add"), ("method", "Cart.total"),
         ("function", "withTax"), ("function", "describe")],
    ),
    "queue.ts": (
        "typescript",
        [("class", "JobQueue"), ("method", "JobQueue.enqueue"), ("method", "JobQueue.dequeue"),
         ("function", "createJob")],
    ),
    "Stack.java": (
        "java",
        [("class", "Stack"), ("method", "Stack.push"), ("method", "Stack.pop")],
    ),
    "server.go": (
        "go",
        [("function", "NewServer"), ("function", "Address"), ("function", "Start")],
    ),
    "counter.rs": (
        "rust",
        [("class", "Counter"), ("method", "Counter.new"), ("method", "Counter.add"),
         ("function", "top_words")],
    ),
    "ring.c": ("c", [("function", "ring_new"), ("function", "ring_push")]),
    "matrix.cpp": (
        "cpp",
        [("class", "Matrix"), ("method", "Matrix.at"), ("function", "identity")],
    ),
}  # fmt: skip


def _covers(chunks: list[Chunk], text: str) -> None:
    lines = text.splitlines()
    assert chunks[0].start == 0 and chunks[-1].end == len(lines)
    for a, b in itertools.pairwise(chunks):
        assert a.end == b.start, f"gap or overlap between {a} and {b}"
        assert a.start < a.end


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunks_cover_the_file_with_definitions(name: str) -> None:
    language, expected = EXPECTED[name]
    text = (FIXTURES / name).read_text(encoding="utf-8")
    assert detect_language(text, {"path": f"src/{name}"}) == language
    chunks = chunk_code(text, language)
    _covers(chunks, text)
    found = {(c.kind, c.name) for c in chunks}
    assert set(expected) <= found, f"missing {set(expected) - found} in {found}"
    assert any(c.kind == "module" for c in chunks) or language == "c"
    for chunk in chunks:
        if chunk.is_definition:  # the signature is a line of the chunk, not a decorator
            assert chunk.signature in [
                ln.strip() for ln in text.splitlines()[chunk.start : chunk.end]
            ]
            assert not chunk.signature.startswith("@")


def test_python_methods_are_separate_from_the_class_header() -> None:
    text = (FIXTURES / "inventory.py").read_text(encoding="utf-8")
    chunks = chunk_code(text, path="inventory.py")
    header = next(c for c in chunks if c.kind == "class")
    assert header.signature == "class Item:"
    body = text.splitlines()[header.start : header.end]
    assert "    name: str" in body and not any("def " in ln for ln in body)
    restock = next(c for c in chunks if c.name == "Item.restock")
    assert restock.signature == "def restock(self, amount: int) -> None:"
    empty = next(c for c in chunks if c.name == "Item.empty")
    assert text.splitlines()[empty.start].strip() == "@property"  # decorators stay with it


def test_module_remainder_holds_imports_and_constants() -> None:
    text = (FIXTURES / "server.go").read_text(encoding="utf-8")
    chunks = chunk_code(text, "go")
    module = "\n".join(text.splitlines()[chunks[0].start : chunks[0].end])
    assert chunks[0].kind == "module"
    assert '"net/http"' in module and "defaultPort = 8080" in module


def test_broken_code_falls_back_to_line_blocks() -> None:
    text = (FIXTURES / "broken.py").read_text(encoding="utf-8")
    chunks = chunk_code(text, "python")
    _covers(chunks, text)
    assert {c.kind for c in chunks} == {"block"}
    assert [c.signature for c in chunks] == ["def ok(x):", "def broken(x:", "class Half("]


def test_unsupported_language_falls_back_to_line_blocks() -> None:
    text = (FIXTURES / "notes.rb").read_text(encoding="utf-8")
    assert detect_language(text, {"path": "notes.rb"}) == "ruby"
    assert "ruby" not in LANGUAGES
    chunks = chunk_code(text, "ruby")
    _covers(chunks, text)
    assert [c.signature for c in chunks] == ["class Note", "def words", "def shout(note)"]


def test_line_blocks_split_long_blocks() -> None:
    lines = [f"x{i} = {i}" for i in range(25)]
    chunks = line_blocks(lines, max_lines=10)
    assert [(c.start, c.end) for c in chunks] == [(0, 10), (10, 20), (20, 25)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_language_detected_from_content_alone(name: str) -> None:
    language = EXPECTED[name][0]
    text = (FIXTURES / name).read_text(encoding="utf-8")
    assert detect_language(text) == language


def test_language_from_metadata_wins_and_prose_is_not_code() -> None:
    text = (FIXTURES / "inventory.py").read_text(encoding="utf-8")
    assert detect_language(text, {"language": "Python3"}) == "python"
    assert detect_language(text, {"language": "C++"}) == "cpp"
    assert detect_language("x", {"source": "lib/a.tsx"}) == "tsx"
    prose = "Honeybees live in colonies. A forager returns to the hive and dances."
    assert detect_language(prose) is None
    assert comment_prefix("python") == "#" and comment_prefix("rust") == "//"


def test_empty_text() -> None:
    assert chunk_code("", "python") == []
    assert [(c.start, c.end) for c in chunk_code("\n\n", "python")] == [(0, 2)]
