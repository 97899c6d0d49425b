"""Syntax-aware chunking of source files with tree-sitter grammars.

A file becomes a list of :class:`Chunk` objects (0-based, half-open line ranges) that together
cover every line: functions, methods, class headers (the class minus its methods, so members
and the ``class`` line stay together), and the module-level remainder (imports, constants).
Supported grammars: Python, JavaScript, TypeScript/TSX, Java, Go, Rust, C and C++ (the
``ragzip[code]`` extra). Other languages, and code that does not parse (tree-sitter error
nodes), fall back to blank-line separated blocks. (Over 350 lines: the node-kind tables of
eight grammars live here, beside the one walk that reads them.)

Example:
    >>> chunks = chunk_code(source, path="pkg/util.py")
    >>> [(c.kind, c.name) for c in chunks]
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath
from typing import Any

from ragzip._optional import require

__all__ = [
    "LANGUAGES",
    "Chunk",
    "chunk_code",
    "comment_prefix",
    "detect_language",
    "line_blocks",
    "name_words",
]


@dataclass(frozen=True)
class Chunk:
    """A range of lines of a file.

    Attributes:
        start: First line (0-based).
        end: One past the last line.
        kind: ``function``, ``method``, ``class``, ``module`` or ``block`` (fallback).
        name: Qualified name (``Class.method``) or ``""``.
        signature: The chunk's first non-blank line, stripped.
    """

    start: int
    end: int
    kind: str
    name: str = ""
    signature: str = ""

    @property
    def is_definition(self) -> bool:
        return self.kind in ("function", "method")


@dataclass(frozen=True)
class _Grammar:
    module: str
    function: str = "language"
    functions: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    wrappers: frozenset[str] = frozenset()  # transparent: descend (namespaces, exports, bodies)


def _g(
    module: str, functions: str, classes: str, wrappers: str, function: str = "language"
) -> _Grammar:
    return _Grammar(
        module, function, frozenset(functions.split()), frozenset(classes.split()),
        frozenset(wrappers.split()),
    )  # fmt: skip


_JS_FUNCS = "function_declaration generator_function_declaration method_definition"
_JS_WRAP = "export_statement class_body"
LANGUAGES: dict[str, _Grammar] = {
    "python": _g(
        "tree_sitter_python",
        "function_definition",
        "class_definition",
        "block decorated_definition",
    ),
    "javascript": _g("tree_sitter_javascript", _JS_FUNCS, "class_declaration class", _JS_WRAP),
    "typescript": _g(
        "tree_sitter_typescript",
        _JS_FUNCS + " function_signature",
        "class_declaration abstract_class_declaration interface_declaration",
        _JS_WRAP + " interface_body",
        function="language_typescript",
    ),
    "tsx": _g(
        "tree_sitter_typescript",
        _JS_FUNCS,
        "class_declaration abstract_class_declaration interface_declaration",
        _JS_WRAP + " interface_body",
        function="language_tsx",
    ),
    "java": _g(
        "tree_sitter_java",
        "method_declaration constructor_declaration",
        "class_declaration interface_declaration enum_declaration record_declaration",
        "class_body interface_body enum_body enum_body_declarations",
    ),
    "go": _g("tree_sitter_go", "function_declaration method_declaration", "", ""),
    "rust": _g(
        "tree_sitter_rust",
        "function_item",
        "impl_item trait_item mod_item",
        "declaration_list",
    ),
    "c": _g("tree_sitter_c", "function_definition", "", ""),
    "cpp": _g(
        "tree_sitter_cpp",
        "function_definition",
        "class_specifier struct_specifier",
        "namespace_definition declaration_list template_declaration field_declaration_list"
        " declaration linkage_specification",
    ),
}

_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript",
    ".cts": "typescript", ".tsx": "tsx", ".java": "java", ".go": "go", ".rs": "rust",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".hxx": "cpp", ".rb": "ruby", ".php": "php", ".cs": "csharp",
    ".kt": "kotlin", ".swift": "swift", ".scala": "scala", ".sh": "shell", ".lua": "lua",
}  # fmt: skip
_ALIASES = {
    "py": "python", "python3": "python", "js": "javascript", "node": "javascript",
    "ts": "typescript", "c++": "cpp", "cxx": "cpp", "golang": "go", "rs": "rust",
}  # fmt: skip

# Content heuristics: (language, pattern, weight), all multiline.
_HINTS: list[tuple[str, str, float]] = [
    ("python", r"^\s*def \w+\(.*\)\s*(->.*)?:\s*$", 3),
    ("python", r"^(from [\w.]+ )?import [\w., ]+$", 1),
    ("python", r"^\s*class \w+(\(.*\))?:\s*$", 3),
    ("python", r"^\s*(elif|except|with) .*:\s*$|self\.\w+", 1),
    ("go", r"^package \w+\s*$", 3),
    ("go", r"^func (\(\w+ \*?\w+\) )?\w+\(", 3),
    ("go", r":= ", 1),
    ("rust", r"^\s*(pub )?fn \w+(<.*>)?\(", 3),
    ("rust", r"^\s*(use \w+::|impl\b|let mut )", 2),
    ("java", r"^\s*(public|private|protected) (static )?(final )?(class|interface|void|\w+) ", 2),
    ("java", r"^package [\w.]+;|^import [\w.]+;", 3),
    ("cpp", r"^#include <\w+>$|std::|^\s*template\s*<|^namespace \w+|^\s*class \w+.*\{", 2),
    ("c", r"^#include <\w+\.h>|^#include \"\w+\.h\"", 2),
    ("c", r"^\w[\w\s\*]* \**\w+\([^;]*\)\s*\{?\s*$", 1),
    ("javascript", r"^\s*(export )?(async )?function\*? \w+\(|=> \{|\brequire\(", 2),
    ("javascript", r"^\s*(const|let|var) \w+ = |console\.log", 1),
    ("typescript", r"^\s*(export )?(interface|type) \w+|: (string|number|boolean)\b", 2),
]
_MIN_HINT = 4.0

_COMMENTS = {"python": "#", "ruby": "#", "shell": "#"}


def name_words(name: str) -> str:
    """A chunk's name in words and a newline (``MultiDict.getlist`` -> ``multi dict getlist``):
    what the code compressor puts before a chunk's text for the bi-encoder, as identifiers
    split into words match a natural-language query better than the raw token."""
    words: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        words += re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", part).lower().split()
    return " ".join(words) + "\n" if words else ""


def comment_prefix(language: str | None) -> str:
    """The line-comment syntax of ``language`` (``#`` when unknown and for prose)."""
    if language is None:
        return "#"
    return _COMMENTS.get(
        language, "//" if language in LANGUAGES or language in _EXTENSIONS.values() else "#"
    )


def detect_language(
    text: str, metadata: Mapping[str, Any] | None = None, path: str | None = None
) -> str | None:
    """The language of ``text``: ``metadata["language"]``, else the extension of
    ``path``/``metadata["path"]`` (``source``, ``filename`` too), else content heuristics.

    Returns:
        A language name (a key of :data:`LANGUAGES` when a grammar exists) or ``None`` for
        text that does not look like code.
    """
    meta = metadata or {}
    language = meta.get("language") or meta.get("lang")
    if isinstance(language, str) and language.strip():
        key = language.strip().lower()
        return _ALIASES.get(key, key)
    for candidate in (path, meta.get("path"), meta.get("source"), meta.get("filename")):
        if isinstance(candidate, str) and candidate:
            suffix = PurePath(candidate).suffix.lower()
            if suffix in _EXTENSIONS:
                return _EXTENSIONS[suffix]
    sample = text[:20_000]
    scores: dict[str, float] = {}
    for language_name, pattern, weight in _HINTS:
        hits = len(re.findall(pattern, sample, flags=re.MULTILINE))
        if hits:
            scores[language_name] = scores.get(language_name, 0.0) + weight * min(hits, 5)
    if "cpp" in scores and "c" in scores:
        scores["cpp"] += scores["c"]
    if "typescript" in scores and "javascript" in scores:
        scores["typescript"] += scores["javascript"]
    if not scores:
        return None
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] >= _MIN_HINT else None


@cache
def _parser(language: str) -> Any:
    grammar = LANGUAGES[language]
    tree_sitter = require("tree_sitter", "syntax-aware code chunking")
    module = importlib.import_module(grammar.module)
    return tree_sitter.Parser(tree_sitter.Language(getattr(module, grammar.function)()))


def chunk_code(text: str, language: str | None = None, *, path: str | None = None) -> list[Chunk]:
    """Splits a source file into chunks that cover all of its lines, in order.

    Args:
        text: The file.
        language: Its language; detected from ``path`` or the content when ``None``.
        path: The file name, for language detection.

    Returns:
        Chunks by tree-sitter when a grammar parses the file without errors, else
        blank-line separated blocks.
    """
    lines = text.splitlines()
    if language is None:
        language = detect_language(text, path=path)
    if language not in LANGUAGES or not lines:
        return line_blocks(lines)
    try:
        parser = _parser(language)
    except ImportError:
        return line_blocks(lines)
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    if tree.root_node.has_error:
        return line_blocks(lines)
    found: list[Chunk] = []
    _visit(tree.root_node, LANGUAGES[language], lines, "", False, found)
    return _attach_comments(_fill(found, lines), lines)


def _name(node: Any) -> str:
    for field in ("name", "declarator", "type"):
        child = node.child_by_field_name(field)
        if child is None:
            continue
        if child.type in ("identifier", "field_identifier", "type_identifier",
                          "property_identifier",
                          "qualified_identifier", "destructor_name", "operator_name",
                          "private_property_identifier"):  # fmt: skip
            return child.text.decode("utf-8", "replace")
        inner = _name(child)
        if inner:
            return inner
    return ""


def _inner(node: Any, grammar: _Grammar) -> Any:
    """The definition a wrapper node (decorators, ``export``, ``template``) holds, if any."""
    if node.type in ("decorated_definition", "export_statement", "template_declaration"):
        for child in node.named_children:
            if child.type in grammar.functions or child.type in grammar.classes:
                return child
            deeper = _inner(child, grammar)
            if deeper is not None:
                return deeper
    if node.type in ("lexical_declaration", "variable_declaration"):  # const f = () => {...}
        for child in node.named_children:
            value = child.child_by_field_name("value")
            if value is not None and value.type in (
                "arrow_function",
                "function_expression",
                "function",
            ):
                return child
    return None


def _visit(node: Any, grammar: _Grammar, lines: list[str], owner: str, in_class: bool,
           found: list[Chunk]) -> None:  # fmt: skip
    for child in node.named_children:
        target = (
            child
            if (child.type in grammar.functions or child.type in grammar.classes)
            else _inner(child, grammar)
        )
        start, end = child.start_point[0], child.end_point[0] + 1
        if target is None:
            if child.type in grammar.wrappers:
                _visit(child, grammar, lines, owner, in_class, found)
            continue
        name = _name(target)
        qualified = f"{owner}.{name}" if owner and name else name or owner
        if target.type in grammar.classes:
            members: list[Chunk] = []
            body = target.child_by_field_name("body") or target
            _visit(body, grammar, lines, qualified, True, members)
            if not members:
                found.append(_make(lines, start, end, "class", qualified))
                continue
            covered = start
            for member in members:
                if member.start > covered:
                    _class_gap(found, lines, covered, member.start, qualified)
                found.append(member)
                covered = member.end
            if covered < end:
                _class_gap(found, lines, covered, end, qualified)
        else:
            found.append(_make(lines, start, end, "method" if in_class else "function", qualified))


def _class_gap(found: list[Chunk], lines: list[str], start: int, end: int, name: str) -> None:
    """Class lines outside its methods; blank ones join the chunk before."""
    if found and not any(ln.strip() for ln in lines[start:end]):
        last = found[-1]
        found[-1] = Chunk(last.start, end, last.kind, last.name, last.signature)
    else:
        found.append(_make(lines, start, end, "class", name))


def _make(lines: list[str], start: int, end: int, kind: str, name: str) -> Chunk:
    signature = next((ln.strip() for ln in lines[start:end] if ln.strip()), "")
    if kind in ("function", "method", "class"):  # skip decorators and comments
        for ln in lines[start:end]:
            s = ln.strip()
            if s and not s.startswith(("@", "#", "//", "/*", "*")):
                signature = s
                break
    return Chunk(start, end, kind, name, signature)


def _fill(found: list[Chunk], lines: list[str]) -> list[Chunk]:
    """Adds module chunks for the lines between definitions; blank gaps join the chunk before."""
    chunks: list[Chunk] = []
    position = 0
    for chunk in sorted(found, key=lambda c: c.start):
        if chunk.start < position:  # overlapping (should not happen): clip
            if chunk.end <= position:
                continue
            chunk = Chunk(position, chunk.end, chunk.kind, chunk.name, chunk.signature)
        if chunk.start > position:
            _gap(chunks, lines, position, chunk.start)
        chunks.append(chunk)
        position = chunk.end
    if position < len(lines):
        _gap(chunks, lines, position, len(lines))
    return chunks


def _gap(chunks: list[Chunk], lines: list[str], start: int, end: int) -> None:
    if not any(ln.strip() for ln in lines[start:end]) and chunks:
        last = chunks[-1]
        chunks[-1] = Chunk(last.start, end, last.kind, last.name, last.signature)
        return
    if chunks and chunks[-1].kind == "module":
        last = chunks[-1]
        chunks[-1] = Chunk(last.start, end, "module", "", last.signature)
        return
    chunks.append(_make(lines, start, end, "module", ""))


_LEADING = re.compile(r"\s*(//|/\*|\*|#(?!!)|@)")  # comments, attributes, decorators


def _attach_comments(chunks: list[Chunk], lines: list[str]) -> list[Chunk]:
    """A definition takes the comment block (and attributes) right above it from the chunk
    before: its documentation in every language but Python's docstrings (``///``,
    ``/** */``, Go's ``//``), so a query that matches it finds the definition it describes."""
    out: list[Chunk] = []
    for chunk in chunks:
        if out and chunk.kind in ("function", "method", "class"):
            before = out[-1]
            start = chunk.start
            while start > before.start and _LEADING.match(lines[start - 1]):
                start -= 1
            if start < chunk.start:
                if any(ln.strip() for ln in lines[before.start : start]):
                    out[-1] = Chunk(before.start, start, before.kind, before.name, before.signature)
                else:  # the chunk before was only this comment
                    out.pop()
                    start = before.start
                chunk = Chunk(start, chunk.end, chunk.kind, chunk.name, chunk.signature)
        out.append(chunk)
    return out


def line_blocks(lines: list[str], max_lines: int = 40) -> list[Chunk]:
    """Blank-line separated blocks (at most ``max_lines`` each) covering all ``lines``."""
    chunks: list[Chunk] = []
    start = 0
    for i in range(1, len(lines) + 1):
        at_end = i == len(lines)
        boundary = at_end or (not lines[i].strip() and lines[i - 1].strip())
        if boundary or i - start >= max_lines:
            chunks.append(_make(lines, start, i, "block", ""))
            start = i
    merged: list[Chunk] = []
    for chunk in chunks:  # blank-only blocks join the previous block
        if merged and not any(ln.strip() for ln in lines[chunk.start : chunk.end]):
            last = merged[-1]
            merged[-1] = Chunk(last.start, chunk.end, last.kind, last.name, last.signature)
        else:
            merged.append(chunk)
    return merged
