"""Code relevance learned from repositories: ``ragzip train-code --repo PATH --out DIR``.

Self-supervised: every documented function of the given git checkouts
(:mod:`.code_pairs`) is a question (its description) whose answer is the function without
that description, ranked against the other chunks of its file (hard negatives: the lexically
closest, as a needle search meets them; half of them with their own descriptions removed too,
so "has no docstring" never gives the answer away) and against every other question's texts
in the batch. The packaged MiniLM is tuned with LoRA by the contrastive loop of
:mod:`.contrastive`; chunks are read as the code compressor reads them (the name in words,
then the code). Whole files are held out (``val_share`` of each repository's files) and their
questions ranked among ``val_candidates`` chunks of their file: top-1 and top-5 are reported
before and after training. ``hold_out`` leaves named functions out altogether (as questions
and as negatives), for measuring on them afterwards (:mod:`.hold_out` reads a list or
code-needle tasks). ``OUT/data_card.json`` records each repository's origin, commit, license
and counts.

The code compressor loads the result by path (``CodeCompressor(encoder="DIR")``); the shipped
``ragzip-code`` was trained this way on public repositories (its model card says which).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragzip.compressors.code.chunking import name_words
from ragzip.errors import ConfigError
from ragzip.text import term_overlap
from ragzip.training.code_pairs import CodePair, MinedRepo, mine_repository
from ragzip.training.contrastive import ContrastiveConfig, Item, fit_contrastive
from ragzip.training.hold_out import HoldOut

__all__ = ["CodeTrainConfig", "describe", "mine_items", "train_code"]

DATA_CARD = "data_card.json"


@dataclass(frozen=True, kw_only=True)
class CodeTrainConfig(ContrastiveConfig):
    """Settings of one ``ragzip train-code`` run (LoRA and schedule:
    :class:`~ragzip.training.contrastive.ContrastiveConfig`).

    Raises:
        ConfigError: No repository, or an invalid setting.
    """

    repos: tuple[str, ...]
    epochs: int = 1
    hard_negatives: int = 2  # same-file chunks per question besides its function
    max_pairs_per_repo: int | None = 400  # sampled (seeded) so no repository dominates
    val_candidates: int = 15  # chunks of its file each held-out question is ranked among
    max_val_questions: int = 100
    max_bytes: int = 1_000_000
    include_tests: bool = False
    hold_out: tuple[str, ...] = ()  # NAME or PATH::NAME of functions never trained on

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.repos:
            raise ConfigError("no repository: pass at least one git checkout (--repo PATH)")
        if self.hard_negatives < 0 or self.val_candidates < 1 or self.max_val_questions < 1:
            raise ConfigError("hard_negatives must be >= 0, val_candidates and "
                              "max_val_questions >= 1")  # fmt: skip
        if self.max_pairs_per_repo is not None and self.max_pairs_per_repo < 1:
            raise ConfigError("max_pairs_per_repo must be >= 1 (or None for all)")


def _file_hash(repo: MinedRepo, path: str) -> int:
    """Stable across machines and clones: the repository's folder name and the file path."""
    return zlib.crc32(f"{Path(repo.path).name}\0{path}".encode()) % 10_000


def _item(
    pair: CodePair,
    repo: MinedRepo,
    negatives: int,
    rng: np.random.Generator,
    closest: bool,
    hold_out: HoldOut,
) -> Item:
    file = repo.files[pair.file]
    others = [
        k
        for k in range(len(file.texts))
        if k != pair.chunk and file.texts[k].strip()
        and not hold_out.matches(file.path, file.names[k])
    ]  # fmt: skip
    if closest:  # training: the hardest by words shared with the description
        overlap = term_overlap(pair.description, [file.texts[k] for k in others])
        others = [others[k] for k in np.argsort(-overlap, kind="stable")]
    else:  # held out: a random sample of the file, as a needle search meets it
        others = [others[k] for k in rng.permutation(len(others))]
    chosen = []
    for k in others[:negatives]:
        text = file.bare[k] if rng.random() < 0.5 else file.texts[k]
        chosen.append(name_words(file.names[k]) + text)
    return Item(pair.description, (name_words(pair.name) + pair.code,), tuple(chosen))


def mine_items(
    config: CodeTrainConfig,
) -> tuple[list[Item], list[Item], list[MinedRepo]]:
    """The training and held-out questions of ``config.repos`` and what was mined from each.

    Raises:
        ConfigError: A path is not a git checkout, or the repositories hold fewer than 8
            documented functions.
    """
    rng = np.random.default_rng(config.seed)
    hold_out = HoldOut.parse(config.hold_out)
    mined = [
        mine_repository(
            path,
            max_bytes=config.max_bytes,
            include_tests=config.include_tests,
            hold_out=hold_out,
        )
        for path in config.repos
    ]
    hashes = {(i, f.path): _file_hash(r, f.path) for i, r in enumerate(mined) for f in r.files}
    held = {key for key, h in hashes.items() if h < config.val_share * 10_000}
    if not held and len(hashes) > 1:  # small data: hold out one file at least
        held = {min(hashes, key=hashes.__getitem__)}
    train: list[Item] = []
    val: list[Item] = []
    for i, repo in enumerate(mined):
        pairs = repo.pairs
        if config.max_pairs_per_repo is not None and len(pairs) > config.max_pairs_per_repo:
            keep = np.sort(rng.choice(len(pairs), config.max_pairs_per_repo, replace=False))
            pairs = [pairs[k] for k in keep]
        for pair in pairs:
            if (i, pair.path) in held:
                val.append(_item(pair, repo, config.val_candidates, rng, False, hold_out))
            else:
                train.append(_item(pair, repo, config.hard_negatives, rng, True, hold_out))
    found = len(train) + len(val)
    if found < 8 or not train or not val:
        described = ", ".join(f"{r.path}: {len(r.pairs)}" for r in mined)
        raise ConfigError(
            f"the repositories gave {found} documented function(s) ({described}), "
            f"{len(train)} to train on and {len(val)} held out; at least 8, with both sides "
            "non-empty, are needed: add repositories, or lower --val-share for small ones"
        )
    if len(val) > config.max_val_questions:
        keep = np.sort(rng.choice(len(val), config.max_val_questions, replace=False))
        val = [val[k] for k in keep]
    order = rng.permutation(len(train))
    return [train[k] for k in order], val, mined


def train_code(config: CodeTrainConfig) -> dict[str, Any]:
    """Mines ``config.repos``, tunes the code bi-encoder and saves it to ``config.out``.

    Returns:
        The report also written to ``OUT/ragzip_train.json`` (held-out ``top1``/``top5``:
        the function ranked first / among the 5 best chunks of its file), with the data card.

    Raises:
        ConfigError: As :func:`mine_items`.
    """
    started = time.perf_counter()
    train, val, mined = mine_items(config)
    card = {
        "repositories": [r.card() for r in mined],
        "train_questions": len(train),
        "val_questions": len(val),
        "held_out": {"listed": len(config.hold_out), "found": sum(r.held_out for r in mined)},
        "mining_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DATA_CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return fit_contrastive(
        config,
        train,
        val,
        {"inputs": "description | name in words, newline, code", "task": "code"},
        {"data_card": card},
    )


def describe(report: dict[str, Any]) -> str:
    """One line of a report's held-out figures, for the CLI."""
    val, before = report["val"], report.get("val_before") or {}
    line = f"held-out functions ranked first {val['top1']:.3f}, in the top 5 {val['top5']:.3f}"
    if before:
        line += f" (base model {before['top1']:.3f} / {before['top5']:.3f})"
    return line
