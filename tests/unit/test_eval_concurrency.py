"""run_eval with a thread pool: same scores and predictions, in record order."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from ragzip.compressors.base import MethodOutput, Request
from ragzip.compressors.truncate import TruncateCompressor
from ragzip.errors import InvalidInputError
from ragzip.eval.benchmarks import load_jsonl, run_eval


class SlowFirst(TruncateCompressor):
    """Truncation that takes longer for earlier records, so later ones finish first."""

    def __init__(self, delays: dict[str, float]) -> None:
        super().__init__(tokenizer="words")
        self.delays = delays
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _compress(self, request: Request) -> MethodOutput:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.delays.get(request.query, 0.0))
            return super()._compress(request)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def records(fixtures_dir):
    base = load_jsonl(fixtures_dir / "nq20-mini.jsonl")
    rows = []
    for copy in range(2):  # six records with distinct ids and questions
        for record in base:
            rows.append(
                {
                    **record,
                    "id": f"{record['id']}-{copy}",
                    "question": f"{record['question']} {copy}",
                }
            )
    return rows


def run(records, concurrency):
    delays = {r["question"]: 0.05 * (len(records) - i) for i, r in enumerate(records)}
    compressor = SlowFirst(delays)
    out = io.StringIO()
    summary = run_eval("nq20", records, compressor, 5, predictions=out, concurrency=concurrency)
    return summary, [json.loads(line) for line in out.getvalue().splitlines()], compressor


def test_concurrent_eval_writes_predictions_in_record_order_and_scores_the_same(records):
    serial, serial_preds, serial_comp = run(records, 1)
    threaded, threaded_preds, threaded_comp = run(records, 3)
    assert [p["id"] for p in threaded_preds] == [r["id"] for r in records]
    assert threaded_preds == serial_preds
    assert serial_comp.peak == 1 and threaded_comp.peak > 1
    scores = ("n", "target", "hit_rate", "answer_recall", "within_budget", "median_ratio")
    assert {k: getattr(threaded, k) for k in scores} == {k: getattr(serial, k) for k in scores}
    assert serial.concurrency == 1 and threaded.concurrency == 3
    assert threaded.to_dict()["concurrency"] == 3 and "concurrency=3" in threaded.line()
    # Throughput: three at a time beats one at a time on sleeping work.
    assert threaded.seconds_per_record < serial.seconds_per_record
    assert threaded.median_seconds > 0


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "3"])
def test_concurrency_must_be_a_positive_int(records, bad):
    with pytest.raises(InvalidInputError, match="concurrency"):
        run_eval("nq20", records, TruncateCompressor(tokenizer="words"), 5, concurrency=bad)


def test_an_error_in_one_record_is_raised(records):
    class Failing(TruncateCompressor):
        def _compress(self, request: Request) -> MethodOutput:
            if request.query.endswith("1"):
                raise RuntimeError("compressor exploded")
            return super()._compress(request)

    with pytest.raises(RuntimeError, match="exploded"):
        run_eval("nq20", records, Failing(tokenizer="words"), 5, concurrency=3)
