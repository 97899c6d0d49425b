"""Labels of the relevance-and-pruning model and its training data reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragzip.errors import ConfigError
from ragzip.training.relevance import RelevanceTrainConfig
from ragzip.training.relevance_labels import (
    answer_spans,
    label_passage,
    load_groups,
    token_labels,
)

TEXT = (
    "The song was recorded in London. It was written by the Beatles in 1963, "
    "and released as a single. Critics loved it."
)


def test_answer_spans_match_after_normalisation() -> None:
    # Articles, case and punctuation are ignored, as the nq20 scorer ignores them.
    spans = answer_spans(TEXT, ["The BEATLES"])
    assert [TEXT[a:b] for a, b in spans] == ["Beatles"]
    assert [TEXT[a:b] for a, b in answer_spans(TEXT, ["1963"])] == ["1963,"]
    assert answer_spans(TEXT, ["Rolling Stones", ""]) == []


def test_label_passage_marks_the_answer_sentence_only() -> None:
    labeled = label_passage("Song", TEXT, ["Beatles"])
    assert [TEXT[a:b] for a, b in labeled.sentences] == [
        "It was written by the Beatles in 1963, and released as a single."
    ]
    assert labeled.title == "Song" and labeled.text == TEXT


def test_token_labels_follow_character_offsets() -> None:
    labeled = label_passage("", TEXT, ["Beatles"])
    start = TEXT.index("Beatles")
    offsets = np.array([[0, 3], [start, start + 7], [TEXT.index("Critics"), len(TEXT)]])
    labels = token_labels(TEXT, labeled, offsets)
    assert labels.tolist() == [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]


def _write(path: Path, records: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_load_groups_finds_the_relevant_passage_three_ways(tmp_path: Path) -> None:
    docs = [{"title": "A", "text": "Nothing here."}, {"title": "B", "text": TEXT}]
    data = _write(
        tmp_path / "data.jsonl",
        [
            {"question": "q1", "answers": ["Beatles"], "documents": docs, "gold_index": 0},
            {
                "question": "q2",
                "answers": [],
                "documents": [docs[0], {**docs[1], "relevant": True}],
            },
            {"question": "q3", "answers": ["Beatles"], "documents": docs},
            {"question": "q4", "answers": ["nowhere"], "documents": docs},  # no relevant one
            {"question": "q5", "answers": ["Beatles"], "documents": docs[1:]},  # nothing else
        ],
    )
    groups, skipped = load_groups([str(data)])
    assert [g.question for g in groups] == ["q1", "q2", "q3"] and skipped == 2
    assert groups[0].positive.title == "A" and [n.title for n in groups[0].negatives] == ["B"]
    assert groups[1].positive.title == "B" and groups[2].positive.title == "B"
    assert [g.question for g in load_groups([str(data)], "1:2")[0]] == ["q2"]


def test_bad_training_data_gets_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2 is not valid JSON"):
        load_groups([str(bad)])
    with pytest.raises(ConfigError, match="not found"):
        load_groups([str(tmp_path / "missing.jsonl")])
    with pytest.raises(ConfigError, match="START:STOP"):
        RelevanceTrainConfig(out="x", data=("d",), records="oops")
    with pytest.raises(ConfigError, match="no training data"):
        RelevanceTrainConfig(out="x", data=())
    with pytest.raises(ConfigError, match="negatives"):
        RelevanceTrainConfig(out="x", data=("d",), negatives=1, hard_negatives=2)
