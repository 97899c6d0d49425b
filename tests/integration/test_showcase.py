"""The demo's side-by-side comparison of compressors on one question."""

from __future__ import annotations

from pathlib import Path

from ragzip.cli.showcase import compare, print_rows
from ragzip.testing.fixtures import DOCUMENTS
from ragzip.training.pruner import init_pruner
from ragzip.types import Budget


def test_compare_gives_one_row_per_compressor_within_budget(tmp_path: Path, capsys) -> None:
    pruner = init_pruner(tmp_path / "pruner", seed=0)
    docs = list(DOCUMENTS[:4])
    runs = compare(
        "Which pigment absorbs light?",
        docs,
        Budget(ratio=4),
        names=("extractive", "token-prune"),
        params={"token-prune": {"model": str(pruner)}},
    )
    assert [r.name for r in runs] == ["extractive", "token-prune"]
    for run in runs:
        result = run.result
        assert 0 < result.tokens_after <= result.tokens_before / 4 + 1
        assert result.text() and result.timings["total"] >= 0
    print_rows(runs)
    out = capsys.readouterr().out
    assert "[extractive]" in out and "[token-prune]" in out
