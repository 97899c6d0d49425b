"""Training corpora: passages (with the answers they hold) from JSONL, JSON or text files.

nq20-style records (``question``, ``answers``, ``documents``, ``gold_index``) give one passage
per document (or only the gold one), cut to ``passage_words``; other records give their
``text``. With no file, the bundled demo corpus (``ragzip/data/demo_corpus.jsonl``).

Example:
    >>> passages = load_passages(["nq20-dev.jsonl.gz"], records="200:1000", documents="gold")
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ragzip.errors import ConfigError
from ragzip.files import open_text
from ragzip.training.teachers import Passage

__all__ = ["load_passages", "parse_records"]


def parse_records(spec: str | None) -> slice:
    """The record range ``"START:STOP"`` (0-based, STOP excluded; either may be left out).

    Raises:
        ConfigError: Not two non-negative integers around a colon, or an empty range.
    """
    if spec is None or not spec.strip():
        return slice(None)
    head, sep, tail = spec.strip().partition(":")
    try:
        if not sep:
            raise ValueError
        start = int(head) if head.strip() else 0
        stop = int(tail) if tail.strip() else None
    except ValueError:
        raise ConfigError(
            f"records must look like START:STOP (e.g. 200:1000), got {spec!r}"
        ) from None
    if start < 0 or (stop is not None and stop <= start):
        raise ConfigError(f"records {spec!r} is an empty or negative range; use START:STOP")
    return slice(start, stop)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with open_text(path) as f:
        name = path.name.removesuffix(".gz")
        if name.endswith(".jsonl"):
            for line in f:
                if line.strip():
                    yield json.loads(line)
        elif name.endswith(".json"):
            data = json.load(f)
            yield from data if isinstance(data, list) else [data]
        else:
            for block in f.read().split("\n\n"):
                if block.strip():
                    yield {"text": block.strip()}


def _split(text: str, size: int) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or []


def _documents_of(rec: dict[str, Any], documents: str) -> list[dict[str, Any]]:
    """The documents of an nq20-style record, each with the record's question and answers."""
    docs = rec["documents"]
    if documents == "gold":
        if not isinstance(rec.get("gold_index"), int):
            raise ConfigError(
                f"record {rec.get('id', '?')!r} has no gold_index; use documents='all'"
            )
        docs = [docs[rec["gold_index"]]]
    extra = {"question": rec.get("question", ""), "answers": rec.get("answers", [])}
    return [{**doc, **extra} for doc in docs]


def _demo_items() -> list[dict[str, Any]]:
    demo = resources.files("ragzip") / "data" / "demo_corpus.jsonl"
    return [json.loads(line) for line in demo.read_text("utf-8").splitlines() if line.strip()]


def load_passages(
    paths: Sequence[str | Path] = (),
    passage_words: int = 120,
    *,
    records: str | None = None,
    documents: str = "all",
) -> list[Passage]:
    """Passages of the corpus files (default: the bundled demo corpus).

    Args:
        paths: JSONL/JSON/text files (``.gz`` accepted).
        passage_words: Longest passage in whitespace words; longer texts are cut.
        records: ``"START:STOP"``: only these records (lines, list items, text blocks) of each
            file.
        documents: For nq20-style records: ``"all"`` documents or only the ``"gold"`` one.

    Returns:
        The passages, each with the answers it contains (case-insensitive).
    """
    window = parse_records(records)
    items: list[dict[str, Any]] = []
    for p in paths:
        for rec in list(_records(Path(p)))[window]:
            if isinstance(rec, dict) and "documents" in rec:
                items.extend(_documents_of(rec, documents))
            else:
                items.append(rec)
    if not paths:
        items = _demo_items()[window]
    passages = []
    for rec in items:
        if not isinstance(rec, dict) or not str(rec.get("text", "")).strip():
            continue
        answers = tuple(str(a) for a in rec.get("answers", []) or [])
        for piece in _split(str(rec["text"]), passage_words):
            found = tuple(a for a in answers if a.lower() in piece.lower())
            passages.append(
                Passage(
                    piece,
                    str(rec.get("title", "") or ""),
                    str(rec.get("question", "") or ""),
                    found,
                )
            )
    return passages
