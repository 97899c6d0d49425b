"""See what a compressor kept: the view model, running several compressors on one input, and
the HTML of the sidecar's ``/ui`` page and of ``--html`` reports."""

from ragzip.inspector.compare import answer_full, run_compressors
from ragzip.inspector.report import check_report_path, render_page, render_report, write_report
from ragzip.inspector.sample import EvalSample
from ragzip.inspector.view import Run, build_view, segments

__all__ = [
    "EvalSample",
    "Run",
    "answer_full",
    "build_view",
    "check_report_path",
    "render_page",
    "render_report",
    "run_compressors",
    "segments",
    "write_report",
]
