"""A sample of an evaluation run for an HTML report: the records where the answer was lost
first, then hits, each in the inspector's view."""

from __future__ import annotations

from typing import Any

from ragzip.eval.benchmarks import RecordOutcome
from ragzip.inspector.view import Run, build_view

__all__ = ["EvalSample"]


class EvalSample:
    """Collects up to ``size`` records from :func:`ragzip.eval.benchmarks.run_eval`.

    Pass it as ``on_record``; it keeps the first ``size`` misses and the first ``size`` hits
    (in record order), and :meth:`views` shows misses first.

    Example:
        >>> sample = EvalSample(20)
        >>> summary = run_eval("nq20", records, compressor, 20, on_record=sample)
        >>> write_report("sample.html", sample.views("extractive"))
    """

    def __init__(self, size: int = 20) -> None:
        self.size = max(0, int(size))
        self.misses: list[RecordOutcome] = []
        self.hits: list[RecordOutcome] = []

    def __call__(self, outcome: RecordOutcome) -> None:
        bucket = self.hits if outcome.hit else self.misses
        if len(bucket) < self.size:
            bucket.append(outcome)

    def views(self, name: str) -> list[dict[str, Any]]:
        """One view per kept record (misses first), the run named ``name`` and marked hit or
        miss."""
        return [
            build_view(
                o.query,
                o.documents,
                [Run(name, o.result, extra={"hit": o.hit})],
                budget=o.budget.to_dict(),
                title=f"record {o.record.get('id', '')}: {'hit' if o.hit else 'miss'}",
            )
            for o in (self.misses + self.hits)[: self.size]
        ]
