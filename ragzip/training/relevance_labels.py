"""Labels of the relevance-and-pruning model, derived from answers.

For every passage: the character spans of each answer occurrence (matched word by word after
the normalisation the nq20 scorer uses: lower case, no punctuation, no articles), and the
sentences (:func:`ragzip.text.segment`, as the extractive compressor cuts them) that hold one.
A token's ``keep`` label is 1 inside such a sentence, its ``answer`` label 1 inside an answer.

Records (JSONL, plain or gzip): ``{"question", "answers", "documents": [{"title"?, "text",
"relevant"?}], "gold_index"?}``. The relevant passage is the ``gold_index`` one, else the
first marked ``"relevant": true``, else the first holding an answer; a record without one,
without another passage, or with a passage without text is skipped and counted.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragzip.errors import ConfigError
from ragzip.files import open_text
from ragzip.text import segment
from ragzip.training.corpus import parse_records

__all__ = ["Group", "Labeled", "answer_spans", "label_passage", "load_groups", "token_labels"]

_WORD = re.compile(r"\S+")
_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = frozenset({"a", "an", "the"})


@dataclass(frozen=True)
class Labeled:
    """A passage with its answer spans and answer-bearing sentence spans (characters)."""

    title: str
    text: str
    answers: tuple[tuple[int, int], ...]
    sentences: tuple[tuple[int, int], ...]

    def __iter__(self) -> Iterator[Any]:  # (title, text, self): unpacking in the trainer
        return iter((self.title, self.text, self))


@dataclass(frozen=True)
class Group:
    """One record: its question, the relevant passage and the others."""

    question: str
    positive: Labeled
    negatives: list[Labeled]


def _norm_words(text: str) -> list[tuple[str, int, int]]:
    """Normalised words with their character spans; articles and punctuation-only words go."""
    out = []
    for m in _WORD.finditer(text):
        for part in m.group().lower().translate(_PUNCT).split():
            if part not in _ARTICLES:
                out.append((part, m.start(), m.end()))
    return out


def answer_spans(text: str, answers: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of every occurrence of any answer in ``text`` (normalised match)."""
    words = _norm_words(text)
    tokens = [w for w, _, _ in words]
    spans = []
    for answer in answers:
        target = [w for w, _, _ in _norm_words(answer)]
        if not target:
            continue
        n = len(target)
        for i in range(len(tokens) - n + 1):
            if tokens[i : i + n] == target:
                spans.append((words[i][1], words[i + n - 1][2]))
    return sorted(set(spans))


def label_passage(title: str, text: str, answers: Sequence[str]) -> Labeled:
    """The passage with its answer spans and the sentences holding them."""
    found = answer_spans(text, answers)
    sentences = tuple(
        (s.start, s.end)
        for s in segment(text, 60)
        if any(a < s.end and b > s.start for a, b in found)
    )
    return Labeled(title, text, tuple(found), sentences)


def token_labels(text: str, passage: Labeled, offsets: np.ndarray) -> np.ndarray:
    """``(n, 2)`` labels (keep, answer) of tokens with character ``offsets`` in ``text``."""
    del text  # offsets index it; kept for readability at call sites
    labels = np.zeros((offsets.shape[0], 2), dtype=np.float32)
    starts, ends = offsets[:, 0], offsets[:, 1]
    for channel, spans in enumerate((passage.sentences, passage.answers)):
        for a, b in spans:
            labels[(starts < b) & (ends > a) & (ends > starts), channel] = 1.0
    return labels


def _read(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"training data not found: {path}")
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{path}:{n} is not valid JSON ({exc.msg}); fix the line"
                ) from None
            if not isinstance(record, dict):
                raise ConfigError(f"{path}:{n} is not a JSON object")
            yield record


def _group(record: dict[str, Any]) -> Group | None:
    question = str(record.get("question", "")).strip()
    answers = [str(a) for a in record.get("answers", []) if str(a).strip()]
    docs = record.get("documents") or record.get("passages") or []
    if not question or not isinstance(docs, list) or len(docs) < 2:
        return None
    if not all(isinstance(d, dict) and str(d.get("text", "")).strip() for d in docs):
        return None  # a passage without text: the record is skipped and counted
    labeled = [label_passage(str(d.get("title", "")), str(d["text"]), answers) for d in docs]
    gold = record.get("gold_index")
    if not isinstance(gold, int) or not 0 <= gold < len(labeled):
        flags = [i for i, d in enumerate(docs) if d.get("relevant")]
        holding = [i for i, p in enumerate(labeled) if p.answers]
        candidates = flags or holding
        gold = candidates[0] if candidates else None
    if gold is None or len(labeled) < 2:
        return None
    return Group(question, labeled[gold], labeled[:gold] + labeled[gold + 1 :])


def load_groups(paths: Sequence[str], records: str | None = None) -> tuple[list[Group], int]:
    """Groups of every usable record in ``paths`` (``records`` range per file) and the count
    of skipped ones.

    Raises:
        ConfigError: A missing file or a line that is not a JSON object.
    """
    window = parse_records(records)
    groups: list[Group] = []
    skipped = 0
    for path in paths:
        for record in list(_read(Path(path)))[window]:
            group = _group(record)
            if group is None:
                skipped += 1
            else:
                groups.append(group)
    return groups, skipped
