"""Documents for the CLI: JSON or JSONL files (or stdin), and passages of text files."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from ragzip.errors import InvalidInputError
from ragzip.text import decode_text
from ragzip.types import Document

__all__ = ["TEXT_SUFFIXES", "chunk_text", "load_corpus", "read_documents"]

TEXT_SUFFIXES = {".txt", ".md", ".rst"}


def read_documents(path: str) -> list[Document]:
    """Documents of a JSON list (or ``{"documents": [...]}``) or JSONL file; ``-`` is stdin."""
    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    text = decode_text(raw).strip()
    if not text:
        return []
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else data.get("documents", [])
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{path}: expected a JSON list of documents or JSONL ({exc})"
            ) from exc
    return [Document.from_any(item, i) for i, item in enumerate(items)]


def chunk_text(text: str, words: int) -> Iterator[str]:
    """Groups paragraphs into passages of about ``words`` words."""
    current: list[str] = []
    size = 0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        n = len(paragraph.split())
        if current and size + n > words:
            yield "\n\n".join(current)
            current, size = [], 0
        if n > words:  # an over-long paragraph becomes several passages
            tokens = paragraph.split()
            for i in range(0, len(tokens), words):
                yield " ".join(tokens[i : i + words])
            continue
        current.append(paragraph)
        size += n
    if current:
        yield "\n\n".join(current)


def load_corpus(inputs: list[str], chunk_words: int) -> list[Document]:
    """Documents from JSONL/JSON files and passages of text files (folders are walked)."""
    files: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInputError(f"no such file or folder: {name}")
    docs: list[Document] = []
    for path in files:
        if path.suffix in (".jsonl", ".json"):
            for doc in read_documents(str(path)):
                docs.append(Document(doc.text, id=f"{path.stem}:{doc.id}", metadata=doc.metadata))
        elif path.suffix in TEXT_SUFFIXES:
            text = decode_text(path.read_bytes())
            for i, passage in enumerate(chunk_text(text, chunk_words)):
                docs.append(
                    Document(
                        passage,
                        id=f"{path.name}:{i}",
                        metadata={"title": path.stem, "source": str(path)},
                    )
                )
    if not docs:
        raise InvalidInputError(f"no documents found in {inputs} (.txt, .md, .jsonl, .json)")
    return docs
