"""ragzip's relevance models: both training recipes (tuned bi-encoder, cross model) on a tiny
fixture, loading by path and by the shipped name, and the compressors' use of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.encoders.bi_encoder import BiEncoder, get_bi_encoder
from ragzip.encoders.relevance import (
    DEFAULT_RELEVANCE,
    PassageScores,
    RelevanceModel,
    resolve_relevance,
    tuned_encoder_dir,
)
from ragzip.errors import ModelNotFoundError
from ragzip.lora import ADAPTER_WEIGHTS
from ragzip.testing import DOCUMENTS, QUESTIONS, CompressorContract, check_result
from ragzip.training.bi_encoder import BiEncoderTrainConfig, train_bi_encoder
from ragzip.training.relevance import RelevanceTrainConfig, train_relevance
from ragzip.types import Budget

pytestmark = pytest.mark.integration

FACTS = [
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "Mona Lisa"),
    ("Which city is the capital of Kenya?", "Nairobi", "Kenya"),
    ("Who discovered penicillin?", "Alexander Fleming", "Penicillin"),
    ("What is the largest planet?", "Jupiter", "Planets"),
    ("Who wrote War and Peace?", "Leo Tolstoy", "War and Peace"),
    ("Which river flows through Cairo?", "the Nile", "Cairo"),
    ("Who invented the telephone?", "Alexander Graham Bell", "Telephone"),
    ("What is the hardest mineral?", "diamond", "Minerals"),
]
FILLER = "It is often discussed in books and museums. Many visitors ask about it every year."


def _records() -> list[dict[str, Any]]:
    out = []
    for k, (question, answer, title) in enumerate(FACTS):
        gold = f"{FILLER} The answer people look for is {answer}, as records show. {FILLER}"
        others = [FACTS[(k + j) % len(FACTS)][2] for j in (1, 2)]
        documents = [{"title": title, "text": gold}] + [
            {"title": t, "text": f"{t} has a long history. {FILLER}"} for t in others
        ]
        out.append({"question": question, "answers": [answer], "documents": documents})
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("relevance-data") / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _records()) + "\n", encoding="utf-8")
    return path


def _config(out: Path, data: Path, **overrides: Any) -> RelevanceTrainConfig:
    settings: dict[str, Any] = {
        "out": str(out),
        "data": (str(data),),
        "negatives": 2,
        "hard_negatives": 1,
        "epochs": 1,
        "batch_groups": 2,
        "max_length": 96,
        "val_share": 0.25,
        "learning_rate": 5e-3,
        "progress": False,
        **overrides,
    }
    return RelevanceTrainConfig(**settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("relevance") / "model"
    first = train_relevance(_config(out, data))
    assert [h["epoch"] for h in first["history"]] == [1]
    # A second run with more epochs resumes after the first (the state is in OUT).
    second = train_relevance(_config(out, data, epochs=2))
    return out, second


def test_training_writes_adapters_heads_and_a_report(trained: tuple[Path, dict[str, Any]]) -> None:
    out, report = trained
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    saved = {p.name for p in out.iterdir()}
    assert {ADAPTER_WEIGHTS, "adapter_config.json", "relevance_config.json"} <= saved
    assert not {"model.safetensors", "config.json"} & saved  # adapters and heads only
    assert (out / ADAPTER_WEIGHTS).stat().st_size < 8 * 1024 * 1024
    assert report["train_groups"] == 6 and report["val_groups"] == 2
    assert set(report["val"]) >= {"passage_top1", "keep_top1"}
    assert report["hardware"]["cores"] >= 1 and report["seconds"] > 0


def test_the_trained_model_scores_passages_and_tokens(trained: tuple[Path, Any]) -> None:
    out, _ = trained
    model = RelevanceModel(str(out), dtype="fp32")
    gold = _records()[0]["documents"][0]["text"]
    long_text = " ".join([FILLER] * 80)  # several windows
    scores = model.score(FACTS[0][0], [gold, long_text], titles=["Mona Lisa", ""])
    assert all(isinstance(s, PassageScores) for s in scores)
    for s, text in zip(scores, [gold, long_text], strict=True):
        assert s.starts.shape == s.ends.shape == s.keep.shape == s.answer.shape
        assert s.starts.min() >= 0 and s.ends.max() <= len(text)
        assert ((s.keep >= 0) & (s.keep <= 1)).all() and np.isfinite(s.relevance)
    assert scores[1].ends.max() > len(long_text) - 10  # every window was read
    sentence = scores[0].span_scores([(0, 20), (len(gold), len(gold) + 5)])
    assert 0 <= sentence[0] <= 1 and sentence[1] == 0.0


def test_lora_merge_matches_peft(trained: tuple[Path, Any]) -> None:
    peft = pytest.importorskip("peft")
    import torch

    from ragzip.encoders.relevance import build_net, load_relevance

    out, _ = trained
    tokenizer, merged, _ = load_relevance(out)
    _, base = build_net("minilm")
    reference = peft.PeftModel.from_pretrained(base, str(out)).merge_and_unload().eval()
    batch = tokenizer(["who?"], ["Some passage text."], return_tensors="pt")
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    with torch.inference_mode():
        for ours, theirs in zip(merged(*args), reference(*args), strict=True):
            assert torch.allclose(ours, theirs, atol=1e-4)


def test_extractive_cross_path_and_adaptive_mode(trained: tuple[Path, Any]) -> None:
    out, _ = trained
    budget = Budget(ratio=2)
    comp = ExtractiveCompressor(relevance=str(out), tokenizer="words", relevance_top=3)
    result = comp.compress(QUESTIONS[0].question, DOCUMENTS, budget)
    check_result(comp, result, DOCUMENTS, budget)
    assert result.info["model"] == str(out) and result.info["adaptive"] is False
    strict = ExtractiveCompressor(relevance=str(out), tokenizer="words", keep_threshold=1.01)
    adaptive = strict.compress(QUESTIONS[0].question, DOCUMENTS, budget)
    check_result(strict, adaptive, DOCUMENTS, budget)
    assert adaptive.info["adaptive"] is True and adaptive.info["sentences_kept"] == 1
    assert adaptive.tokens_after < result.tokens_after


def test_a_missing_model_falls_back_to_the_bi_encoder(caplog: pytest.LogCaptureFixture) -> None:
    comp = ExtractiveCompressor(relevance="/nonexistent/relevance", tokenizer="words")
    result = comp.compress(QUESTIONS[0].question, DOCUMENTS, Budget(ratio=3))
    assert result.documents and "model" not in result.info
    assert "relevance model unavailable" in caplog.text
    with pytest.raises(ModelNotFoundError, match="ragzip train"):
        resolve_relevance("/nonexistent/relevance")


@pytest.mark.parametrize("kind", ["bi-encoder", "cross"])
def test_the_cli_trains_a_model(
    tmp_path: Path, data: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragzip.cli.main import main

    out = tmp_path / f"cli-{kind}"
    args = ["train", "--kind", kind, "--data", str(data), "--out", str(out), "--max-steps", "1"]
    args += ["--epochs", "1", "--max-length", "64", "--negatives", "1", "--hard-negatives", "1"]
    assert main([*args, "--val-share", "0.25", "--quiet"]) == 0
    assert (out / ADAPTER_WEIGHTS).is_file()
    printed = capsys.readouterr().out
    assert "answer-sentence top-1" in printed
    assert ("sentence_model" if kind == "bi-encoder" else '"relevance"') in printed


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, data: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bi") / "model"
    config = BiEncoderTrainConfig(
        out=str(out),
        data=(str(data),),
        epochs=2,
        batch_questions=3,
        hard_negatives=2,
        max_length=48,
        val_share=0.25,
        learning_rate=5e-3,
        progress=False,
    )
    return out, train_bi_encoder(config)


def test_bi_encoder_training_reports_and_reloads(tuned: tuple[Path, dict[str, Any]]) -> None:
    out, report = tuned
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    assert report["val_before"]["top1"] >= 0 and "top1" in report["val"]
    assert json.loads((out / "relevance_config.json").read_text())["kind"] == "bi-encoder"
    assert tuned_encoder_dir(str(out)) == out and tuned_encoder_dir("minilm") is None
    vectors = BiEncoder(str(out)).encode(["Who painted the Mona Lisa?"])
    base = BiEncoder("minilm").encode(["Who painted the Mona Lisa?"])
    assert vectors.shape == base.shape and abs(float(np.linalg.norm(vectors)) - 1) < 1e-4
    assert not np.allclose(vectors, base)  # the adapters were merged
    comp = ExtractiveCompressor(sentence_model=str(out), tokenizer="words")
    budget = Budget(ratio=3)
    check_result(comp, comp.compress(QUESTIONS[0].question, DOCUMENTS, budget), DOCUMENTS, budget)


def test_bi_encoder_merge_matches_peft(tuned: tuple[Path, Any]) -> None:
    peft = pytest.importorskip("peft")
    import torch
    import transformers

    from ragzip.models import resolve_model

    out, _ = tuned
    base = transformers.AutoModel.from_pretrained(
        resolve_model("minilm").path, add_pooling_layer=False
    )
    reference = peft.PeftModel.from_pretrained(base, str(out)).merge_and_unload().eval()
    ours = BiEncoder(str(out)).model[0].auto_model
    merged = dict(ours.named_parameters())
    for name, weight in reference.named_parameters():
        assert torch.allclose(merged[name], weight, atol=1e-5), name


def test_the_shipped_model_loads_offline_by_name() -> None:
    folder = tuned_encoder_dir(DEFAULT_RELEVANCE)
    assert folder is not None and (folder / "MODEL_CARD.md").is_file()
    assert all(f.stat().st_size <= 8 * 1024 * 1024 for f in folder.iterdir())
    encoder = get_bi_encoder(DEFAULT_RELEVANCE, quantize=None)
    assert encoder.encode(["who wrote hamlet?"]).shape == (1, 384)
    assert ExtractiveCompressor().sentence_encoder is encoder


class TestExtractiveShippedModelContract(CompressorContract):
    tiny_budget_may_be_empty = False

    @pytest.fixture
    def compressor(self) -> ExtractiveCompressor:
        return ExtractiveCompressor(tokenizer="words")


class TestExtractiveBiEncoderContract(CompressorContract):
    tiny_budget_may_be_empty = False

    @pytest.fixture
    def compressor(self) -> ExtractiveCompressor:
        return ExtractiveCompressor(sentence_model=None, tokenizer="words")


def test_a_bge_style_reranker_by_path_rescored_sentences(tmp_path: Path) -> None:
    """Rerankers such as BAAI/bge-reranker-* are XLM-RoBERTa sequence classifiers loaded as
    sentence-transformers CrossEncoders; a tiny random one of that architecture (with the
    packaged MiniLM tokenizer, as no XLM-R vocabulary is available offline) stands in."""
    import torch
    import transformers

    from ragzip.encoders.cross_encoder import CrossEncoderScorer
    from ragzip.models import resolve_model

    base = resolve_model("minilm").path
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = transformers.XLMRobertaForSequenceClassification(config)
    path = tmp_path / "tiny-bge-reranker"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    comp = ExtractiveCompressor(
        relevance=None, cross_encoder=str(path), rerank_top=8, tokenizer="words"
    )
    budget = Budget(ratio=3)
    result = comp.compress(QUESTIONS[0].question, DOCUMENTS, budget)
    check_result(comp, result, DOCUMENTS, budget)
    scores = CrossEncoderScorer(str(path)).score("who?", ["one passage", "another"])
    assert scores.shape == (2,) and np.isfinite(scores).all()
