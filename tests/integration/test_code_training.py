"""``ragzip train-code``: pairs from a tiny two-language repository, a few steps on the packaged
MiniLM, and the code compressor reloading the result; the shipped ``ragzip-code``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragzip.compressors.code import CodeCompressor
from ragzip.encoders.bi_encoder import BiEncoder
from ragzip.encoders.relevance import DEFAULT_CODE, tuned_encoder_dir
from ragzip.errors import ConfigError
from ragzip.lora import ADAPTER_WEIGHTS
from ragzip.training.code import CodeTrainConfig, mine_items, train_code
from ragzip.types import Budget, Document

TOPICS = [
    ("parse_date", "Parse an ISO date string into a year, month and day tuple.", "text.split('-')"),
    ("send_mail", "Send an email message through the configured SMTP server.", "smtp.send(msg)"),
    ("resize_image", "Scale a picture to the requested width and height.", "img.resize(w, h)"),
    ("hash_password", "Derive a salted hash of a user's password for storage.", "sha(pw + salt)"),
    ("read_config", "Load the settings file and return its values as a dict.", "json.load(f)"),
    ("retry_request", "Repeat an HTTP request with exponential backoff on failure.", "sleep(2**n)"),
    ("count_words", "Count how often every word occurs in a text.", "Counter(text.split())"),
    ("merge_sorted", "Merge two sorted lists into one sorted list.", "heapq.merge(a, b)"),
]


def python_file(names: list[tuple[str, str, str]]) -> str:
    parts = []
    for name, doc, body in names:
        parts.append(
            f'def {name}(x):\n    """{doc}"""\n    value = {body}\n    other = value\n'
            "    return other\n"
        )
    return "\n\n".join(parts)


def go_file(names: list[tuple[str, str, str]]) -> str:
    parts = ["package util\n"]
    for name, doc, body in names:
        go = "".join(w.title() for w in name.split("_"))
        doc = doc.rstrip(".") + ", in Go."  # a description of its own (duplicates are dropped)
        parts.append(f"// {doc}\nfunc {go}(x int) int {{\n\tv := x + 1\n\treturn v // {body}\n}}\n")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, git_repo: Any) -> Path:
    files: dict[str, str | bytes] = {}
    for k in range(4):
        files[f"pkg/mod{k}.py"] = python_file(TOPICS[2 * k : 2 * k + 2])
        files[f"go/file{k}.go"] = go_file(TOPICS[2 * k : 2 * k + 2])
    return git_repo(tmp_path_factory.mktemp("code") / "repo", files)


def small_run(repo: Path, out: Path) -> CodeTrainConfig:
    return CodeTrainConfig(
        repos=(str(repo),),
        out=str(out),
        max_steps=2,
        batch_questions=4,
        max_length=48,
        val_share=0.3,
        val_candidates=3,
        learning_rate=5e-3,
        progress=False,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("code-model") / "model"
    config = small_run(repo, out)
    return out, train_code(config)


def test_training_reports_writes_a_data_card_and_reloads(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    out, report = trained
    card = json.loads((out / "data_card.json").read_text())
    (entry,) = card["repositories"]
    assert entry["pairs_by_language"] == {"go": 8, "python": 8} and len(entry["commit"]) == 40
    assert report["train_questions"] + report["val_questions"] == 16
    assert set(report["val"]) >= {"top1", "top5"} and report["val_before"] is not None
    assert (out / ADAPTER_WEIGHTS).stat().st_size < 8 * 1024 * 1024
    assert tuned_encoder_dir(str(out)) == out
    query = "Derive a salted hash of a password"
    assert not np.allclose(BiEncoder(str(out)).encode([query]), BiEncoder().encode([query]))


def test_the_code_compressor_loads_the_result_by_path(
    trained: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = trained
    comp = CodeCompressor(scoring="bi", encoder=str(out), tokenizer="words")
    source = python_file(TOPICS)
    doc = Document(source, metadata={"path": "all.py"})
    result = comp.compress("Merge two sorted lists", [doc], Budget(ratio=4))
    assert result.tokens_after <= result.tokens_before / 4 + 1
    assert result.documents and result.documents[0].text.strip()


def test_resume_continues_from_the_saved_state(
    tmp_path: Path, repo: Path, trained: tuple[Path, dict[str, Any]]
) -> None:
    out, first = trained
    report = train_code(small_run(repo, out))  # the one epoch is done: nothing more to train
    assert report["history"] == first["history"] and report["val_before"] == first["val_before"]


def test_cli_trains_and_prints_held_out_figures(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragzip.cli.main import main

    out = tmp_path / "cli"
    held = tmp_path / "held.txt"
    held.write_text("# never train on these\npkg/mod0.py::parse_date\nno_such_function\n")
    args = ["train-code", "--repo", str(repo), "--out", str(out), "--max-steps", "1"]
    args += ["--hold-out", "SendMail", "--hold-out-file", str(held)]
    assert main([*args, "--max-length", "32", "--batch", "4", "--val-share", "0.3", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "held-out functions ranked first" in printed and '"encoder"' in printed
    assert "(2 of 3 held-out functions found and left out)" in printed
    card = json.loads((out / "data_card.json").read_text())
    assert card["held_out"] == {"listed": 3, "found": 2}
    assert card["train_questions"] + card["val_questions"] == 14
    assert main(["train-code", "--repo", str(tmp_path), "--out", str(out)]) == 2
    assert "not a git repository" in capsys.readouterr().err


def test_held_out_functions_are_neither_questions_nor_negatives(repo: Path, tmp_path: Path) -> None:
    config = small_run(repo, tmp_path / "out")
    train, val, mined = mine_items(replace(config, hold_out=("pkg/mod0.py::parse_date",)))
    items = train + val
    assert len(items) == 15 and mined[0].held_out == 1
    assert TOPICS[0][1] not in [it.question for it in items]
    texts = [t for it in items for t in (*it.positives, *it.negatives)]
    assert not [t for t in texts if "def parse_date" in t]
    assert [t for t in texts if "func ParseDate" in t]  # the Go one is another function


def test_a_repository_without_documented_functions_is_a_config_error(
    tmp_path: Path, git_repo: Any
) -> None:
    bare = git_repo(tmp_path / "bare", {"a.py": "def f(x):\n    return x\n", "b.bin": b"\0" * 9})
    with pytest.raises(ConfigError, match="documented function"):
        train_code(CodeTrainConfig(repos=(str(bare),), out=str(tmp_path / "out")))
    with pytest.raises(ConfigError, match="at least one git checkout"):
        CodeTrainConfig(repos=(), out=str(tmp_path / "out"))


def test_the_shipped_code_model_is_the_code_compressors_default() -> None:
    folder = tuned_encoder_dir(DEFAULT_CODE)
    assert folder is not None and (folder / "MODEL_CARD.md").is_file()
    assert (folder / "data_card.json").is_file()
    assert all(f.stat().st_size <= 8 * 1024 * 1024 for f in folder.iterdir())
    comp = CodeCompressor()
    assert comp.params()["encoder"] == DEFAULT_CODE and comp.params()["scoring"] == "bi"
    assert comp.scorer.encoder.model_name == DEFAULT_CODE
    assert comp.scorer.encoder.encode(["parse a date"]).shape == (1, 384)
