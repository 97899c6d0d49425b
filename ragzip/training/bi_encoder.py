"""Contrastive fine-tuning of the sentence bi-encoder: ``ragzip train`` (the default kind).

The extractive compressor ranks sentences by the cosine of the question and ``title:
sentence`` vectors. Here the packaged all-MiniLM-L6-v2 learns that ranking from answers: for
each question (:mod:`.relevance_labels`), a sentence of its relevant passage that holds an
answer is the positive; the other sentences of that passage and the sentences of the
lexically closest other passages are hard negatives; every other question's sentences in the
batch are negatives too (InfoNCE over the batch, MultipleNegativesRanking-style). LoRA adapters
(peft) on the encoder's projections are trained; the last ``val_share`` of the records is
held out and reported on after every epoch (answer-sentence top-1 among each question's
candidates). ``OUT`` gets the adapters (``adapter_model.safetensors``), peft's
``adapter_config.json``, ``relevance_config.json`` (``kind: bi-encoder``) and the report
``ragzip_train.json``; :class:`~ragzip.encoders.bi_encoder.BiEncoder` loads the folder by
path (or the shipped ``ragzip-relevance`` by name) and merges the adapters.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragzip._optional import require
from ragzip.encoders.relevance import RELEVANCE_CONFIG
from ragzip.errors import ConfigError
from ragzip.lora import ADAPTER_WEIGHTS
from ragzip.models import resolve_model
from ragzip.text import segment, term_overlap
from ragzip.training.common import (
    apply_step,
    hardware,
    load_state,
    save_lora,
    save_state,
    warmup_linear,
    with_lora,
)
from ragzip.training.corpus import parse_records
from ragzip.training.relevance_labels import Group, Labeled, load_groups

__all__ = ["BiEncoderTrainConfig", "train_bi_encoder"]


@dataclass(frozen=True)
class BiEncoderTrainConfig:
    """Settings of one ``ragzip train --kind bi-encoder`` run.

    Raises:
        ConfigError: An invalid record range or setting.
    """

    out: str
    data: tuple[str, ...]
    records: str | None = None
    work: str | None = None
    base: str = "minilm"
    hard_negatives: int = 7  # sentences per question besides its positive
    negative_passages: int = 2  # lexically closest other passages giving negatives
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    epochs: int = 3
    batch_questions: int = 16
    learning_rate: float = 5e-4
    scale: float = 20.0  # inverse temperature of the contrastive loss
    max_length: int = 128
    sentence_words: int = 60  # as the extractive compressor cuts sentences
    val_share: float = 0.1
    max_records: int | None = None
    max_steps: int | None = None
    seed: int = 0
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        parse_records(self.records)
        if not self.data:
            raise ConfigError("no training data: pass at least one JSONL file (--data)")
        if self.hard_negatives < 0 or self.negative_passages < 0:
            raise ConfigError("hard_negatives and negative_passages must be >= 0")
        if not 0.0 < self.val_share < 0.9:
            raise ConfigError(f"val_share must be in (0, 0.9), got {self.val_share}")
        if self.lora_rank < 1 or self.epochs < 1 or self.batch_questions < 2:
            raise ConfigError("lora_rank and epochs must be >= 1, batch_questions >= 2")


@dataclass(frozen=True)
class _Item:
    """One question: its answer-bearing sentences and its hard negatives (``title: s``)."""

    question: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


def _sentences(p: Labeled, words: int) -> list[tuple[str, bool]]:
    """``title: sentence`` of every sentence with whether it holds an answer."""
    out = []
    for span in segment(p.text, words):
        text = p.text[span.start : span.end]
        holds = any(a < span.end and b > span.start for a, b in p.sentences)
        out.append((f"{p.title}: {text}" if p.title else text, holds))
    return out


def _items(groups: Sequence[Group], config: BiEncoderTrainConfig) -> list[_Item]:
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
        items.append(_Item(g.question, positives, tuple(pool[: config.hard_negatives])))
    return items


def _embed(torch: Any, tokenizer: Any, model: Any, texts: Sequence[str], length: int) -> Any:
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=length, return_tensors="pt"
    )
    states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _step_loss(
    torch: Any,
    tokenizer: Any,
    model: Any,
    batch: Sequence[_Item],
    config: BiEncoderTrainConfig,
    rng: np.random.Generator,
) -> Any:
    queries = _embed(torch, tokenizer, model, [it.question for it in batch], config.max_length)
    texts: list[str] = []
    targets: list[int] = []
    for it in batch:
        targets.append(len(texts))
        texts.append(it.positives[int(rng.integers(len(it.positives)))])
        texts.extend(it.negatives)
    candidates = _embed(torch, tokenizer, model, texts, config.max_length)
    logits = config.scale * queries @ candidates.T
    return torch.nn.functional.cross_entropy(logits, torch.tensor(targets))


def evaluate(
    torch: Any, tokenizer: Any, model: Any, items: Sequence[_Item], length: int
) -> dict[str, float]:
    """Share of held-out questions whose best-scored candidate holds an answer."""
    model.eval()
    hits = 0
    with torch.inference_mode():
        for it in items:
            q = _embed(torch, tokenizer, model, [it.question], length)
            c = _embed(torch, tokenizer, model, [*it.positives, *it.negatives], length)
            hits += int(int((c @ q[0]).argmax()) < len(it.positives))
    model.train()
    return {"sentence_top1": hits / max(1, len(items)), "questions": float(len(items))}


def _lora_model(config: BiEncoderTrainConfig) -> tuple[Any, Any]:
    torch = require("torch", "training the bi-encoder")
    transformers = require("transformers", "training the bi-encoder")
    path = resolve_model(config.base).path
    model = transformers.AutoModel.from_pretrained(
        path, dtype=torch.float32, add_pooling_layer=False
    )
    return transformers.AutoTokenizer.from_pretrained(path), with_lora(model, config)


def train_bi_encoder(config: BiEncoderTrainConfig) -> dict[str, Any]:
    """Fine-tunes the sentence bi-encoder and saves its adapters to ``config.out``.

    Returns:
        The report also written to ``OUT/ragzip_train.json``.

    Raises:
        ConfigError: Fewer than 4 usable questions (relevant passage holding an answer).
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    torch = require("torch", "training the bi-encoder")
    out = Path(config.out)
    work = Path(config.work) if config.work else out
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    groups, skipped = load_groups(config.data, config.records)
    items = _items(groups[: config.max_records], config)
    if len(items) < 4:
        raise ConfigError(
            f"the data gave {len(items)} usable question(s) ({skipped} records skipped, the "
            "rest without an answer in their relevant passage); at least 4 are needed"
        )
    n_val = max(1, round(config.val_share * len(items)))
    train, val = items[:-n_val], items[-n_val:]
    tokenizer, model = _lora_model(config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / config.batch_questions)
    total = max(1, steps_per_epoch * config.epochs)
    scheduler = warmup_linear(torch, optimizer, total)
    state_path = work / "train_state.pt"
    start, step, history = 0, 0, []
    if config.resume and state_path.is_file():
        state = load_state(torch, state_path, model, optimizer, scheduler)
        start, step, history = state["epoch"], state["step"], state["history"]
    before = evaluate(torch, tokenizer, model, val, config.max_length) if start == 0 else None
    model.train()
    for epoch in range(start, config.epochs):
        if config.max_steps is not None and step >= config.max_steps:
            break
        rng = np.random.default_rng(config.seed + 1 + epoch)
        order = rng.permutation(len(train)).tolist()
        losses: list[float] = []
        bar = tqdm(
            range(0, len(order), config.batch_questions),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not config.progress,
        )
        with torch.random.fork_rng():
            torch.manual_seed(config.seed + 1000 + epoch)
            for b in bar:
                batch = [train[i] for i in order[b : b + config.batch_questions]]
                if len(batch) < 2:
                    continue
                loss = _step_loss(torch, tokenizer, model, batch, config, rng)
                losses.append(apply_step(torch, loss, params, optimizer, scheduler))
                step += 1
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
                if config.max_steps is not None and step >= config.max_steps:
                    break
        metrics = evaluate(torch, tokenizer, model, val, config.max_length)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None})
        history[-1].update({f"val_{k}": v for k, v in metrics.items()})
        progress = {"epoch": epoch + 1, "step": step, "history": history}
        save_state(torch, state_path, model, optimizer, scheduler, progress)
    final = evaluate(torch, tokenizer, model, val, config.max_length)
    save_lora(model, out, config.base)
    info = {"kind": "bi-encoder", "base": config.base, "inputs": "question | title: sentence"}
    (out / RELEVANCE_CONFIG).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    report = {
        "config": asdict(config),
        "records": len(groups),
        "skipped_records": skipped,
        "train_questions": len(train),
        "val_questions": len(val),
        "trainable_parameters": sum(p.numel() for p in params),
        "artifact_bytes": (out / ADAPTER_WEIGHTS).stat().st_size,
        "val_before": before,
        "val": final,
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "hardware": hardware(torch),
    }
    (out / "ragzip_train.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
