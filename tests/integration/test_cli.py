"""The ``ragzip`` command end to end, on the packaged models and shipped fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragzip.cli.main import main

pytestmark = pytest.mark.integration


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def eval_nq20_mini(
    capsys: pytest.CaptureFixture[str], fixtures_dir: Path, target: int, *extra: str
) -> tuple[int, str, str]:
    fixture = str(fixtures_dir / "nq20-mini.jsonl")
    return run_cli(capsys, "eval", "nq20", fixture, "--target", str(target), *extra)


def test_compress_reads_jsonl_and_prints_a_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "\n".join(
            json.dumps(d)
            for d in [
                {"id": "a", "title": "Everest", "text": "Everest is 8,849 m tall. It is snowy."},
                {
                    "id": "b",
                    "title": "Coffee",
                    "text": "Coffee contains caffeine. Brazil grows it.",
                },
            ]
        )
    )
    code, out, _ = run_cli(
        capsys, "compress", "--query", "How tall is Everest?", "--docs", str(docs), "--ratio", "2"
    )
    assert code == 0
    result = json.loads(out)
    assert result["compressor"] == "extractive"
    assert result["tokens_after"] <= result["tokens_before"] // 2
    assert "8,849" in " ".join(d["text"] for d in result["documents"])


def test_compress_bad_input_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_cli(capsys, "compress", "--docs", str(bad))
    assert code == 2 and "expected a JSON list" in err
    code, _, err = run_cli(capsys, "compress", "--docs", str(bad), "--compressor", "nope")
    assert code == 2
    docs = tmp_path / "ok.json"
    docs.write_text('[{"text": "x"}]')
    code, _, err = run_cli(
        capsys, "compress", "--docs", str(docs), "--params", '{"doc_weight": "high"}'
    )
    assert code == 2 and "doc_weight" in err


def test_eval_nq20_writes_predictions_and_scores(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preds = tmp_path / "preds.jsonl"
    code, out, _ = eval_nq20_mini(capsys, fixtures_dir, 5, "--predictions", str(preds), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["n"] == 3 and summary["within_budget"] == 1.0
    assert summary["hit_rate"] >= 2 / 3
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert [p["id"] for p in lines] == [0, 1, 2]


def test_eval_code_needle_runs_any_compressor(
    fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "eval",
        "code-needle",
        str(fixtures_dir / "code-mini.jsonl"),
        "--target",
        "2",
        "--compressor",
        "truncate",
        "--json",
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["n"] == 1 and summary["median_ratio"] >= 1.9


def test_index_then_ask_without_a_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(
        "The Vienna office opens at 8 am.\n\nParking is in the east garage.\n\n"
        "The cafeteria serves soup on Fridays."
    )
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "hr", "text": "Holidays must be booked two weeks ahead."}))
    index = tmp_path / "index"
    code, out, _ = run_cli(
        capsys, "index", str(notes), str(corpus), "--out", str(index), "--chunk-words", "8"
    )
    assert code == 0 and (index / "manifest.json").is_file()
    code, out, _ = run_cli(
        capsys,
        "ask",
        "When does the Vienna office open?",
        "--index",
        str(index),
        "--generator",
        "none",
        "--ratio",
        "2",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["answer"] is None and "8 am" in result["context"]


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ragzip.cli.main", "compressors"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "extractive" in proc.stdout and "document-rank" in proc.stdout


def test_eval_writes_an_html_sample_misses_first(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "sample.html"
    code, _, err = eval_nq20_mini(
        capsys,
        fixtures_dir,
        50,
        "--compressor",
        "truncate",
        "--html",
        str(report),
        "--html-sample",
        "2",
    )
    assert code == 0 and str(report) in err
    data = report.read_text("utf-8").split('id="ragzip-data">', 1)[1].split("</script>", 1)[0]
    views = json.loads(data)["views"]
    assert len(views) == 2
    hits = [v["runs"][0]["hit"] for v in views]
    assert hits == sorted(hits)  # misses (False) come first
    assert all(v["title"].startswith("record ") for v in views)


def test_eval_html_to_a_folder_fails_before_the_run(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = eval_nq20_mini(
        capsys, fixtures_dir, 5, "--compressor", "truncate", "--html", str(tmp_path)
    )
    assert code == 2 and "directory" in err
