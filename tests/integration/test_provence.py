"""Provence checkpoints through ProvenceModel and the ``provence`` compressor.

No Provence checkpoint can be downloaded here, so the tests build one: a remote-code folder
(``config.json`` whose ``auto_map`` names a modeling file in the same folder) holding a tiny,
randomly initialised DeBERTa-v2 encoder with Provence's two heads (a reranking head on the
pooled first token, a keep/drop head on every token) and a ``process()`` with the signature
and return shape of naver's checkpoints, plus the packaged MiniLM tokenizer. Its decoded
output is lower-cased (an uncased tokenizer), so mapping it back to the source is exercised.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragzip.compressors.provence import ProvenceCompressor
from ragzip.compressors.registry import compressors
from ragzip.encoders.provence import ProvenceModel, kept_spans
from ragzip.errors import ConfigError, ModelNotFoundError
from ragzip.models import resolve_model
from ragzip.testing import DOCUMENTS, QUESTIONS, CompressorContract, check_result
from ragzip.text import segment
from ragzip.types import Budget, Document

pytestmark = pytest.mark.integration

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MODELING = '''
"""A tiny Provence-style model for ragzip's tests (written for them, not naver's code)."""

import re

import torch
from transformers import AutoTokenizer
from transformers.models.deberta_v2.modeling_deberta_v2 import (
    ContextPooler,
    DebertaV2Config,
    DebertaV2Model,
    DebertaV2PreTrainedModel,
)

SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")


class TinyProvenceConfig(DebertaV2Config):
    model_type = "tiny-provence"


class TinyProvence(DebertaV2PreTrainedModel):
    config_class = TinyProvenceConfig

    def __init__(self, config):
        super().__init__(config)
        self.deberta = DebertaV2Model(config)
        self.pooler = ContextPooler(config)
        self.classifier = torch.nn.Linear(self.pooler.output_dim, 1)
        self.token_classifier = torch.nn.Linear(config.hidden_size, 2)
        self._tokenizer = None
        self.post_init()

    def forward(self, input_ids, attention_mask=None):
        states = self.deberta(input_ids=input_ids, attention_mask=attention_mask)[0]
        return self.classifier(self.pooler(states)).squeeze(-1), self.token_classifier(states)

    def process(self, question, context, title=None, threshold=0.1, batch_size=32,
                always_select_title=False, reorder=False, top_k=5, enable_warnings=True):
        if self._tokenizer is None:
            self._tokenizer = AutoTokenizer.from_pretrained(self.config._name_or_path)
        single = isinstance(question, str)
        questions = [question] if single else list(question)
        contexts = [[context]] if single else [list(row) for row in context]
        pruned, scores = [], []
        for q, asked in enumerate(questions):
            texts, values = [], []
            for c, ctx in enumerate(contexts[q]):
                head = title[q][c] if isinstance(title, list) else None
                text, score = self._one(asked, ctx, head, threshold, always_select_title)
                texts.append(text)
                values.append(score)
            pruned.append(texts)
            scores.append(values)
        if single:
            return {"pruned_context": pruned[0][0], "reranking_score": scores[0][0]}
        return {"pruned_context": pruned, "reranking_score": scores}

    def _one(self, question, context, head, threshold, always_select_title):
        full = f"{head} {context}" if head else context
        pieces = [m.span() for m in SENTENCE.finditer(full) if m.group().strip()]
        enc = self._tokenizer(question, full, truncation="only_second", max_length=256,
                              return_offsets_mapping=True, return_tensors="pt")
        kinds = enc.sequence_ids(0)
        offsets = enc["offset_mapping"][0].tolist()
        score, logits = self(enc["input_ids"].to(self.device),
                             enc["attention_mask"].to(self.device))
        keep = logits.float().softmax(-1)[0, :, 1].tolist()
        ids = enc["input_ids"][0].tolist()
        members, chosen = [], []
        for a, b in pieces:
            inside = [i for i, k in enumerate(kinds)
                      if k == 1 and offsets[i][0] < b and offsets[i][1] > a]
            members.append(inside)
            chosen.append(bool(inside) and sum(keep[i] for i in inside) / len(inside) > threshold)
        if head and always_select_title and any(chosen[1:]):
            chosen[0] = True
        kept = [ids[i] for inside, on in zip(members, chosen) if on for i in inside]
        return self._tokenizer.decode(kept, skip_special_tokens=True), float(score[0])
'''


def _import(path: Path) -> object:
    spec = importlib.util.spec_from_file_location("ragzip_test_tiny_provence", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: a tiny model gains nothing from two, and waits for a busy core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A remote-code Provence-style checkpoint folder (config, code, weights, tokenizer)."""
    folder = tmp_path_factory.mktemp("tiny-provence")
    (folder / "modeling_tiny_provence.py").write_text(MODELING, "utf-8")
    minilm = Path(resolve_model("minilm").path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm / name, folder / name)
    module = _import(folder / "modeling_tiny_provence.py")
    config = module.TinyProvenceConfig(  # type: ignore[attr-defined]
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=64,
        max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        type_vocab_size=0,
        pooler_hidden_size=32,
        pooler_dropout=0,
        pooler_hidden_act="gelu",
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = module.TinyProvence(config)  # type: ignore[attr-defined]
        torch.nn.init.normal_(model.token_classifier.weight, std=0.5)  # spread keep probabilities
    model.save_pretrained(folder)
    written = json.loads((folder / "config.json").read_text("utf-8"))
    written["architectures"] = ["TinyProvence"]
    written["auto_map"] = {
        "AutoConfig": "modeling_tiny_provence.TinyProvenceConfig",
        "AutoModel": "modeling_tiny_provence.TinyProvence",
    }
    (folder / "config.json").write_text(json.dumps(written, indent=2), "utf-8")
    with pytest.MonkeyPatch.context() as patch:  # transformers copies remote code here
        patch.setattr(
            "transformers.dynamic_module_utils.HF_MODULES_CACHE", str(folder.parent / "modules")
        )
        yield folder


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> ProvenceModel:
    return ProvenceModel(str(checkpoint), trust_remote_code=True, threshold=0.5, device="cpu")


def fold(text: str) -> str:
    return "".join(c for c in text if c.isalnum()).lower()


# -- the adapter ------------------------------------------------------------------------------
def test_prune_returns_one_result_per_passage_with_spans_of_kept_sentences(
    model: ProvenceModel,
) -> None:
    passages = [d.text for d in DOCUMENTS] + ["   "]
    results = model.prune(QUESTIONS[0].question, passages)
    assert len(results) == len(passages)
    dropped = kept = 0
    for passage, result in zip(passages[:-1], results, strict=False):
        assert type(result.score) is float
        sentences = segment(passage)
        assert set(result.spans) <= set(sentences)
        assert list(result.spans) == sorted(result.spans, key=lambda s: s.start)
        assert result.text == " ".join(passage[s.start : s.end] for s in result.spans)
        # The original sentences are exactly what the model output (decoded lower-case).
        assert fold(result.text) == fold(result.pruned_text)
        kept += len(result.spans)
        dropped += len(sentences) - len(result.spans)
    assert kept and dropped, "expected the model to keep some sentences and drop others"
    blank = results[-1]
    assert (blank.text, blank.spans, blank.score) == ("", (), float("-inf"))


def test_threshold_bounds_keep_everything_or_nothing(checkpoint: Path) -> None:
    passages = [d.text for d in DOCUMENTS[:3]]
    everything = ProvenceModel(str(checkpoint), trust_remote_code=True, threshold=0.0)
    for passage, result in zip(passages, everything.prune("any question", passages), strict=True):
        assert result.spans == tuple(segment(passage)) and result.text
    nothing = ProvenceModel(str(checkpoint), trust_remote_code=True, threshold=1.0)
    assert all(r.text == "" and r.spans == () for r in nothing.prune("q", passages))


def test_titles_are_read_but_never_part_of_the_kept_text(checkpoint: Path) -> None:
    pruner = ProvenceModel(
        str(checkpoint), trust_remote_code=True, threshold=0.0, always_select_title=True
    )
    docs = DOCUMENTS[:2]
    results = pruner.prune("q", [d.text for d in docs], titles=[d.title for d in docs])
    for doc, result in zip(docs, results, strict=True):
        assert fold(result.pruned_text) == fold(doc.title) + fold(doc.text)
        assert result.text == " ".join(doc.text[s.start : s.end] for s in segment(doc.text))


def test_kept_spans_tolerate_lost_characters_and_skip_dropped_sentences() -> None:
    passage = "Rice needs 2½ cups of water. Unrelated words here. Boil it for 漢 20 minutes."
    pruned = "rice needs 2 cups of water . boil it for [UNK] 20 minutes ."
    spans = kept_spans(passage, pruned)
    assert [passage[s.start : s.end] for s in spans] == [
        "Rice needs 2½ cups of water.",
        "Boil it for 漢 20 minutes.",
    ]
    assert kept_spans(passage, "") == ()


def test_trust_remote_code_is_required(checkpoint: Path) -> None:
    for build in (
        lambda: ProvenceModel(str(checkpoint)),
        lambda: ProvenceCompressor(str(checkpoint)),
        lambda: compressors.build({"type": "provence", "params": {"model": str(checkpoint)}}),
    ):
        with pytest.raises(ConfigError, match="trust_remote_code=True"):
            build()


def test_missing_checkpoint_and_non_provence_model_raise_clear_errors(tmp_path: Path) -> None:
    missing = ProvenceModel(str(tmp_path / "nowhere"), trust_remote_code=True)
    with pytest.raises(ModelNotFoundError, match="no Provence checkpoint at"):
        missing.prune("q", ["Some text."])
    offline = ProvenceModel("naver/no-such-provence-checkpoint", trust_remote_code=True)
    with pytest.raises(ModelNotFoundError, match="cannot load the Provence checkpoint"):
        offline.prune("q", ["Some text."])
    plain = ProvenceModel(resolve_model("minilm").path, trust_remote_code=True)
    with pytest.raises(ConfigError, match="not a Provence checkpoint"):
        plain.prune("q", ["Some text."])
    with pytest.raises(ConfigError):
        ProvenceModel(str(tmp_path), trust_remote_code=True, threshold=1.5)


# -- the compressor ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compressor(checkpoint: Path) -> ProvenceCompressor:
    return ProvenceCompressor(str(checkpoint), trust_remote_code=True, tokenizer="words")


class TestProvenceContract(CompressorContract):
    large_document_chars = 400_000

    @pytest.fixture
    def compressor(self, checkpoint: Path) -> ProvenceCompressor:
        return ProvenceCompressor(str(checkpoint), trust_remote_code=True, tokenizer="words")


@pytest.mark.parametrize("tokens", [5, 25, 60])
def test_token_budget_is_a_ceiling_on_the_models_selection(
    compressor: ProvenceCompressor, tokens: int
) -> None:
    budget = Budget(tokens=tokens)
    result = compressor.compress(QUESTIONS[1].question, DOCUMENTS, budget)
    check_result(compressor, result, DOCUMENTS, budget)
    assert 0 < result.tokens_after <= tokens
    loose = compressor.compress(QUESTIONS[1].question, DOCUMENTS, Budget(ratio=1.0))
    assert result.tokens_after <= loose.tokens_after
    for kept in result.documents:
        source = next(d for d in DOCUMENTS if d.id == kept.source_id)
        if not kept.metadata.get("truncated"):
            assert set(kept.spans) <= set(segment(source.text))


def test_unbudgeted_result_is_what_the_model_keeps(checkpoint: Path) -> None:
    comp = ProvenceCompressor(str(checkpoint), trust_remote_code=True, threshold=0.5)
    pruner = ProvenceModel(str(checkpoint), trust_remote_code=True, threshold=0.5)
    question = QUESTIONS[2].question
    expected = {
        d.id: r.text
        for d, r in zip(DOCUMENTS, pruner.prune(question, [d.text for d in DOCUMENTS]), strict=True)
        if r.text
    }
    result = comp.compress(question, DOCUMENTS, Budget(ratio=1.0))
    assert {d.source_id: d.text for d in result.documents} == expected
    assert result.info["windows_read"] == len(DOCUMENTS) and result.info["windows_skipped"] == 0


def test_windows_and_min_score(checkpoint: Path) -> None:
    long_doc = Document(" ".join(d.text for d in DOCUMENTS), id="long")
    comp = ProvenceCompressor(
        str(checkpoint), trust_remote_code=True, threshold=0.0, window_chars=300, max_windows=2
    )
    result = comp.compress(QUESTIONS[0].question, [long_doc], Budget(ratio=1.0))
    assert result.info["windows_read"] == 2 and result.info["windows_skipped"] > 0
    assert "Alexander Fleming" in result.text()  # the window sharing query terms is read
    strict = ProvenceCompressor(str(checkpoint), trust_remote_code=True, min_score=1e9)
    assert strict.compress(QUESTIONS[0].question, DOCUMENTS, Budget(ratio=1.0)).is_empty


def test_spec_round_trip_and_request_params(compressor: ProvenceCompressor) -> None:
    spec = compressor.to_dict()
    assert spec["type"] == "provence" and spec["params"]["trust_remote_code"] is True
    assert compressors.build(spec).to_dict() == spec  # building loads nothing
    assert ProvenceCompressor.request_params == frozenset({"threshold", "min_score"})
