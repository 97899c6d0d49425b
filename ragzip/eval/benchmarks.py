"""Run any compressor over the nq20 and code-needle sets and score it as their scorers do.

The scoring functions reproduce ``score_nq20.py`` and ``score_code.py`` of the evaluation sets
(standard library only): budgets are whitespace words, a *hit* keeps the answer (nq20) or the
target function (code-needle) within ``0.95 x`` the target ratio. The budget handed to the
compressor is exactly the word budget the scorer checks, counted with the ``words`` tokenizer.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ragzip.compressors.base import Compressor
from ragzip.errors import InvalidInputError
from ragzip.files import open_text
from ragzip.types import Budget, CompressionResult, Document

__all__ = ["TASKS", "EvalSummary", "RecordOutcome", "load_jsonl", "run_eval"]

BUDGET_SLACK = 0.95
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_LABEL = re.compile(r"Document \[\d+\]")


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Reads a JSONL file, plain or gzip-compressed."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"benchmark file not found: {path}")
    with open_text(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


# -- nq20 ------------------------------------------------------------------------------------
def _normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _nq20_context(record: Mapping[str, Any]) -> str:
    return "\n".join(
        f"Document [{k + 1}](Title: {d['title']}) {d['text']}"
        for k, d in enumerate(record["documents"])
    )


def _nq20_documents(record: Mapping[str, Any]) -> tuple[str, list[Document]]:
    docs = [
        Document(d["text"], id=str(k), metadata={"title": d.get("title", "")})
        for k, d in enumerate(record["documents"])
    ]
    return record["question"], docs


def _nq20_hit(record: Mapping[str, Any], compressed: str) -> bool:
    norm = _normalize_answer(_LABEL.sub(" ", compressed))
    answers = (_normalize_answer(a) for a in record["answers"])
    return bool(compressed) and any(a in norm for a in answers if a)


# -- code-needle -----------------------------------------------------------------------------
def _code_documents(record: Mapping[str, Any]) -> tuple[str, list[Document]]:
    doc = Document(record["code"], id=str(record["id"]), metadata={"path": record.get("path", "")})
    return record["query"], [doc]


def _code_hit(record: Mapping[str, Any], compressed: str) -> bool:
    if not compressed or record["target_signature"].strip() not in compressed:
        return False
    start, end = record["target_lines"]
    body = [ln.strip() for ln in record["code"].splitlines()[start:end] if ln.strip()]
    if not body:
        return False
    kept = {ln.strip() for ln in compressed.splitlines()}
    return sum(ln in kept for ln in body) / len(body) >= 0.6


@dataclass(frozen=True)
class Task:
    """How one benchmark turns a record into a request and scores the output."""

    context: Callable[[Mapping[str, Any]], str]
    request: Callable[[Mapping[str, Any]], tuple[str, list[Document]]]
    hit: Callable[[Mapping[str, Any], str], bool]


TASKS: dict[str, Task] = {
    "nq20": Task(_nq20_context, _nq20_documents, _nq20_hit),
    "code-needle": Task(lambda r: r["code"], _code_documents, _code_hit),
}


@dataclass(frozen=True)
class RecordOutcome:
    """One scored record, as :func:`run_eval` hands it to ``on_record``."""

    record: Mapping[str, Any]
    query: str
    documents: tuple[Document, ...]
    budget: Budget
    result: CompressionResult
    hit: bool


@dataclass(frozen=True)
class EvalSummary:
    """Scores of one run, as the benchmark's scorer reports them.

    Attributes:
        seconds_per_record: Compression seconds per record: the mean latency when
            ``concurrency`` is 1, wall-clock seconds / ``n`` (throughput) when it is higher.
        median_seconds: Median latency of one ``compress`` call.
        concurrency: Records compressed at once.
    """

    task: str
    n: int
    target: float
    hit_rate: float
    answer_recall: float
    within_budget: float
    median_ratio: float
    seconds_per_record: float
    median_seconds: float
    concurrency: int = 1

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def line(self) -> str:
        return (
            f"{self.task} n={self.n} target={self.target:g}x HIT={self.hit_rate:.4f} "
            f"recall={self.answer_recall:.4f} within_budget={self.within_budget:.4f} "
            f"median_ratio={self.median_ratio:.2f} s/record={self.seconds_per_record:.3f} "
            f"(median {self.median_seconds:.3f}) concurrency={self.concurrency}"
        )


def run_eval(
    task: str,
    records: Iterable[Mapping[str, Any]],
    compressor: Compressor,
    target: float,
    *,
    predictions: TextIO | None = None,
    progress: bool = False,
    concurrency: int = 1,
    on_record: Callable[[RecordOutcome], None] | None = None,
) -> EvalSummary:
    """Compresses every record at ``target`` x and scores it.

    Args:
        task: ``"nq20"`` or ``"code-needle"``.
        records: Records of the benchmark file.
        compressor: Any compressor; it should count tokens with the ``words`` tokenizer. With
            ``concurrency > 1`` its ``compress`` is called from several threads at once.
        target: Compression ratio the scorer checks.
        predictions: Where to write ``{"id", "compressed"}`` lines (in record order).
        progress: Show a progress bar.
        concurrency: Records compressed at once by a thread pool (1: one after another). A
            generator that batches concurrent requests (``TransformersGenerator`` with
            ``batch_size > 1``, or a vLLM server) turns this into throughput.
        on_record: Called with every scored record, in record order (e.g. to keep a sample
            for an HTML report).

    Raises:
        InvalidInputError: an unknown task, a target below 1 or a concurrency below 1.
    """
    if task not in TASKS:
        raise InvalidInputError(f"unknown benchmark {task!r}; choose from {sorted(TASKS)}")
    if not (isinstance(target, int | float) and target >= 1):
        raise InvalidInputError(f"target must be a ratio >= 1, got {target!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInputError(
            f"concurrency must be an int >= 1 (1: one record at a time), got {concurrency!r}"
        )
    spec = TASKS[task]
    rows = list(records)

    def compress(record: Mapping[str, Any]) -> _Compressed:
        original_words = len(spec.context(record).split())
        query, docs = spec.request(record)
        start = time.perf_counter()
        budget = Budget(tokens=math.floor(original_words / target))
        result = compressor.compress(query, docs, budget)
        seconds = time.perf_counter() - start
        return _Compressed(query, tuple(docs), budget, result, seconds, original_words)

    hits = recalls = within = 0
    ratios: list[float] = []
    seconds: list[float] = []
    wall_start = time.perf_counter()
    outputs = _progress(_in_order(compress, rows, concurrency), progress, task, len(rows))
    for record, done in zip(rows, outputs, strict=True):
        compressed, original_words = done.result.text("\n"), done.original_words
        seconds.append(done.seconds)
        if predictions is not None:
            predictions.write(json.dumps({"id": record["id"], "compressed": compressed}) + "\n")
        kept_words = len(compressed.split())
        ratio = original_words / kept_words if kept_words else math.inf
        recall = spec.hit(record, compressed)
        ok = ratio >= BUDGET_SLACK * target
        recalls += recall
        within += ok
        hits += recall and ok
        ratios.append(ratio)
        if on_record is not None:
            on_record(
                RecordOutcome(
                    record, done.query, done.documents, done.budget, done.result, recall and ok
                )
            )
    wall = time.perf_counter() - wall_start
    n = max(len(rows), 1)
    return EvalSummary(
        task=task,
        n=len(rows),
        target=float(target),
        hit_rate=hits / n,
        answer_recall=recalls / n,
        within_budget=within / n,
        median_ratio=statistics.median(ratios) if ratios else math.nan,
        seconds_per_record=(sum(seconds) if concurrency == 1 else wall) / n,
        median_seconds=statistics.median(seconds) if seconds else math.nan,
        concurrency=concurrency,
    )


@dataclass(frozen=True)
class _Compressed:
    query: str
    documents: tuple[Document, ...]
    budget: Budget
    result: CompressionResult
    seconds: float
    original_words: int


def _in_order(
    fn: Callable[[Mapping[str, Any]], _Compressed],
    rows: list[Mapping[str, Any]],
    concurrency: int,
) -> Iterator[_Compressed]:
    """``fn`` of every row, in row order, computed by ``concurrency`` threads."""
    if concurrency == 1:
        yield from map(fn, rows)
        return
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ragzip-eval")
    try:
        yield from pool.map(fn, rows)
    finally:  # on an error, or a consumer that stops early: drop what has not started
        pool.shutdown(wait=True, cancel_futures=True)


def _progress(rows: Iterable[Any], enabled: bool, desc: str, total: int) -> Iterator[Any]:
    from ragzip.progress import progress_bar

    yield from progress_bar(rows, enabled=enabled, desc=desc, unit="rec", total=total)
