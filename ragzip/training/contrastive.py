"""Contrastive LoRA tuning of a bi-encoder: the loop behind ``ragzip train`` (sentences) and
``ragzip train-code`` (functions).

Each :class:`Item` is a question with the texts that answer it (positives) and the texts it
must rank below them (hard negatives). A step embeds a batch of questions and, for each, one
positive and its negatives; every other question's texts in the batch are negatives too
(InfoNCE over the batch, MultipleNegativesRanking-style). LoRA adapters (peft) on the
encoder's projections are trained with mean pooling and cosine similarity, as the encoder is
used at run time. Held-out items are reported before training and after every epoch: top-1
(the best-scored candidate is a positive) and top-5. The run is seeded and resumable (state
saved every epoch); ``OUT`` gets the adapters, peft's ``adapter_config.json``,
``relevance_config.json`` (``kind: bi-encoder``, which
:class:`~ragzip.encoders.bi_encoder.BiEncoder` merges on load) and the report
``ragzip_train.json``.
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
from ragzip.training.common import (
    apply_step,
    hardware,
    load_state,
    save_lora,
    save_state,
    warmup_linear,
    with_lora,
)

__all__ = ["ContrastiveConfig", "Item", "evaluate", "fit_contrastive"]

REPORT = "ragzip_train.json"


@dataclass(frozen=True, kw_only=True)
class ContrastiveConfig:
    """The settings every contrastive recipe shares (LoRA, schedule, loss, run control).

    Raises:
        ConfigError: An invalid setting.
    """

    out: str
    work: str | None = None
    base: str = "minilm"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    epochs: int = 3
    batch_questions: int = 16
    learning_rate: float = 5e-4
    scale: float = 20.0  # inverse temperature of the contrastive loss
    max_length: int = 128
    val_share: float = 0.1
    max_steps: int | None = None
    seed: int = 0
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.val_share < 0.9:
            raise ConfigError(f"val_share must be in (0, 0.9), got {self.val_share}")
        if self.lora_rank < 1 or self.epochs < 1 or self.batch_questions < 2:
            raise ConfigError("lora_rank and epochs must be >= 1, batch_questions >= 2")
        if self.max_length < 8:
            raise ConfigError(f"max_length must be >= 8 tokens, got {self.max_length}")


@dataclass(frozen=True)
class Item:
    """One question: the texts that answer it and the ones it must rank below them."""

    question: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


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
    batch: Sequence[Item],
    config: ContrastiveConfig,
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
    torch: Any, tokenizer: Any, model: Any, items: Sequence[Item], length: int
) -> dict[str, float]:
    """Share of held-out questions whose best-scored candidate is a positive (``top1``), or
    one of the 5 best (``top5``)."""
    model.eval()
    top1 = top5 = 0
    with torch.inference_mode():
        for it in items:
            q = _embed(torch, tokenizer, model, [it.question], length)
            c = _embed(torch, tokenizer, model, [*it.positives, *it.negatives], length)
            order = torch.argsort(c @ q[0], descending=True).tolist()
            top1 += int(order[0] < len(it.positives))
            top5 += int(any(k < len(it.positives) for k in order[:5]))
    model.train()
    n = max(1, len(items))
    return {"top1": top1 / n, "top5": top5 / n, "questions": float(len(items))}


def _lora_encoder(config: ContrastiveConfig) -> tuple[Any, Any]:
    torch = require("torch", "training a bi-encoder")
    transformers = require("transformers", "training a bi-encoder")
    path = resolve_model(config.base).path
    model = transformers.AutoModel.from_pretrained(
        path, dtype=torch.float32, add_pooling_layer=False
    )
    return transformers.AutoTokenizer.from_pretrained(path), with_lora(model, config)


def fit_contrastive(
    config: ContrastiveConfig,
    train: Sequence[Item],
    val: Sequence[Item],
    info: dict[str, Any],
    report: dict[str, Any],
) -> dict[str, Any]:
    """Tunes ``config.base`` on ``train``, reports on ``val`` and saves to ``config.out``.

    Args:
        config: The run's settings.
        train: Training questions.
        val: Held-out questions.
        info: What ``relevance_config.json`` records besides ``kind`` and ``base`` (inputs).
        report: The recipe's own figures (data counts), merged into the report.

    Returns:
        The report also written to ``OUT/ragzip_train.json``.
    """
    from ragzip.progress import progress_bar

    started = time.perf_counter()
    torch = require("torch", "training a bi-encoder")
    out = Path(config.out)
    work = Path(config.work) if config.work else out
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer, model = _lora_encoder(config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / config.batch_questions)
    scheduler = warmup_linear(torch, optimizer, max(1, steps_per_epoch * config.epochs))
    state_path = work / "train_state.pt"
    start, step, history = 0, 0, []
    before = None
    if config.resume and state_path.is_file():
        state = load_state(torch, state_path, model, optimizer, scheduler)
        start, step, history = state["epoch"], state["step"], state["history"]
        before = state.get("before")
    if before is None:
        before = evaluate(torch, tokenizer, model, val, config.max_length)
    model.train()
    metrics: dict[str, float] | None = None
    for epoch in range(start, config.epochs):
        if config.max_steps is not None and step >= config.max_steps:
            break
        rng = np.random.default_rng(config.seed + 1 + epoch)
        order = rng.permutation(len(train)).tolist()
        losses: list[float] = []
        bar = progress_bar(
            range(0, len(order), config.batch_questions),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            enabled=config.progress,
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
        progress = {"epoch": epoch + 1, "step": step, "history": history, "before": before}
        save_state(torch, state_path, model, optimizer, scheduler, progress)
    final = metrics or evaluate(torch, tokenizer, model, val, config.max_length)
    save_lora(model, out, config.base)
    described = {"kind": "bi-encoder", "base": config.base, **info}
    (out / RELEVANCE_CONFIG).write_text(json.dumps(described, indent=2) + "\n", encoding="utf-8")
    full = {
        "config": asdict(config),
        **report,
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
    (out / REPORT).write_text(json.dumps(full, indent=2), encoding="utf-8")
    return full
