"""AbstractiveCompressor: the contract, selective augmentation, caching, and the real SmolLM2.

The contract suite checks plumbing (budgets, ids, order, inputs), so it runs with a
deterministic generator that copies the first facts it is given and adds an invented one;
the prefilter and the guard use the real packaged all-MiniLM-L6-v2. SmolLM2-135M itself writes
the summaries of the last two tests: one through the project's OpenAI-compatible server on
loopback, one showing the guard remove the fact SmolLM2 makes up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragzip.compressors.abstractive import AbstractiveCompressor
from ragzip.compressors.abstractive.compressor import shared_generator
from ragzip.generators.base import BaseGenerator, Generation, GenerationRequest
from ragzip.generators.registry import generators
from ragzip.generators.serve_openai import running_server
from ragzip.testing import DOCUMENTS, CompressorContract, check_result
from ragzip.types import Budget

pytestmark = pytest.mark.integration

INVENTED = "It cost 999 million dollars."


@generators.register("test-lead")
class LeadGenerator(BaseGenerator):
    """Answers with ``Summary:`` and the first two facts of the prompt, then an invented fact;
    ``NONE`` when the question mentions xyzzy. Counts its calls."""

    name = "test-lead"

    def __init__(self) -> None:
        self.calls = 0

    def _generate(self, request: GenerationRequest) -> Generation:
        self.calls += 1
        prompt = request.messages[-1]["content"]
        facts = re.findall(r"^- (.+)$", prompt, flags=re.MULTILINE)
        text = "NONE" if "xyzzy" in prompt else f"Summary: {' '.join(facts[:2])} {INVENTED}"
        return Generation(text, "test-lead", None, None, "stop", 0.0)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        yield self._generate(request).text


LEAD: dict[str, Any] = {"type": "test-lead"}


class TestAbstractiveContract(CompressorContract):
    @pytest.fixture
    def compressor(self) -> AbstractiveCompressor:
        return AbstractiveCompressor(LEAD, tokenizer="words")


def test_guard_removes_the_invented_fact_and_reports_it() -> None:
    question = "Who discovered penicillin?"
    budget = Budget(ratio=2)
    guarded = AbstractiveCompressor(LEAD, tokenizer="words")
    result = guarded.compress(question, DOCUMENTS, budget)
    check_result(guarded, result, DOCUMENTS, budget)
    assert "Alexander Fleming" in result.text() and "999" not in result.text()
    counts = result.info["guard"]
    # Nothing in the source is like the invented sentence: dropped, not replaced.
    assert counts == {"checked": counts_expected(result), "dropped": 1, "replaced": 0}
    assert INVENTED in result.info["summary"]  # the generator did invent it
    unguarded = AbstractiveCompressor(LEAD, tokenizer="words", guard=False)
    assert INVENTED in unguarded.compress(question, DOCUMENTS, budget).text()


def counts_expected(result: Any) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", result.info["summary"]))


def test_sentinel_answer_gives_an_empty_result() -> None:
    compressor = AbstractiveCompressor(LEAD, tokenizer="words")
    result = compressor.compress("What is the xyzzy of penicillin?", DOCUMENTS, 2)
    assert result.is_empty and result.info["augmented"] is False and result.info["sentinel"]
    assert list(result.dropped_ids) == [d.id for d in DOCUMENTS]


def test_min_relevance_skips_generation() -> None:
    compressor = AbstractiveCompressor(LEAD, tokenizer="words", min_relevance=0.99)
    lead = shared_generator(LEAD)
    calls = lead.calls
    result = compressor.compress("Who discovered penicillin?", DOCUMENTS, 2)
    assert result.is_empty and result.info["augmented"] is False
    assert 0.0 < result.info["relevance"] < 0.99 and lead.calls == calls


def test_summaries_are_cached_by_content() -> None:
    compressor = AbstractiveCompressor(LEAD, tokenizer="words")
    lead = shared_generator(LEAD)
    question = "When did Gutenberg build his printing press?"
    first = compressor.compress(question, DOCUMENTS, Budget(ratio=3))
    calls = lead.calls
    again = compressor.compress(question, list(reversed(DOCUMENTS)), Budget(ratio=3.1))
    assert again.info["cached"] is True and lead.calls == calls
    assert sorted(d.text for d in again.documents) == sorted(d.text for d in first.documents)
    compressor.compress("Who built a printing press?", DOCUMENTS, Budget(ratio=3))
    assert lead.calls == calls + 1  # another query is another summary


# -- the real generator ----------------------------------------------------------------------
NOTE = [
    "The city council met on Tuesday. The council approved the new park budget of 2 million "
    "dollars by a vote of 7 to 2. Construction will start in May.",
    "The library will close for renovation in June.",
]
QUESTION = "What did the council decide about the park budget?"
SMOLLM = {"type": "transformers", "params": {"model": "smollm2-135m"}}


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text))


def test_guard_removes_a_fact_smollm2_makes_up() -> None:
    budget = Budget(ratio=2)
    on = AbstractiveCompressor(SMOLLM, tokenizer="words", max_summary_words=16)
    off = AbstractiveCompressor(SMOLLM, tokenizer="words", max_summary_words=16, guard=False)
    unguarded = off.compress(QUESTION, NOTE, budget)
    guarded = on.compress(QUESTION, NOTE, budget)  # the same summary, from the cache
    check_result(on, guarded, [d for d in guarded_inputs()], budget)
    source_numbers = numbers(" ".join(NOTE))
    # Greedy SmolLM2-135M writes a budget the note never states (e.g. "$2.5 million").
    invented = numbers(unguarded.text()) - source_numbers
    assert invented, f"SmolLM2 stayed faithful this time: {unguarded.text()!r}"
    assert guarded.info["cached"] is True
    assert numbers(guarded.text()) <= source_numbers, guarded.text()
    counts = guarded.info["guard"]
    assert counts["checked"] >= 1 and counts["replaced"] + counts["dropped"] >= 1
    assert "approved" in guarded.text()


def guarded_inputs() -> list[Any]:
    from ragzip.types import as_documents

    return as_documents(NOTE)


def test_runs_against_an_openai_compatible_server_on_loopback() -> None:
    local = shared_generator(SMOLLM)
    with running_server(local, model_name="smollm2-135m") as base_url:
        spec = {"type": "openai", "params": {"base_url": base_url, "model": "smollm2-135m"}}
        compressor = AbstractiveCompressor(spec, tokenizer="words", max_summary_words=12)
        budget = Budget(ratio=2)
        result = compressor.compress(QUESTION, NOTE, budget)
    check_result(compressor, result, guarded_inputs(), budget)
    assert result.info["cached"] is False and result.info["summary"]
    assert result.info["augmented"] is True and result.documents
    assert numbers(result.text()) <= numbers(" ".join(NOTE))
    assert compressor.to_dict()["params"]["generator"]["type"] == "openai"


def test_a_local_seq2seq_model_writes_summaries(tmp_path: Path) -> None:
    """A tiny randomly initialised T5 (saved locally) runs the seq2seq path end to end."""
    transformers = pytest.importorskip("transformers")
    from ragzip.generators.seq2seq import Seq2SeqGenerator
    from ragzip.models import resolve_model

    tokenizer = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2-135m").path)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = transformers.T5Config(
        vocab_size=len(tokenizer), d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
        pad_token_id=pad, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=pad,
    )  # fmt: skip
    transformers.T5ForConditionalGeneration(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generator = Seq2SeqGenerator(str(tmp_path))
    texts = generator.generate_batch(
        ["Summarize: a short one.", "A longer prompt " * 5], max_tokens=6
    )
    assert len(texts) == 2 and all(isinstance(t.text, str) for t in texts)
    spec = {"type": "transformers-seq2seq", "params": {"model": str(tmp_path)}}
    compressor = AbstractiveCompressor(spec, tokenizer="words", max_summary_words=12)
    budget = Budget(ratio=2)
    result = compressor.compress("Who discovered penicillin?", DOCUMENTS, budget)
    check_result(compressor, result, DOCUMENTS, budget)
    assert "guard" in result.info or result.info.get("sentinel")


@generators.register("test-copy")
class CopyGenerator(LeadGenerator):
    """A faithful teacher: the first two facts of the prompt, verbatim."""

    name = "test-copy"

    def _generate(self, request: GenerationRequest) -> Generation:
        facts = re.findall(r"^- (.+)$", request.messages[-1]["content"], flags=re.MULTILINE)
        return Generation(" ".join(facts[:2]), "test-copy", None, None, "stop", 0.0)


def test_distillation_keeps_faithful_helpful_pairs_and_trains_a_student(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from ragzip.models import resolve_model
    from ragzip.training.distill import build_examples, train_student

    docs = [d.to_dict() for d in DOCUMENTS]
    records = [
        {"question": "Who discovered penicillin?", "documents": docs, "answers": ["Fleming"]},
        {"question": "Who discovered penicillin?", "documents": docs, "answers": ["Newton"]},
    ]
    params = {"tokenizer": "words"}
    examples, counts = build_examples(
        records, {"type": "test-copy"}, ratio=4, compressor_params=params
    )
    assert [e.reason for e in examples] == ["faithful", "sentinel"], counts
    assert "Fleming" in examples[0].summary and examples[1].summary == "NONE"
    _, lead_counts = build_examples(records[:1], LEAD, ratio=4, compressor_params=params)
    assert lead_counts["unfaithful"] == 1  # the invented fact disqualifies the teacher's pair

    tokenizer = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2-135m").path)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
    )  # fmt: skip
    student_dir = tmp_path / "student"
    transformers.LlamaForCausalLM(config).save_pretrained(student_dir)
    tokenizer.save_pretrained(student_dir)
    stats = train_student(examples, tmp_path / "trained", student=str(student_dir), batch_size=2)
    assert stats["steps"] == 1 and stats["loss"] > 0
    assert (tmp_path / "trained" / "config.json").is_file()


def test_fill_spends_the_unused_budget_on_source_sentences() -> None:
    budget = Budget(ratio=2)
    plain = AbstractiveCompressor(LEAD, tokenizer="words")
    filled = AbstractiveCompressor(LEAD, tokenizer="words", fill=True)
    question = "Who discovered penicillin?"
    a, b = plain.compress(question, DOCUMENTS, budget), filled.compress(question, DOCUMENTS, budget)
    check_result(filled, b, DOCUMENTS, budget)
    assert b.tokens_after > a.tokens_after and b.info["sentences_filled"] > 0
    assert "999" not in b.text()  # filling adds source sentences only
