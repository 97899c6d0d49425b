"""Word-level semantics of the token pruner (no model): chunking, aggregation, selection."""

from __future__ import annotations

import numpy as np
import pytest

from ragzip.compressors.registry import compressors
from ragzip.compressors.token_prune.compressor import TokenPruneCompressor, _to_source, word_costs
from ragzip.compressors.token_prune.defaults import PUBLISHED, resolve_pruner
from ragzip.compressors.token_prune.words import (
    Words,
    chunk_bounds,
    drop_repeats,
    forced_by_strings,
    group_words,
    join_kept,
    llmlingua_keep,
    select_within,
)
from ragzip.errors import ConfigError
from ragzip.tokens import get_counter


def words_of(text: str, probs: list[float]) -> Words:
    import re

    spans = [m.span() for m in re.finditer(r"\S+", text)]
    return Words(
        np.array([a for a, _ in spans]),
        np.array([b for _, b in spans]),
        np.array(probs, dtype=float),
        np.zeros(len(spans), dtype=bool),
    )


def test_chunks_end_at_sentence_ends_and_fit() -> None:
    end = np.zeros(25, dtype=bool)
    end[[3, 8, 17]] = True
    bounds = chunk_bounds(end, 10)
    assert bounds == [(0, 9), (9, 18), (18, 25)]
    assert all(b - a <= 10 for a, b in bounds)


def test_chunks_without_sentence_ends_are_cut_at_the_limit() -> None:
    assert chunk_bounds(np.zeros(7, dtype=bool), 3) == [(0, 3), (3, 6), (6, 7)]
    assert chunk_bounds(np.zeros(0, dtype=bool), 3) == []
    with pytest.raises(ValueError):
        chunk_bounds(np.zeros(3, dtype=bool), 0)


def test_subword_probabilities_are_averaged_per_word() -> None:
    # "play ##ing fast" -> words "playing" (0.2, 0.6) and "fast" (0.9)
    begins = np.array([True, False, True])
    probs = np.array([0.2, 0.6, 0.9])
    starts, ends = np.array([0, 4, 8]), np.array([4, 7, 12])
    words = group_words(begins, probs, starts, ends)
    assert words.probs.tolist() == pytest.approx([0.4, 0.9])
    assert words.starts.tolist() == [0, 8] and words.ends.tolist() == [7, 12]
    first = group_words(begins, probs, starts, ends, mode="first")
    assert first.probs.tolist() == pytest.approx([0.2, 0.9])
    forced = group_words(begins, probs, starts, ends, np.array([False, True, False]))
    assert forced.probs.tolist() == pytest.approx([0.6, 0.9])  # a digit token counts as 1.0
    with pytest.raises(ValueError):
        group_words(begins, probs, starts, ends, mode="max")


def test_llmlingua_percentile_rule() -> None:
    probs = np.array([0.1, 0.9, 0.5, 0.7])
    keep = llmlingua_keep(probs, np.ones(4), reduce_rate=0.5)
    assert keep.tolist() == [False, True, False, True]
    assert llmlingua_keep(probs, np.ones(4), 0.0).all()
    ones = llmlingua_keep(np.array([1.0, 1.0, 0.2]), np.ones(3), 0.9)
    assert ones.tolist() == [True, True, False]  # threshold 1.0 keeps words at 1.0


def test_select_within_takes_best_words_that_fit_forced_first() -> None:
    probs = np.array([0.9, 0.1, 0.8, 0.7])
    costs = np.array([1.0, 1.0, 2.0, 1.0])
    assert select_within(probs, costs, 2, None).tolist() == [True, False, False, True]
    forced = np.array([False, True, False, False])
    assert select_within(probs, costs, 2, forced).tolist() == [True, True, False, False]
    assert not select_within(probs, costs, 0, None).any()


def test_forced_strings_and_patterns_mark_overlapping_words() -> None:
    text = "Call 555-1234 before Friday noon."
    words = words_of(text, [0.0] * 5)
    forced = forced_by_strings(text, words, ["Friday"], [r"\d{3}-\d{4}"])
    assert forced.tolist() == [False, True, False, True, False]
    assert not forced_by_strings(text, words).any()


def test_join_keeps_runs_verbatim_and_newlines() -> None:
    text = "Alpha beta,  gamma\ndelta epsilon"
    words = words_of(text, [1, 1, 1, 0, 1])
    out, spans = join_kept(text, words, np.array([True, True, False, False, True]))
    assert out == "Alpha beta,\nepsilon"  # the dropped text held a newline
    assert [text[a:b] for a, b in spans] == ["Alpha beta,", "epsilon"]
    out, _ = join_kept(text, words, np.array([True, False, True, False, True]))
    assert out == "Alpha gamma\nepsilon"
    # words of different groups (selected sentences) never share a run
    out, spans = join_kept(text, words, np.ones(5, bool), np.array([0, 0, 1, 1, 1]))
    assert len(spans) == 2
    assert join_kept(text, words, np.zeros(5, bool)) == ("", [])


def test_drop_repeats_removes_consecutive_force_tokens() -> None:
    keep = np.array([True, True, True, False, True])
    texts = ["a", "\n", "\n", "b", "\n"]
    # the last one follows the kept "\n" with nothing kept in between: dropped too
    assert drop_repeats(keep, texts, ["\n"]).tolist() == [True, True, False, False, False]
    keep = np.array([True, True, True, True, True])
    assert drop_repeats(keep, texts, ["\n"]).tolist() == [True, True, False, True, True]


def test_body_offsets_map_back_to_the_source() -> None:
    source = "One. Two three. Four."
    pieces = [(0, 4), (16, 21)]  # "One." and "Four."
    body = "One. Four."
    words = words_of(body, [0.5, 0.5])
    mapped, group = _to_source(words, pieces)
    assert [source[a:b] for a, b in zip(mapped.starts, mapped.ends, strict=True)] == [
        "One.",
        "Four.",
    ]
    assert group.tolist() == [0, 1]


def test_word_costs_count_each_word() -> None:
    costs = word_costs(get_counter("words"), ["a", "b", "a"])
    assert costs.tolist() == [1.0, 1.0, 1.0]


def test_registered_and_validates_options() -> None:
    assert "token-prune" in compressors.names()
    assert compressors.get("token-prune") is TokenPruneCompressor
    for bad in ({"mode": "magic"}, {"allocation": "x"}, {"backend": "y"}, {"dtype": "fp8"}):
        with pytest.raises(ConfigError):
            TokenPruneCompressor("some/path", **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TokenPruneCompressor("some/path", coarse_factor=0.5)
    spec = TokenPruneCompressor("some/path", force_tokens=["\n"]).to_dict()
    assert spec["params"]["force_tokens"] == ["\n"]
    assert compressors.build(spec).to_dict() == spec  # constructing loads nothing


def test_published_names_resolve_to_hub_ids() -> None:
    assert resolve_pruner("llmlingua2-xlmr") == PUBLISHED["llmlingua2-xlmr"]
    assert resolve_pruner("microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank") == (
        "microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank"
    )


# -- training data -----------------------------------------------------------------------------
def test_align_extractive_marks_kept_original_words_in_order() -> None:
    from ragzip.training.teachers import align_extractive

    original = ["The", "tower", "is", "330", "metres", "tall", "."]
    keep = align_extractive(original, ["tower", "330", "Metres", "tall", "invented"])
    assert keep.tolist() == [False, True, False, True, True, True, False]
    assert not align_extractive(original, []).any()


def test_llm_teacher_labels_what_the_model_kept_and_answers() -> None:
    from ragzip.training.teachers import LLMTeacher, Passage

    prompts: list[str] = []

    def fake_llm(prompt: str) -> str:
        prompts.append(prompt)
        return "Fleming discovered penicillin 1928"

    text = "Alexander Fleming discovered penicillin in 1928 in London."
    words = words_of(text, [0.0] * 8)
    passage = Passage(text, question="Who discovered penicillin?", answers=("in London",))
    labels = LLMTeacher(fake_llm, keep_rate=0.4).label(passage, words.starts, words.ends)
    assert labels.tolist() == [False, True, True, True, False, True, True, True]
    assert "40%" in prompts[0] and "Who discovered penicillin?" in prompts[0]


def test_load_passages_reads_corpus_formats(tmp_path: pytest.TempPathFactory) -> None:
    import gzip
    import json
    from pathlib import Path

    from ragzip.training.pruner import load_passages

    folder = Path(str(tmp_path))
    jsonl = folder / "c.jsonl"
    jsonl.write_text(json.dumps({"text": "one two three four five", "title": "T"}) + "\n")
    nq = folder / "q.jsonl.gz"
    record = {
        "question": "q?",
        "answers": ["three"],
        "documents": [{"title": "D", "text": "three x"}],
    }
    with gzip.open(nq, "wt") as f:
        f.write(json.dumps(record) + "\n")
    text = folder / "t.txt"
    text.write_text("para one\n\npara two")
    passages = load_passages([jsonl, nq, text], passage_words=3)
    assert [p.text for p in passages] == [
        "one two three",
        "four five",
        "three x",
        "para one",
        "para two",
    ]
    assert passages[2].question == "q?" and passages[2].answers == ("three",)
    assert len(load_passages()) >= 10  # the bundled demo corpus


def test_load_passages_takes_a_record_range_and_the_gold_documents(
    tmp_path: pytest.TempPathFactory,
) -> None:
    import json
    from pathlib import Path

    from ragzip.training.pruner import load_passages

    nq = Path(str(tmp_path)) / "nq.jsonl"
    rows = [
        {
            "id": i,
            "question": f"q{i}?",
            "answers": [f"gold{i}"],
            "documents": [{"title": "x", "text": f"other {i}"}, {"title": "g", "text": f"gold{i}"}],
            "gold_index": 1,
        }
        for i in range(5)
    ]
    nq.write_text("\n".join(json.dumps(r) for r in rows))
    gold = load_passages([nq], records="1:3", documents="gold")
    assert [(p.text, p.question, p.answers) for p in gold] == [
        ("gold1", "q1?", ("gold1",)),
        ("gold2", "q2?", ("gold2",)),
    ]
    assert [p.text for p in load_passages([nq], records="3:")] == [
        "other 3",
        "gold3",
        "other 4",
        "gold4",
    ]


@pytest.mark.parametrize("spec", ["200", "a:b", "5:5", "9:3", "-1:4"])
def test_bad_record_ranges_say_how_to_write_one(spec: str) -> None:
    from ragzip.training.pruner import TrainConfig, parse_records

    with pytest.raises(ConfigError, match="START:STOP"):
        parse_records(spec)
    with pytest.raises(ConfigError):
        TrainConfig(out="x", records=spec)
    assert parse_records("200:1000") == slice(200, 1000)
    assert parse_records(":200") == slice(0, 200)


def test_train_config_rejects_unknown_modes_and_teachers() -> None:
    from ragzip.training.pruner import TrainConfig

    for bad in ({"mode": "qlora"}, {"teacher": "oracle"}, {"documents": "some"}):
        with pytest.raises(ConfigError):
            TrainConfig(out="x", **bad)  # type: ignore[arg-type]
    assert TrainConfig(out="x").lr == 1e-3 and TrainConfig(out="x", mode="full").lr == 1e-4


def test_unigram_teacher_keeps_rare_words_and_answers() -> None:
    from ragzip.training.teachers import Passage, UnigramTeacher

    corpus = ["the cat sat on the mat", "the dog and the cat", "the end of the story"]
    teacher = UnigramTeacher(corpus, keep_rate=0.4)
    assert teacher.information("zebra") > teacher.information("cat") > teacher.information("The")
    assert teacher.information(",") == 0.0
    text = "the cat met the zebra on the mat ."
    words = words_of(text, [0.0] * 9)
    labels = teacher.label(Passage(text, answers=("on",)), words.starts, words.ends)
    kept = [w for w, k in zip(text.split(), labels.tolist(), strict=True) if k]
    assert "zebra" in kept and "on" in kept and "the" not in kept and "." not in kept


def test_default_pruner_resolves_to_the_packaged_adapters() -> None:
    from pathlib import Path

    from ragzip.compressors.token_prune.defaults import DEFAULT_PRUNER

    folder = Path(resolve_pruner(DEFAULT_PRUNER))
    assert folder.parts[-3:] == ("data", "models", "minilm-pruner")
    assert (folder / "adapter_model.safetensors").is_file()
