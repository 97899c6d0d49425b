"""Contrastive fine-tuning of the sentence bi-encoder: ``ragzip train`` (the default kind).

The extractive compressor ranks sentences by the cosine of the question and ``title:
sentence`` vectors. Here the packaged all-MiniLM-L6-v2 learns that ranking from answers: for
each question (:mod:`.relevance_labels`), a sentence of its relevant passage that holds an
answer is the positive; the other sentences of that passage and the sentences of the
lexically closest other passages are hard negatives; every other question's sentences in the
batch are negatives too (InfoNCE over the batch, MultipleNegativesRanking-style). LoRA adapters
(peft) on the encoder's projections are trained; the last ``val_share`` of the records is
held out and reported on after every epoch (answer-sentence top-1 among each question's
candidates). The loop and what ``OUT`` gets are :mod:`.contrastive`'s;
:class:`~ragzip.encoders.bi_encoder.BiEncoder` loads the folder by path (or the shipped
``ragzip-relevance`` by name) and merges the adapters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragzip.errors import ConfigError
from ragzip.text import segment, term_overlap
from ragzip.training.contrastive import ContrastiveConfig, Item, fit_contrastive
from ragzip.training.corpus import parse_records
from ragzip.training.relevance_labels import Group, Labeled, load_groups

__all__ = ["BiEncoderTrainConfig", "train_bi_encoder"]


@dataclass(frozen=True, kw_only=True)
class BiEncoderTrainConfig(ContrastiveConfig):
    """Settings of one ``ragzip train --kind bi-encoder`` run (LoRA and schedule:
    :class:`~ragzip.training.contrastive.ContrastiveConfig`).

    Raises:
        ConfigError: An invalid record range or setting.
    """

    data: tuple[str, ...]
    records: str | None = None
    hard_negatives: int = 7  # sentences per question besides its positive
    negative_passages: int = 2  # lexically closest other passages giving negatives
    sentence_words: int = 60  # as the extractive compressor cuts sentences
    max_records: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_records(self.records)
        if not self.data:
            raise ConfigError("no training data: pass at least one JSONL file (--data)")
        if self.hard_negatives < 0 or self.negative_passages < 0:
            raise ConfigError("hard_negatives and negative_passages must be >= 0")


def _sentences(p: Labeled, words: int) -> list[tuple[str, bool]]:
    """``title: sentence`` of every sentence with whether it holds an answer."""
    out = []
    for span in segment(p.text, words):
        text = p.text[span.start : span.end]
        holds = any(a < span.end and b > span.start for a, b in p.sentences)
        out.append((f"{p.title}: {text}" if p.title else text, holds))
    return out


def _items(groups: Sequence[Group], config: BiEncoderTrainConfig) -> list[Item]:
    items = []
    for g in groups:
        own = _sentences(g.positive, config.sentence_words)
        positives = tuple(s for s, holds in own if holds)
        if not positives:
            continue  # the relevant passage holds no answer: nothing to learn the ranking from
        pool = [s for s, holds in own if not holds]
        if g.negatives and config.negative_passages:
            close = term_overlap(g.question, [f"{p.title} {p.text}" for p in g.negatives])
            for k in np.argsort(-close, kind="stable")[: config.negative_passages].tolist():
                pool += [s for s, _ in _sentences(g.negatives[k], config.sentence_words)]
        if pool:
            closeness = term_overlap(g.question, pool)
            pool = [pool[k] for k in np.argsort(-closeness, kind="stable")]
        items.append(Item(g.question, positives, tuple(pool[: config.hard_negatives])))
    return items


def train_bi_encoder(config: BiEncoderTrainConfig) -> dict[str, Any]:
    """Fine-tunes the sentence bi-encoder and saves its adapters to ``config.out``.

    Returns:
        The report also written to ``OUT/ragzip_train.json`` (held-out ``top1``: the best
        sentence holds an answer).

    Raises:
        ConfigError: Fewer than 4 usable questions (relevant passage holding an answer).
    """
    groups, skipped = load_groups(config.data, config.records)
    items = _items(groups[: config.max_records], config)
    if len(items) < 4:
        raise ConfigError(
            f"the data gave {len(items)} usable question(s) ({skipped} records skipped, the "
            "rest without an answer in their relevant passage); at least 4 are needed"
        )
    n_val = max(1, round(config.val_share * len(items)))
    return fit_contrastive(
        config,
        items[:-n_val],
        items[-n_val:],
        {"inputs": "question | title: sentence"},
        {"records": len(groups), "skipped_records": skipped},
    )
