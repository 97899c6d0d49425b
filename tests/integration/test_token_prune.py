"""The token pruner on a real model: all-MiniLM-L6-v2's BERT with a seeded random
token-classification head, saved to a temporary directory (offline, no trained weights needed).

Checks the contract, the options, the CPU fast paths against fp32, and parity of keep decisions
with the llmlingua package itself (skipped when llmlingua is not installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ragzip.compressors.token_prune import TokenPruneCompressor, TokenScorer
from ragzip.compressors.token_prune.compressor import llmlingua_labels
from ragzip.testing import DOCUMENTS, QUESTIONS, CompressorContract, check_result
from ragzip.testing.fixtures import large_document
from ragzip.training.pruner import init_pruner
from ragzip.types import Budget, Document

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pruner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # llmlingua picks its subword rules by name: a BERT checkpoint must be named like mBERT.
    folder = tmp_path_factory.mktemp("pruner") / "minilm-bert-base-multilingual-cased"
    return init_pruner(folder, base="minilm", seed=0)


class TestQuestionAwareContract(CompressorContract):
    large_document_chars = 100_000

    @pytest.fixture(scope="class")
    def compressor(self, pruner_dir: Path) -> TokenPruneCompressor:
        return TokenPruneCompressor(str(pruner_dir), tokenizer="words")


class TestPlainContract(CompressorContract):
    large_document_chars = 100_000

    @pytest.fixture(scope="class")
    def compressor(self, pruner_dir: Path) -> TokenPruneCompressor:
        return TokenPruneCompressor(
            str(pruner_dir), question_aware=False, allocation="global", force_tokens=["?"]
        )


@pytest.mark.parametrize("ratio", [2.0, 5.0])
def test_plain_pruning_keeps_words_in_order_near_the_budget(pruner_dir: Path, ratio: float) -> None:
    comp = TokenPruneCompressor(str(pruner_dir), question_aware=False, tokenizer="words")
    budget = Budget(ratio=ratio)
    result = comp.compress("", DOCUMENTS, budget)
    check_result(comp, result, DOCUMENTS, budget)
    assert result.tokens_after >= 0.8 * budget.limit(result.tokens_before)
    for doc in result.documents:
        starts = [s.start for s in doc.spans]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)


@pytest.mark.parametrize("tokenizer", ["words", "tiktoken"])
@pytest.mark.parametrize("question", ["", "When was the Eiffel Tower built?"])
def test_joined_words_spend_the_whole_budget(
    pruner_dir: Path, tokenizer: str, question: str
) -> None:
    # Punctuation and subwords are priced one by one but join their neighbours in the
    # output; what that leaves of the budget is spent on more words.
    comp = TokenPruneCompressor(str(pruner_dir), tokenizer=tokenizer)
    budget = Budget(ratio=8)
    result = comp.compress(question, DOCUMENTS, budget)
    limit = budget.limit(result.tokens_before)
    assert limit - 3 <= result.tokens_after <= limit


def test_question_aware_spends_the_budget_on_the_relevant_document(pruner_dir: Path) -> None:
    comp = TokenPruneCompressor(str(pruner_dir), tokenizer="words")
    question = QUESTIONS[0]
    result = comp.compress(question.question, DOCUMENTS, Budget(ratio=4))
    by_doc = {d.source_id: len(d.text.split()) for d in result.documents}
    assert max(by_doc, key=by_doc.__getitem__) == question.document_id


@pytest.mark.parametrize("allocation", ["relevance", "dynamic", "global"])
def test_allocations_respect_the_budget(pruner_dir: Path, allocation: str) -> None:
    comp = TokenPruneCompressor(str(pruner_dir), allocation=allocation, tokenizer="words")  # type: ignore[arg-type]
    budget = Budget(tokens=60)
    result = comp.compress(QUESTIONS[1].question, DOCUMENTS, budget)
    check_result(comp, result, DOCUMENTS, budget)
    assert result.tokens_after > 30
    allocated = result.info.get("allocation")  # what the inspector shows per document
    if allocation == "global":
        assert allocated is None
    else:
        assert len(allocated) == len(DOCUMENTS) and max(allocated) > 0
    assert len(result.info["document_scores"]) == len(DOCUMENTS)


def test_threshold_mode_keeps_only_probable_words(pruner_dir: Path) -> None:
    loose = TokenPruneCompressor(
        str(pruner_dir), question_aware=False, mode="threshold", threshold=0.0, tokenizer="words"
    )
    strict = TokenPruneCompressor(
        str(pruner_dir), question_aware=False, mode="threshold", threshold=0.99, tokenizer="words"
    )
    assert loose.compress("", DOCUMENTS, 1.0).tokens_after > 0
    assert (
        strict.compress("", DOCUMENTS, 1.0).tokens_after
        < loose.compress("", DOCUMENTS, 1.0).tokens_after
    )


def test_forced_tokens_digits_and_must_keep_strings_survive(pruner_dir: Path) -> None:
    comp = TokenPruneCompressor(
        str(pruner_dir),
        question_aware=False,
        force_reserve_digit=True,
        force_tokens=["."],
        tokenizer="words",
    )
    doc = Document("The bridge opened in 1937 and cost 35 million dollars. It is red.", id="b")
    result = comp.compress("", [doc], Budget(ratio=2, keep=("red",)))
    text = result.text()
    assert "1937" in text and "35" in text and "red" in text
    assert text.count(".") >= 1


def test_newlines_survive_pruning(pruner_dir: Path) -> None:
    comp = TokenPruneCompressor(str(pruner_dir), question_aware=False, tokenizer="words")
    text = "\n".join(f"Line {i} says something about topic number {i}." for i in range(8))
    result = comp.compress("", [text], Budget(ratio=1.5))
    assert result.text().count("\n") >= 4


@pytest.mark.parametrize(("dtype", "agreement"), [("bf16", 0.9), ("int8", 0.7)])
def test_fast_paths_agree_with_fp32(pruner_dir: Path, dtype: str, agreement: float) -> None:
    # A random head gives probabilities near 0.5, so small numeric differences flip decisions
    # more often than with a trained pruner (see benchmarks/bench_token_prune.py).
    text = large_document(6000).text
    reference, keep = llmlingua_labels(TokenScorer(str(pruner_dir)), text, 0.4)
    fast, fast_keep = llmlingua_labels(TokenScorer(str(pruner_dir), dtype=dtype), text, 0.4)  # type: ignore[arg-type]
    assert fast == reference
    assert float(np.mean(fast_keep == keep)) >= agreement
    exact = TokenScorer(str(pruner_dir)).score([text])[0].words.probs
    approx = TokenScorer(str(pruner_dir), dtype=dtype).score([text])[0].words.probs  # type: ignore[arg-type]
    assert float(np.corrcoef(exact, approx)[0, 1]) > 0.8


def test_long_inputs_are_chunked_and_batched(pruner_dir: Path) -> None:
    scorer = TokenScorer(str(pruner_dir), batch_size=3)
    texts = [large_document(8000).text, "Short one.", large_document(3000).text]
    scored = scorer.score(texts)
    assert [int(s.chunk.max()) + 1 for s in scored][1] == 1
    assert int(scored[0].chunk.max()) >= 2  # ~1,700 tokens need several 512-token chunks
    alone = scorer.score([texts[2]])[0]
    assert np.allclose(alone.words.probs, scored[2].words.probs, atol=1e-5)


@pytest.mark.parametrize("rate", [0.5, 0.33])
def test_parity_with_llmlingua(pruner_dir: Path, rate: float) -> None:
    pytest.importorskip("llmlingua")
    from ragzip.compressors.token_prune.llmlingua_backend import LLMLinguaBackend

    text = large_document(12000).text
    reference = LLMLinguaBackend(str(pruner_dir)).word_labels(text, rate=rate)
    words, keep = llmlingua_labels(TokenScorer(str(pruner_dir)), text, rate)
    assert [w for w, _ in reference] == words
    agreement = float(np.mean(np.array([label for _, label in reference]) == keep))
    assert agreement >= 0.99


def test_llmlingua_backend_compressor(pruner_dir: Path) -> None:
    pytest.importorskip("llmlingua")
    comp = TokenPruneCompressor(
        str(pruner_dir), backend="llmlingua", question_aware=False, tokenizer="words"
    )
    budget = Budget(ratio=2)
    result = comp.compress("", DOCUMENTS, budget)
    check_result(comp, result, DOCUMENTS, budget)
    assert result.info["backend"] == "llmlingua" and result.tokens_after > 0


# -- training ----------------------------------------------------------------------------------
class LongWordTeacher:
    """A deterministic teacher for the training plumbing: keeps words of 5+ characters."""

    name = "long-words"

    def label(self, passage, starts, ends):  # type: ignore[no-untyped-def]
        return (ends - starts) >= 5


@pytest.mark.parametrize(("mode", "learning_rate"), [("full", 5e-4), ("lora", 3e-3)])
def test_training_learns_resumes_and_loads_by_path(
    tmp_path: Path, mode: str, learning_rate: float
) -> None:
    from ragzip.training.pruner import TrainConfig, train_pruner

    out = tmp_path / "pruner"
    config = TrainConfig(
        out=str(out),
        mode=mode,
        epochs=1,
        batch_size=4,
        max_length=64,
        max_passages=16,
        passage_words=40,
        learning_rate=learning_rate,
        progress=False,
    )
    first = train_pruner(config, teacher=LongWordTeacher())
    assert first["teacher"] == "long-words" and len(first["history"]) == 1
    assert (out / "labels.jsonl").is_file() and (out / "train_state.pt").is_file()
    # A second run with more epochs resumes after the first one and gets better at the rule.
    second = train_pruner(
        TrainConfig(**{**config.__dict__, "epochs": 3}), teacher=LongWordTeacher()
    )
    assert [h["epoch"] for h in second["history"]] == [1, 2, 3]
    assert second["val"]["f1"] >= 0.75
    saved = {p.name for p in out.iterdir()}
    if mode == "lora":  # only the adapters, the head and small JSON files
        assert {"adapter_model.safetensors", "adapter_config.json"} <= saved
        assert not {"model.safetensors", "config.json"} & saved
    else:
        assert {"model.safetensors", "config.json"} <= saved
    assert json.loads((out / "pruner_config.json").read_text())["base"] == "minilm"
    comp = TokenPruneCompressor(str(out), question_aware=False, tokenizer="words")
    result = comp.compress("", DOCUMENTS, Budget(ratio=3))
    kept = result.text().split()
    assert np.mean([len(w.strip(".,")) >= 5 for w in kept]) > 0.7


def test_lora_pruner_loads_as_peft_merges_it(tmp_path: Path) -> None:
    # ragzip merges the adapters itself (no peft at inference); peft's own merge must agree.
    peft = pytest.importorskip("peft")
    import torch
    import transformers

    from ragzip.compressors.token_prune.model import load_pruner
    from ragzip.models import resolve_model
    from ragzip.training.pruner import TrainConfig, train_pruner

    out = tmp_path / "lora"
    config = TrainConfig(
        out=str(out), epochs=1, max_steps=3, max_passages=8, learning_rate=1e-2, progress=False
    )
    train_pruner(config, teacher=LongWordTeacher())
    tokenizer, merged = load_pruner(str(out))
    base = transformers.AutoModelForTokenClassification.from_pretrained(
        resolve_model("minilm").path, num_labels=2
    )
    reference = peft.PeftModel.from_pretrained(base, str(out)).merge_and_unload().eval()
    untouched = transformers.AutoModelForTokenClassification.from_pretrained(
        resolve_model("minilm").path, num_labels=2
    ).eval()
    inputs = tokenizer([DOCUMENTS[0].text], return_tensors="pt")
    with torch.inference_mode():
        ours, theirs = merged.eval()(**inputs).logits, reference(**inputs).logits
        hidden = merged.base_model(**inputs).last_hidden_state
        plain = untouched.base_model(**inputs).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(hidden, plain, atol=1e-4)  # the adapters did change the encoder


def test_train_pruner_cli_with_the_offline_teacher(tmp_path: Path) -> None:
    from ragzip.cli.main import main

    corpus = tmp_path / "corpus.jsonl"
    rows = [{"text": d.text, "title": d.title} for d in DOCUMENTS[:2]]
    corpus.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    out = tmp_path / "cli-pruner"
    code = main(
        [
            "train-pruner",
            "--out",
            str(out),
            "--corpus",
            str(corpus),
            "--mode",
            "full",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--passage-words",
            "30",
            "--max-passages",
            "3",
            "--quiet",
        ]
    )
    assert code == 0
    report = json.loads((out / "ragzip_pruner.json").read_text())
    assert report["teacher"] == "surprisal" and 0.3 < report["keep_share"] < 0.7
    assert 0.0 <= report["val"]["f1"] <= 1.0
    assert (out / "config.json").is_file()


def test_train_pruner_cli_lora_on_nq20_records(tmp_path: Path, fixtures_dir: Path) -> None:
    from ragzip.cli.main import main

    out, work = tmp_path / "nq-pruner", tmp_path / "work"
    args = ["train-pruner", "--out", str(out), "--work", str(work)]
    args += ["--corpus", str(fixtures_dir / "nq20-mini.jsonl"), "--records", "1:3"]
    args += ["--documents", "gold", "--teacher", "unigram", "--mode", "lora"]
    args += ["--epochs", "1", "--max-steps", "2", "--passage-words", "40", "--quiet"]
    assert main(args) == 0
    report = json.loads((out / "ragzip_pruner.json").read_text())
    assert report["teacher"] == "unigram" and report["config"]["records"] == "1:3"
    assert report["passages"] >= 2 and report["seconds"] >= 0 and report["hardware"]["cores"]
    assert {p.name for p in work.iterdir()} == {"labels.jsonl", "train_state.pt"}
    assert not (out / "labels.jsonl").exists() and not (out / "train_state.pt").exists()
    assert (out / "adapter_model.safetensors").stat().st_size < 8 * 1024 * 1024
    comp = TokenPruneCompressor(str(out), tokenizer="words")
    question = QUESTIONS[0]
    budget = Budget(ratio=3)
    result = comp.compress(question.question, DOCUMENTS, budget)
    check_result(comp, result, DOCUMENTS, budget)


# -- the packaged default ----------------------------------------------------------------------
def test_packaged_default_is_small_and_documented() -> None:
    from ragzip.compressors.token_prune.defaults import packaged_pruner_dir

    folder = packaged_pruner_dir()
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    assert sum(files.values()) <= 8 * 1024 * 1024
    assert {"adapter_model.safetensors", "adapter_config.json", "pruner_config.json"} <= set(files)
    assert not {"model.safetensors", "train_state.pt", "labels.jsonl"} & set(files)
    card = (folder / "MODEL_CARD.md").read_text("utf-8")
    for needed in ("200", "999", "seed", "MIT", "CC BY-SA", "hit rate"):
        assert needed in card
    config = json.loads((folder / "pruner_config.json").read_text())
    assert config["base"] == "minilm" and config["labels"] == ["drop", "keep"]


def test_default_pruner_loads_offline_without_training_and_prunes() -> None:
    # A fresh interpreter: the default must load from the package (offline, no cache), and
    # neither the training recipes nor the test fixtures may be imported on the way.
    script = """
import json, sys
from ragzip.compressors.token_prune import TokenPruneCompressor
from ragzip.types import Budget
docs = json.loads(sys.stdin.read())
comp = TokenPruneCompressor(tokenizer="words")
result = comp.compress(docs["question"], docs["documents"], Budget(ratio=4))
loaded = sorted(m for m in sys.modules if m.startswith(("ragzip.training", "ragzip.testing")))
print(json.dumps({"text": result.text(), "after": result.tokens_after,
                  "before": result.tokens_before, "loaded": loaded}))
"""
    question = QUESTIONS[0]
    payload = {"question": question.question, "documents": [d.text for d in DOCUMENTS]}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env["RAGZIP_CACHE_DIR"] = cache
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            check=True,
        )
        assert not list(Path(cache).rglob("*.safetensors"))  # nothing trained into the cache
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert 0 < out["after"] <= out["before"] / 4
    assert question.answer in out["text"]
