"""The demo's side-by-side view: one question's retrieved documents under several compressors.

Each compressor gets the same documents and budget; the table shows what it kept and how long
it took. The token pruner is ragzip's packaged default (``minilm-pruner``: LoRA adapters and
a head on the packaged MiniLM, shipped in the package; nothing trains on first use).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragzip.compressors.registry import compressors
from ragzip.types import Budget, Document

__all__ = ["DEMO_COMPRESSORS", "Row", "compare", "print_rows"]

DEMO_COMPRESSORS: tuple[str, ...] = ("extractive", "token-prune", "abstractive")


@dataclass(frozen=True)
class Row:
    """One compressor's result on the shared input."""

    name: str
    tokens_before: int
    tokens_after: int
    seconds: float
    text: str


def compare(
    query: str,
    documents: Sequence[Document],
    budget: Budget,
    names: Sequence[str] = DEMO_COMPRESSORS,
    *,
    tokenizer: str = "words",
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Row]:
    """Compresses ``documents`` with each named compressor (models load before timing).

    Args:
        query: The question.
        documents: What the retriever returned.
        budget: The budget every compressor gets.
        names: Registered compressor names.
        tokenizer: Token counter of every compressor.
        params: Extra parameters per compressor name.
    """
    rows = []
    for name in names:
        extra = dict((params or {}).get(name, {}))
        spec = {"type": name, "params": {"tokenizer": tokenizer, **extra}}
        compressor = compressors.build(spec)
        warm_up = getattr(compressor, "warm_up", None)
        if warm_up is not None:
            warm_up()
        start = time.perf_counter()
        result = compressor.compress(query, documents, budget)
        seconds = time.perf_counter() - start
        rows.append(Row(name, result.tokens_before, result.tokens_after, seconds, result.text(" ")))
    return rows


def print_rows(rows: Sequence[Row], width: int = 96) -> None:
    """Prints one block per compressor: tokens, ratio, seconds, then the kept text."""
    for row in rows:
        ratio = row.tokens_before / row.tokens_after if row.tokens_after else float("inf")
        print(
            f"\n[{row.name}] {row.tokens_before} -> {row.tokens_after} words "
            f"({ratio:.1f}x) in {row.seconds:.2f} s"
        )
        print(
            textwrap.fill(
                row.text or "(nothing kept)", width, initial_indent="  ", subsequent_indent="  "
            )
        )
