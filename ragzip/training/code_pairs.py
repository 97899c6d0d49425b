"""(description, function) pairs mined from git checkouts: the data of ``ragzip train-code``.

Every repository documents itself. For each tracked source file in a language the code
compressor chunks (:data:`~ragzip.compressors.code.chunking.LANGUAGES`), every function or
method with a description gives one pair:

* the description is the first paragraph of its docstring (Python) or of the comment block
  right above it (``//``, ``///``, ``/** ... */``, ``#``; tags such as ``@param`` and
  sections such as ``Args:`` end it);
* the code is the chunk the compressor would score, with the description **removed** (as the
  code-needle set does), so a model cannot match the text to itself;
* the other chunks of the same file are the candidates it must beat (hard negatives), as in
  a needle search; other files of the repository give more.

Pairs whose description or stripped code was already seen in the repository are dropped
(overloads, copies, vendored files). Functions a :class:`HoldOut` names are left out, and so
is any other function that shares their description, so an evaluation on them stays unseen.
Test files, binary files and files over ``max_bytes`` are skipped and counted, never read as
text. :class:`MinedRepo` is the data card of one
checkout: its origin, commit, license and counts.

Example:
    >>> repo = mine_repository("path/to/checkout")
    >>> repo.pairs[0].description, repo.card()
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragzip.compressors.code.chunking import LANGUAGES, Chunk, chunk_code, detect_language
from ragzip.errors import ConfigError
from ragzip.training.hold_out import HoldOut

__all__ = ["CodePair", "FileChunks", "MinedRepo", "mine_repository"]

_MIN_WORDS = 3
_MAX_WORDS = 60
_MIN_BODY_LINES = 2
_SECTION = re.compile(
    r"^(@\w+|:(param|return|returns|raises|rtype|type)\b|(args|arguments|parameters|returns?|"
    r"raises|yields?|examples?|notes?|see also|attributes|example usage)\s*:?\s*$|-{3,}$|={3,}$)",
    re.IGNORECASE,
)
_TAG = re.compile(r"@(\w+)")
_NOISE = re.compile(
    r"^(todo|fixme|xxx|hack|noqa|type:|pylint|eslint|nolint|copyright|license|deprecated)\b",
    re.IGNORECASE,
)
_TEST_PATH = re.compile(
    r"(^|/)(tests?|testing|__tests__|spec|fixtures?|benchmarks?|examples?|docs?|vendor|"
    r"third_party|node_modules|dist|build)(/|$)|(^|/)(test_[^/]*|[^/]*_test\.\w+|"
    r"[^/]*\.(test|spec|min)\.\w+|conftest\.py)$",
    re.IGNORECASE,
)
_LICENSES = (  # (SPDX id, phrase of its text), the first that matches names the license
    ("Apache-2.0", "apache license"),
    ("MIT", "permission is hereby granted, free of charge"),
    ("BSD-3-Clause", "neither the name"),
    ("BSD-2-Clause", "redistribution and use in source and binary forms"),
    ("MPL-2.0", "mozilla public license"),
    ("ISC", "permission to use, copy, modify, and/or distribute"),
    ("Unlicense", "this is free and unencumbered software"),
    ("LGPL", "gnu lesser general public license"),
    ("GPL", "gnu general public license"),
)


@dataclass(frozen=True)
class CodePair:
    """One documented function: its description, its code without it, and where it lives.

    Attributes:
        description: The first paragraph of its docstring or leading comment, one line.
        code: The function's chunk as the compressor scores it, description removed.
        name: Its qualified name (``Class.method``).
        path: The file, relative to the repository.
        language: The file's language.
        file: Index of its file in :attr:`MinedRepo.files` (the needle-search candidates).
        chunk: Index of its chunk in that file's chunks.
    """

    description: str
    code: str
    name: str
    path: str
    language: str
    file: int
    chunk: int


@dataclass(frozen=True)
class FileChunks:
    """The scorable chunks of one mined file, as the compressor sees them.

    Attributes:
        path: The file, relative to the repository.
        names: Each chunk's qualified name (``""`` for module code).
        texts: Each chunk's lines.
        bare: Each chunk's lines without its description (the same text when it has none).
    """

    path: str
    names: tuple[str, ...]
    texts: tuple[str, ...]
    bare: tuple[str, ...]


@dataclass
class MinedRepo:
    """What :func:`mine_repository` found in one checkout, and its data card."""

    path: str
    origin: str
    commit: str
    license: str
    pairs: list[CodePair] = field(default_factory=list)
    files: list[FileChunks] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    held_out: int = 0

    def card(self) -> dict[str, Any]:
        """The data card entry of this repository (JSON-ready)."""
        return {
            "path": self.path,
            "origin": self.origin,
            "commit": self.commit,
            "license": self.license,
            "files": len(self.files),
            "pairs": len(self.pairs),
            "pairs_by_language": dict(sorted(self.languages.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "held_out": self.held_out,
        }


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ConfigError("git is not installed: ragzip train-code reads git checkouts") from None
    if done.returncode != 0:
        raise ConfigError(
            f"{repo} is not a git repository ({done.stderr.strip() or 'git failed'}): pass the "
            "folder of a git checkout (`git clone URL` first)"
        )
    return done.stdout


def _license(root: Path) -> str:
    for candidate in sorted(root.iterdir()):
        if candidate.is_file() and candidate.name.upper().startswith(("LICENSE", "LICENCE",
                                                                      "COPYING")):  # fmt: skip
            text = candidate.read_text("utf-8", "replace")[:4000].lower()
            for spdx, phrase in _LICENSES:
                if phrase in text:
                    return spdx
            return f"unknown ({candidate.name})"
    return "unknown (no LICENSE file)"


def mine_repository(
    path: str | Path,
    *,
    max_bytes: int = 1_000_000,
    max_pairs: int | None = None,
    include_tests: bool = False,
    hold_out: HoldOut | None = None,
) -> MinedRepo:
    """Mines the (description, function) pairs of one git checkout.

    Args:
        path: The checkout's folder (any folder inside it works).
        max_bytes: Larger files are skipped and counted (``huge``).
        max_pairs: Stop after this many pairs (files in ``git ls-files`` order).
        include_tests: Also mine test, example, docs and vendored files.
        hold_out: Functions left out (counted in ``held_out``), with every other function
            that shares the description of one of them.

    Returns:
        The pairs, the chunks of every file that gave one, and the data card.

    Raises:
        ConfigError: ``path`` is not a folder inside a git checkout, or git is missing.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder: pass the folder of a git checkout")
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    commit = _git(top, "rev-parse", "HEAD").strip()
    try:
        origin = _git(top, "config", "--get", "remote.origin.url").strip()
    except ConfigError:
        origin = ""
    mined = MinedRepo(str(top), origin or str(top), commit, _license(top))
    seen_descriptions: set[str] = set()
    seen_code: set[str] = set()
    held_descriptions: set[str] = set()
    for rel in _git(top, "ls-files", "-z").split("\0"):
        if not rel:
            continue
        language = detect_language("", path=rel)
        if language not in LANGUAGES:
            continue
        if not include_tests and _TEST_PATH.search(rel):
            mined.skipped["tests, docs or vendored"] += 1
            continue
        text = _read(top / rel, max_bytes, mined.skipped)
        if text is None:
            continue
        pairs, chunks = _mine_file(text, rel, language, len(mined.files))
        fresh = []
        for p in pairs:
            key_d, key_c = p.description.lower(), " ".join(p.code.split())
            if hold_out is not None and hold_out.matches(rel, p.name):
                mined.held_out += 1
                held_descriptions.add(key_d)
                continue
            if key_d in seen_descriptions or key_c in seen_code:
                mined.skipped["duplicate pairs"] += 1
                continue
            seen_descriptions.add(key_d)
            seen_code.add(key_c)
            fresh.append(p)
        if not fresh:
            continue
        mined.files.append(chunks)
        mined.pairs += fresh
        mined.languages.update(p.language for p in fresh)
        if max_pairs is not None and len(mined.pairs) >= max_pairs:
            del mined.pairs[max_pairs:]
            break
    if held_descriptions:  # a sibling documented alike would teach the held-out answer
        kept = [p for p in mined.pairs if p.description.lower() not in held_descriptions]
        if len(kept) < len(mined.pairs):
            mined.skipped["same description as a held-out function"] += len(mined.pairs) - len(kept)
        mined.pairs = kept
        mined.languages = Counter(p.language for p in kept)
    return mined


def _read(path: Path, max_bytes: int, skipped: Counter[str]) -> str | None:
    try:
        if path.is_symlink() or not path.is_file():
            skipped["not a regular file"] += 1
            return None
        if path.stat().st_size > max_bytes:
            skipped["huge"] += 1
            return None
        data = path.read_bytes()
    except OSError:
        skipped["unreadable"] += 1
        return None
    if b"\0" in data[:8192]:
        skipped["binary"] += 1
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        skipped["binary"] += 1
        return None


def _mine_file(text: str, rel: str, language: str, index: int) -> tuple[list[CodePair], FileChunks]:
    lines = text.splitlines()
    chunks = [c for c in chunk_code(text, language) if c.kind != "block"]
    docstrings = _python_docstrings(text) if language == "python" and chunks else {}
    pairs = []
    bare = []
    for k, chunk in enumerate(chunks):
        whole = "\n".join(lines[chunk.start : chunk.end])
        found = _describe(lines, chunk, docstrings) if chunk.is_definition else None
        if found is None:
            bare.append(whole)
            continue
        description, drop = found
        kept = [ln for j, ln in enumerate(lines[chunk.start : chunk.end], chunk.start)
                if j not in drop]  # fmt: skip
        bare.append("\n".join(kept))
        if sum(1 for ln in kept if ln.strip()) >= 1 + _MIN_BODY_LINES:
            pairs.append(CodePair(description, bare[-1], chunk.name, rel, language, index, k))
    texts = tuple("\n".join(lines[c.start : c.end]) for c in chunks)
    return pairs, FileChunks(rel, tuple(c.name for c in chunks), texts, tuple(bare))


def _python_docstrings(text: str) -> dict[int, tuple[int, int]]:
    """``def`` line (0-based) -> the docstring's line range, for every Python function."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
                and first.end_lineno is not None
            ):
                found[node.lineno - 1] = (first.lineno - 1, first.end_lineno)
    return found


def _describe(
    lines: Sequence[str], chunk: Chunk, docstrings: dict[int, tuple[int, int]]
) -> tuple[str, set[int]] | None:
    """The chunk's description and the lines that hold it (to remove from the code side)."""
    for k in range(chunk.start, min(chunk.end, chunk.start + 30)):
        if k in docstrings:  # the def line (decorators come before it)
            start, end = docstrings[k]
            body = "\n".join(lines[start:end])
            raw = re.sub(r'^\s*[rbuRBU]*("""|\'\'\'|"|\')|("""|\'\'\'|"|\')\s*$', "", body)
            description = _first_paragraph(raw.splitlines(), chunk.name)
            return (description, set(range(start, end))) if description else None
    block: list[int] = []  # the comment block that opens the chunk (see chunk_code)
    for k in range(chunk.start, chunk.end):
        s = lines[k].strip()
        if s.startswith(("#[", "@")) or (not s and not block):  # attributes, decorators
            continue
        if not s.startswith(("//", "#", "/*", "*")):
            break
        block.append(k)
    if not block:
        return None
    raw_lines = [re.sub(r"^(///?!?|/\*\*?|\*/|\*|#)\s?", "", lines[i].strip()) for i in block]
    raw_lines = [re.sub(r"\*/\s*$", "", ln) for ln in raw_lines]
    description = _first_paragraph(raw_lines, chunk.name)
    return (description, set(block)) if description else None


def _first_paragraph(raw: Sequence[str], name: str = "") -> str:
    """The first paragraph, one line; ``""`` when it is too short, too long or noise.

    A leading mention of the function's own name (Go's ``Get returns ...``) is dropped: the
    code side holds the name, and users do not describe code that way.
    """
    words: list[str] = []
    for line in raw:
        s = line.strip()
        if not s:
            if words:
                break
            continue
        tag = _TAG.match(s)
        if tag and not words:  # JSDoc opening tags: @summary/@description hold the text
            if tag.group(1).lower() not in ("summary", "description"):
                continue
            s = s[tag.end() :].strip()
        elif _SECTION.match(s):
            break
        words += s.split()
    own = name.rsplit(".", 1)[-1]
    if own and words and words[0].strip("`'\"():,") == own:
        words = words[1:]
        if words:
            words[0] = words[0][:1].upper() + words[0][1:]
    if not _MIN_WORDS <= len(words) <= _MAX_WORDS:
        return ""
    text = " ".join(words)
    if _NOISE.match(text) or not re.search(r"[A-Za-z]{3}", text):
        return ""
    return text
