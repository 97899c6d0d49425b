"""Run several compressors on the same input, and optionally answer from each context.

The inspector page, the HTML report and the demo's side-by-side view all compare compressors
this way: the same question, documents and budget for each, answers from the same generator
and prompt, the full context's answer as the reference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ragzip.compressors.base import Compressor
from ragzip.inspector.view import Run
from ragzip.middleware.pipeline import Pipeline
from ragzip.types import Budget, Document

__all__ = ["answer_full", "run_compressors"]


def _answer(pipeline: Pipeline, query: str, documents: Sequence[Document]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = pipeline.run(query, list(documents))
    return result, time.perf_counter() - start


def run_compressors(
    query: str,
    documents: Sequence[Document],
    compressors: Sequence[tuple[str, Compressor]],
    budget: Budget,
    *,
    generator: Any = None,
    max_tokens: int = 64,
) -> list[Run]:
    """Compresses ``documents`` with each compressor (and answers, given a generator).

    Args:
        query: The question.
        documents: The shared input.
        compressors: ``(name to show, compressor)`` pairs, in the order to show.
        budget: The budget every compressor gets.
        generator: Answers from each compressed context when given.
        max_tokens: Answer length.

    Returns:
        One :class:`Run` per compressor. Compression time is in each result's timings;
        a compressor's models load (``warm_up``) before its call is timed.
    """
    runs = []
    for name, compressor in compressors:
        warm_up = getattr(compressor, "warm_up", None)
        if warm_up is not None:
            warm_up()
        if generator is None:
            runs.append(Run(name, compressor.compress(query, list(documents), budget)))
            continue
        pipeline = Pipeline(compressor, None, generator, budget=budget, max_tokens=max_tokens)
        result, seconds = _answer(pipeline, query, documents)
        runs.append(Run(name, result.compression, result.answer, seconds))
    return runs


def answer_full(
    query: str, documents: Sequence[Document], generator: Any, *, max_tokens: int = 64
) -> tuple[str | None, float]:
    """The generator's answer from the whole, uncompressed context, and its seconds."""
    pipeline = Pipeline(
        "truncate", None, generator, budget=Budget(ratio=1.0), max_tokens=max_tokens
    )
    result, seconds = _answer(pipeline, query, documents)
    return result.answer, seconds
