"""Training ragzip's relevance-and-pruning model: ``ragzip train``.

1. Records are read from JSONL (plain or gzip): the nq20 format (``question``, ``answers``,
   ``documents: [{"title", "text"}]``, ``gold_index``) or the generic one, where each document
   may carry ``"relevant": true``; without either, a document is relevant when it holds an
   answer. ``records="200:1000"`` keeps a range of each file's records.
2. Labels come from the answers (:mod:`.relevance_labels`): the passage (relevant or not),
   each token's sentence (holds an answer or not) and each token itself (part of an answer).
3. Each record gives a group: one relevant passage and ``negatives`` others of the same
   record, the lexically closest first (hard negatives), then random ones.
4. The model (:func:`~ragzip.encoders.relevance.build_net`: the packaged all-MiniLM-L6-v2
   with a passage head and a 2-channel token head) is trained with LoRA adapters (peft) on a
   listwise loss over each group's passages plus binary cross-entropy on both token channels.
   The last ``val_share`` of the records is held out and reported on after every epoch
   (passage top-1 within the group, answer-sentence top-1). Training state is saved after
   every epoch and resumed.
5. ``OUT`` gets the adapters and heads (``adapter_model.safetensors``), peft's
   ``adapter_config.json``, ``relevance_config.json`` and the report ``ragzip_train.json``.

Everything is seeded without touching the global random generators.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragzip._optional import require
from ragzip.encoders.relevance import (
    CHANNELS,
    RELEVANCE_CONFIG,
    Window,
    build_net,
    collate,
    encode_windows,
)
from ragzip.errors import ConfigError
from ragzip.lora import ADAPTER_WEIGHTS
from ragzip.text import term_overlap
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
from ragzip.training.relevance_labels import Group, load_groups, token_labels

__all__ = ["RelevanceTrainConfig", "train_relevance"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelevanceTrainConfig:
    """Settings of one ``ragzip train`` run.

    Raises:
        ConfigError: An invalid record range or setting.
    """

    out: str
    data: tuple[str, ...]
    records: str | None = None
    work: str | None = None  # training state (default: OUT)
    base: str = "minilm"
    negatives: int = 3
    hard_negatives: int = 2  # of ``negatives``, the lexically closest; the rest random
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    lora_layers: int | None = 4  # adapt only the top N encoder layers (None: all)
    epochs: int = 2
    batch_groups: int = 4
    learning_rate: float = 1e-3
    max_length: int = 256
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
        if self.negatives < 1 or not 0 <= self.hard_negatives <= self.negatives:
            raise ConfigError("negatives must be >= 1 and hard_negatives within 0..negatives")
        if not 0.0 < self.val_share < 0.9:
            raise ConfigError(f"val_share must be in (0, 0.9), got {self.val_share}")
        if self.lora_rank < 1 or self.epochs < 1 or self.batch_groups < 1:
            raise ConfigError("lora_rank, epochs and batch_groups must be positive integers")


@dataclass(frozen=True)
class _Example:
    """One group, tokenized: the question, one window per passage (the relevant one first)
    and each window's token labels (``(n, 2)``: keep, answer) and label mask."""

    q_ids: list[int]
    rows: list[Window]
    labels: list[np.ndarray]
    masks: list[np.ndarray]


def _pick(group: Group, config: RelevanceTrainConfig, rng: np.random.Generator) -> Group:
    """The relevant passage and ``negatives`` others: the lexically closest, then random."""
    others = group.negatives
    if not others:
        return group
    closeness = term_overlap(group.question, [f"{t} {x}" for t, x, _ in others])
    hard = [int(i) for i in np.argsort(-closeness, kind="stable")[: config.hard_negatives]]
    rest = [i for i in range(len(others)) if i not in hard]
    rng.shuffle(rest)
    chosen = hard + rest[: config.negatives - len(hard)]
    return Group(group.question, group.positive, [others[i] for i in chosen])


def _examples(
    tokenizer: Any, groups: Sequence[Group], config: RelevanceTrainConfig
) -> list[_Example]:
    rng = np.random.default_rng(config.seed)
    out = []
    for group in groups:
        g = _pick(group, config, rng)
        passages = [g.positive, *g.negatives]
        titles = [t for t, _, _ in passages]
        texts = [x for _, x, _ in passages]
        q_ids, windows = encode_windows(tokenizer, g.question, texts, titles, config.max_length)
        first: dict[int, Window] = {}
        for w in windows:
            first.setdefault(w.passage, w)  # training reads each passage's first window
        rows = [first[p] for p in range(len(passages))]
        labels, masks = [], []
        for row, (_, text, spans) in zip(rows, passages, strict=True):
            lab = token_labels(text, spans, row.offsets)
            mask = np.zeros(row.ids.size, dtype=bool)
            mask[row.prefix_tokens :] = True
            labels.append(lab)
            masks.append(mask)
        out.append(_Example(q_ids, rows, labels, masks))
    return out


def _forward(
    torch: Any, tokenizer: Any, net: Any, batch: Sequence[_Example]
) -> tuple[Any, Any, Any, Any]:
    """One forward pass over every passage of ``batch``: passage logits ``(rows,)``, token
    logits ``(rows, width, 2)``, token labels and label mask, rows in group order."""
    parts = [collate(tokenizer, ex.q_ids, ex.rows) for ex in batch]
    width = max(p[0].shape[1] for p in parts)
    ids, mask, types = (
        np.concatenate([np.pad(p[k], ((0, 0), (0, width - p[k].shape[1]))) for p in parts])
        for k in range(3)
    )
    ids[mask == 0] = tokenizer.pad_token_id or 0
    passage, tokens = net(*[torch.from_numpy(x) for x in (ids, mask, types)])
    labels = np.zeros((ids.shape[0], width, len(CHANNELS)), dtype=np.float32)
    label_mask = np.zeros((ids.shape[0], width), dtype=bool)
    r = 0
    for ex in batch:
        head = len(ex.q_ids) + 2
        for lab, m in zip(ex.labels, ex.masks, strict=True):
            labels[r, head : head + lab.shape[0]] = lab
            label_mask[r, head : head + m.size] = m
            r += 1
    return passage, tokens, torch.from_numpy(labels), torch.from_numpy(label_mask)


def _loss(torch: Any, tokenizer: Any, net: Any, batch: Sequence[_Example]) -> Any:
    """Listwise cross-entropy over each group's passages (the relevant one is first) plus
    binary cross-entropy on both token channels."""
    functional = torch.nn.functional
    passage, tokens, labels, mask = _forward(torch, tokenizer, net, batch)
    listwise = 0.0
    r = 0
    for ex in batch:
        group = passage[r : r + len(ex.rows)].unsqueeze(0)
        listwise = listwise + functional.cross_entropy(group, torch.zeros(1, dtype=torch.long))
        r += len(ex.rows)
    token = functional.binary_cross_entropy_with_logits(tokens[mask], labels[mask])
    return listwise / len(batch) + len(CHANNELS) * token


def evaluate(
    torch: Any, tokenizer: Any, net: Any, examples: Sequence[_Example]
) -> dict[str, float]:
    """Passage top-1 within each group and answer-token top-1 (the most probable ``keep``
    token lies in an answer-bearing sentence) over groups whose relevant passage has one."""
    net.eval()
    passage_top1, sentence_top1, answerable = 0, 0, 0
    with torch.inference_mode():
        for ex in examples:
            passage, tokens, labels, mask = _forward(torch, tokenizer, net, [ex])
            passage_top1 += int(int(passage.argmax()) == 0)
            keep = labels[..., 0][mask]
            if float(keep.max() if keep.numel() else 0.0) > 0:
                answerable += 1
                scores = torch.sigmoid(tokens[..., 0])[mask]
                sentence_top1 += int(float(keep[int(scores.argmax())]) > 0)
    net.train()
    return {
        "passage_top1": passage_top1 / max(1, len(examples)),
        "keep_top1": sentence_top1 / max(1, answerable),
        "groups": float(len(examples)),
    }


def _lora_net(net: Any, config: RelevanceTrainConfig) -> Any:
    depth = int(net.encoder.config.num_hidden_layers)
    layers = None
    if config.lora_layers is not None and config.lora_layers < depth:
        layers = list(range(depth - config.lora_layers, depth))  # below them: no backward
    return with_lora(
        net,
        config,
        modules_to_save=["passage_head", "token_head"],
        layers_to_transform=layers,
        layers_pattern="layer" if layers else None,
    )


def _batches(
    items: Sequence[_Example], order: Sequence[int], size: int
) -> Iterator[list[_Example]]:
    for b in range(0, len(order), size):
        yield [items[i] for i in order[b : b + size]]


def _fit(
    torch: Any,
    tokenizer: Any,
    net: Any,
    train: Sequence[_Example],
    val: Sequence[_Example],
    config: RelevanceTrainConfig,
    state_path: Path,
) -> list[dict[str, Any]]:
    """Trains epoch by epoch, saving and resuming the state; returns the epochs' history."""
    from ragzip.progress import progress_bar

    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / config.batch_groups)
    total = max(1, steps_per_epoch * config.epochs)
    scheduler = warmup_linear(torch, optimizer, total)
    start, step, history = 0, 0, []
    if config.resume and state_path.is_file():
        state = load_state(torch, state_path, net, optimizer, scheduler)
        start, step, history = state["epoch"], state["step"], state["history"]
        _log.info("resuming from epoch %d", start)
    net.train()
    for epoch in range(start, config.epochs):
        if config.max_steps is not None and step >= config.max_steps:
            break
        order = np.random.default_rng(config.seed + 1 + epoch).permutation(len(train)).tolist()
        bar = progress_bar(
            _batches(train, order, config.batch_groups),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            enabled=config.progress,
        )
        losses: list[float] = []
        with torch.random.fork_rng():  # dropout draws from a seeded generator
            torch.manual_seed(config.seed + 1000 + epoch)
            for batch in bar:
                loss = _loss(torch, tokenizer, net, batch)
                losses.append(apply_step(torch, loss, params, optimizer, scheduler))
                step += 1
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
                if config.max_steps is not None and step >= config.max_steps:
                    break
        metrics = evaluate(torch, tokenizer, net, val)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None})
        history[-1].update({f"val_{k}": v for k, v in metrics.items()})
        _log.info("epoch %d: %s", epoch + 1, history[-1])
        progress = {"epoch": epoch + 1, "step": step, "history": history}
        save_state(torch, state_path, net, optimizer, scheduler, progress)
    return history


def train_relevance(config: RelevanceTrainConfig) -> dict[str, Any]:
    """Trains the relevance-and-pruning model and saves it to ``config.out``.

    Returns:
        The report also written to ``OUT/ragzip_train.json``.

    Raises:
        ConfigError: The data gives fewer than 2 usable records, or the settings are invalid.
    """
    started = time.perf_counter()
    torch = require("torch", "training the relevance model")
    out = Path(config.out)
    work = Path(config.work) if config.work else out
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    groups, skipped = load_groups(config.data, config.records)
    groups = groups[: config.max_records]
    if len(groups) < 2:
        raise ConfigError(
            f"the data gave {len(groups)} usable record(s) ({skipped} skipped: no relevant "
            "passage or no other passage); at least 2 are needed"
        )
    tokenizer, net = build_net(config.base, config.seed)
    examples = _examples(tokenizer, groups, config)
    n_val = max(1, round(config.val_share * len(examples)))
    train, val = examples[:-n_val], examples[-n_val:]
    net = _lora_net(net, config)
    history = _fit(torch, tokenizer, net, train, val, config, work / "train_state.pt")
    final = evaluate(torch, tokenizer, net, val)
    save_lora(net, out, config.base)
    info = {
        "kind": "cross",
        "base": config.base,
        "channels": list(CHANNELS),
        "max_length": config.max_length,
        "inputs": "[CLS] question [SEP] title: passage [SEP]",
    }
    (out / RELEVANCE_CONFIG).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    report = {
        "config": asdict(config),
        "records": len(groups),
        "skipped_records": skipped,
        "train_groups": len(train),
        "val_groups": len(val),
        "trainable_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "artifact_bytes": (out / ADAPTER_WEIGHTS).stat().st_size,
        "val": final,
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "hardware": hardware(torch),
    }
    (out / "ragzip_train.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
