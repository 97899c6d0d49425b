"""What the demo prints: a table of its questions, their answers, and one question's retrieved
documents under several compressors side by side.

Each compressor gets the same documents and budget (:func:`ragzip.inspector.run_compressors`);
the view shows what it kept and how long it took. The token pruner is ragzip's packaged
default (``minilm-pruner``: LoRA adapters and a head on the packaged MiniLM, shipped in the
package; nothing trains on first use).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ragzip.compressors.registry import compressors
from ragzip.inspector import Run, run_compressors
from ragzip.types import Budget, Document

__all__ = ["DEMO_COMPRESSORS", "compare", "print_answers", "print_rows", "print_table"]

DEMO_COMPRESSORS: tuple[str, ...] = ("extractive", "token-prune", "abstractive")
WIDTH = 96


def compare(
    query: str,
    documents: Sequence[Document],
    budget: Budget,
    names: Sequence[str] = DEMO_COMPRESSORS,
    *,
    tokenizer: str = "words",
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Run]:
    """Compresses ``documents`` with each named compressor (models load before timing).

    Args:
        query: The question.
        documents: What the retriever returned.
        budget: The budget every compressor gets.
        names: Registered compressor names.
        tokenizer: Token counter of every compressor.
        params: Extra parameters per compressor name.
    """
    built = [
        (
            name,
            compressors.build(
                {"type": name, "params": {"tokenizer": tokenizer, **(params or {}).get(name, {})}}
            ),
        )
        for name in names
    ]
    return run_compressors(query, documents, built, budget)


def _wrap(text: str, indent: str = "  ", first: str | None = None) -> str:
    start = indent if first is None else first
    return textwrap.fill(text, WIDTH, initial_indent=start, subsequent_indent=indent)


def print_rows(runs: Sequence[Run]) -> None:
    """Prints one block per compressor: tokens, ratio, seconds, then the kept text."""
    for run in runs:
        result = run.result
        ratio = f"{result.ratio:.1f}x" if result.tokens_after else "inf"
        seconds = result.timings.get("total", 0.0)
        unit = "words" if result.tokenizer == "words" else f"{result.tokenizer} tokens"
        print(
            f"\n[{run.name}] {result.tokens_before} -> {result.tokens_after} {unit} "
            f"({ratio}) in {seconds:.2f} s"
        )
        print(_wrap(result.text(" ") or "(nothing kept)"))


def print_table(results: Sequence[Any]) -> None:
    """One row per pipeline result: tokens retrieved and kept, ratio, seconds per stage."""
    width = min(max((len(r.query) for r in results), default=8), 56)
    head = f"{'question':<{width}} {'retrieved':>9} {'kept':>6} {'ratio':>6} {'compress s':>10}"
    print(head + f" {'answer s':>8}")
    for r in results:
        stats = r.stats()
        query = r.query if len(r.query) <= width else r.query[: width - 1] + "…"
        ratio = f"{stats['ratio']:.1f}x" if stats["ratio"] else "inf"
        timings = stats["timings"]
        answer = f"{timings['generate']:>8.2f}" if "generate" in timings else f"{'-':>8}"
        print(
            f"{query:<{width}} {stats['tokens_before']:>9} {stats['tokens_after']:>6} "
            f"{ratio:>6} {timings.get('compress', 0):>10.3f} {answer}"
        )


def print_answers(results: Sequence[Any]) -> None:
    """Each question with its answer (when a generator ran) and the compressed context."""
    for r in results:
        print(f"\nQ: {r.query}")
        if r.answer is not None:
            print(_wrap(r.answer, "   ", first="A: "))
        print(_wrap(r.context, "   | "))
