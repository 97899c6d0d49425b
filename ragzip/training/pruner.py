"""Training token pruners (LLMLingua-2's data distillation): ``ragzip train-pruner``.

1. Passages are read from a corpus (JSONL/JSON of ``{"text", "title"?, "question"?,
   "answers"?}``, nq20-style records ``{"question", "answers", "documents": [{"title",
   "text"}], "gold_index"}`` with all their documents or only the gold one, or text files split
   at blank lines), optionally only a range of each file's records (``records="200:1000"``);
   long texts are cut into passages of at most ``passage_words`` words.
2. A teacher labels every word keep/drop (:mod:`.teachers`; the words of a known answer are
   always kept); labels are cached in ``WORK/labels.jsonl`` so a rerun does not ask the teacher
   again.
3. A token-classification student (default: the BERT encoder of the packaged
   all-MiniLM-L6-v2) learns the labels from the passage text alone, as the runtime pruner sees
   it, every subword of a word carrying the word's label: LoRA adapters (peft) and a fresh head
   (``mode="lora"``, the default) or every weight (``mode="full"``). Training state is saved
   after every epoch (``WORK/train_state.pt``) and resumed.
4. ``OUT`` gets what :class:`~ragzip.compressors.token_prune.TokenPruneCompressor` loads by
   path: in LoRA mode only ``adapter_config.json`` and ``adapter_model.safetensors`` (the
   adapters and the head, peft's format, about 1-3 MB for MiniLM), in full mode the whole
   checkpoint and its tokenizer; both with ``pruner_config.json`` (base model, label scheme)
   and ``ragzip_pruner.json`` (the report: settings, teacher, validation metrics, time,
   hardware).

Everything is seeded without touching the global random generators.

The corpus lives in :mod:`.corpus` and the teachers in :mod:`.teachers`; labelling, the
LoRA or full fine-tuning loop, resuming and saving share one configuration and stay here.
"""

from __future__ import annotations

import hashlib
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
from ragzip.compressors.token_prune.defaults import (
    LABELS,
    PRUNER_CONFIG,
)
from ragzip.errors import ConfigError
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
from ragzip.training.corpus import load_passages, parse_records
from ragzip.training.teachers import Passage, SurprisalTeacher, Teacher, UnigramTeacher

__all__ = [
    "TrainConfig",
    "init_pruner",
    "load_passages",
    "parse_records",
    "train_pruner",
]

_log = logging.getLogger(__name__)
MODES = ("lora", "full")
DOCUMENTS = ("all", "gold")
TEACHERS = ("surprisal", "unigram", "openai")
_DEFAULT_LR = {"lora": 1e-3, "full": 1e-4}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (the CLI flags of ``ragzip train-pruner``).

    Raises:
        ConfigError: A mode, teacher, document choice or record range that does not exist.
    """

    out: str
    corpus: tuple[str, ...] = ()  # empty: the bundled demo corpus
    records: str | None = None  # "START:STOP": only these records of each corpus file
    documents: str = "all"  # nq20-style records: "all" their documents or the "gold" one
    work: str | None = None  # labels cache and training state (default: OUT)
    base: str = "minilm"
    mode: str = "lora"  # or "full"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    teacher: str = "surprisal"  # "unigram" (fast, offline) or "openai"
    teacher_model: str = "smollm2-135m"
    base_url: str | None = None  # OpenAI-compatible server of the "openai" teacher
    keep_rate: float = 0.5
    epochs: int = 8
    batch_size: int = 8
    learning_rate: float | None = None  # default: 1e-3 (lora) or 1e-4 (full)
    max_length: int = 256
    passage_words: int = 120
    val_share: float = 0.15
    max_passages: int | None = None
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    seed: int = 0
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        for key, allowed in (("mode", MODES), ("documents", DOCUMENTS), ("teacher", TEACHERS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        parse_records(self.records)
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be a positive integer, got {self.lora_rank}")

    @property
    def lr(self) -> float:
        """The learning rate: ``learning_rate`` or the mode's default."""
        return self.learning_rate if self.learning_rate is not None else _DEFAULT_LR[self.mode]


def init_pruner(out: str | Path, base: str = "minilm", seed: int = 0) -> Path:
    """Saves ``base``'s encoder with a fresh, seeded 2-class token-classification head.

    Args:
        out: Directory to write (a checkpoint any token-classification loader reads).
        base: Encoder short name, hub id or path (default: the packaged all-MiniLM-L6-v2).
        seed: Seed of the head's initialization.

    Returns:
        ``out`` as a path.
    """
    transformers = require("transformers", "training token pruners")
    path = resolve_model(base).path
    model = _fresh_model(path, seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _fresh_model(path: str, seed: int) -> Any:
    torch = require("torch", "training token pruners")
    transformers = require("transformers", "training token pruners")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return transformers.AutoModelForTokenClassification.from_pretrained(
            path,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={name: i for i, name in enumerate(LABELS)},
        )


def _key(p: Passage, teacher: str) -> str:
    data = json.dumps({"teacher": teacher, **asdict(p)}, sort_keys=True)
    return hashlib.sha1(data.encode()).hexdigest()


def _teacher(config: TrainConfig, passages: Sequence[Passage]) -> Teacher:
    if config.teacher == "surprisal":
        return SurprisalTeacher(config.teacher_model, keep_rate=config.keep_rate)
    if config.teacher == "unigram":
        return UnigramTeacher([p.text for p in passages], keep_rate=config.keep_rate)
    if not config.base_url:
        raise ConfigError("the openai teacher needs --base-url (an OpenAI-compatible /v1)")
    from ragzip.generators.openai_compat import OpenAICompatibleGenerator
    from ragzip.training.teachers import LLMTeacher

    return LLMTeacher(
        OpenAICompatibleGenerator(config.base_url, config.teacher_model),
        keep_rate=config.keep_rate,
    )


# -- labelling ---------------------------------------------------------------------------------
def _word_spans(tokenizer: Any, text: str) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    word_ids = enc.word_ids()
    offsets = enc["offset_mapping"]
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for w, (a, b) in zip(word_ids, offsets, strict=True):
        if w is None:
            continue
        starts.setdefault(w, a)
        ends[w] = b
    order = sorted(starts)
    return (
        np.array([starts[w] for w in order], dtype=np.int64),
        np.array([ends[w] for w in order], dtype=np.int64),
    )


def label_passages(
    passages: Sequence[Passage],
    tokenizer: Any,
    teacher: Teacher,
    cache: Path | None,
    progress: bool = True,
) -> list[np.ndarray]:
    """Word labels of every passage (student-tokenizer words), cached in ``cache`` per
    passage and teacher name."""
    from ragzip.progress import progress_bar

    known: dict[str, list[int]] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text("utf-8").splitlines():
            rec = json.loads(line)
            known[rec["key"]] = rec["labels"]
    labels = []
    sink = cache.open("a", encoding="utf-8") if cache is not None else None
    try:
        for p in progress_bar(passages, desc=f"labelling ({teacher.name})", enabled=progress):
            key = _key(p, teacher.name)
            if key not in known:
                starts, ends = _word_spans(tokenizer, p.text)
                known[key] = teacher.label(p, starts, ends).astype(int).tolist()
                if sink is not None:
                    sink.write(json.dumps({"key": key, "labels": known[key]}) + "\n")
                    sink.flush()
            labels.append(np.array(known[key], dtype=np.int64))
    finally:
        if sink is not None:
            sink.close()
    return labels


Example = tuple[list[int], list[int]]


def _examples(
    passages: Sequence[Passage], labels: Sequence[np.ndarray], tokenizer: Any, max_length: int
) -> list[Example]:
    out = []
    for p, lab in zip(passages, labels, strict=True):
        enc = tokenizer(p.text, truncation=True, max_length=max_length)
        ids = list(enc["input_ids"])
        tags = [-100 if w is None or w >= lab.size else int(lab[w]) for w in enc.word_ids()]
        out.append((ids, tags))
    return out


def _batches(
    torch: Any,
    examples: Sequence[Example],
    order: Sequence[int],
    size: int,
    pad: int,
) -> Iterator[dict[str, Any]]:
    for b in range(0, len(order), size):
        chunk = [examples[i] for i in order[b : b + size]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        tags = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (i, t) in enumerate(chunk):
            ids[row, : len(i)] = torch.tensor(i)
            tags[row, : len(t)] = torch.tensor(t)
            mask[row, : len(i)] = 1
        yield {"input_ids": ids, "attention_mask": mask, "labels": tags}


def evaluate(
    torch: Any,
    model: Any,
    examples: Sequence[Example],
    pad: int,
    batch_size: int = 16,
) -> dict[str, float]:
    """Token-level precision, recall and F1 of the keep class, and accuracy."""
    tp = fp = fn = correct = total = 0
    model.eval()
    with torch.inference_mode():
        for batch in _batches(torch, examples, range(len(examples)), batch_size, pad):
            tags = batch.pop("labels")
            pred = model(**batch).logits.argmax(-1)
            valid = tags != -100
            tp += int(((pred == 1) & (tags == 1) & valid).sum())
            fp += int(((pred == 1) & (tags == 0) & valid).sum())
            fn += int(((pred == 0) & (tags == 1) & valid).sum())
            correct += int(((pred == tags) & valid).sum())
            total += int(valid.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": correct / total if total else 0.0,
    }


# -- the student -------------------------------------------------------------------------------
def _student(base: str, config: TrainConfig) -> Any:
    """The model to train: the base with a fresh head, wrapped with LoRA in LoRA mode."""
    model = _fresh_model(base, config.seed)
    if config.mode == "full":
        return model
    peft = require("peft", "LoRA training of token pruners")
    return with_lora(model, config, task_type=peft.TaskType.TOKEN_CLS)


def _fit(
    torch: Any,
    model: Any,
    train: Sequence[Example],
    val: Sequence[Example],
    pad: int,
    config: TrainConfig,
    state_path: Path,
) -> list[dict[str, Any]]:
    """Trains epoch by epoch, saving and resuming the state; returns the epochs' history."""
    from ragzip.progress import progress_bar

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = warmup_linear(torch, optimizer, total_steps)
    start_epoch, step, history = 0, 0, []
    if config.resume and state_path.is_file():
        mode = torch.load(state_path, weights_only=False).get("mode", "full")
        if mode != config.mode:
            raise ConfigError(
                f"{state_path} holds a {mode!r} run, not {config.mode!r}: "
                "pass --no-resume, or another --work directory"
            )
        state = load_state(torch, state_path, model, optimizer, scheduler)
        start_epoch, step, history = state["epoch"], state["step"], state["history"]
        _log.info("resuming from epoch %d", start_epoch)
    for epoch in range(start_epoch, config.epochs):
        if config.max_steps is not None and step >= config.max_steps:
            break
        model.train()
        epoch_order = np.random.default_rng(config.seed + 1 + epoch).permutation(len(train))
        bar = progress_bar(
            _batches(torch, train, epoch_order.tolist(), config.batch_size, pad),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            enabled=config.progress,
        )
        losses: list[float] = []
        with torch.random.fork_rng():  # dropout draws from a seeded generator
            torch.manual_seed(config.seed + 1000 + epoch)
            for batch in bar:
                loss = model(**batch).loss
                losses.append(apply_step(torch, loss, params, optimizer, scheduler))
                step += 1
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
                if config.max_steps is not None and step >= config.max_steps:
                    break
        metrics = evaluate(torch, model, val, pad)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)) if losses else None,
                **{f"val_{k}": v for k, v in metrics.items()},
            }
        )
        if config.progress:
            print(f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f} val F1 {metrics['f1']:.3f}")
        progress = {"mode": config.mode, "epoch": epoch + 1, "step": step, "history": history}
        save_state(torch, state_path, model, optimizer, scheduler, progress)
    return history


def _save(model: Any, tokenizer: Any, out: Path, config: TrainConfig) -> None:
    """Writes what the runtime loads: the LoRA adapters and head, or the whole checkpoint."""
    if config.mode == "lora":
        save_lora(model, out, config.base)
    else:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    info = {
        "kind": config.mode,
        "base": config.base,
        "labels": list(LABELS),
        "keep_label": LABELS.index("keep"),
        "inputs": "passage text only (no question)",
    }
    (out / PRUNER_CONFIG).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def train_pruner(config: TrainConfig, teacher: Teacher | None = None) -> dict[str, Any]:
    """Runs data distillation and fine-tuning and saves the pruner to ``config.out``.

    Args:
        config: The run's settings.
        teacher: A teacher to use instead of the one ``config`` names.

    Returns:
        The report also written to ``OUT/ragzip_pruner.json`` (``val``: metrics of the keep
        class on the held-out passages; ``history``: one entry per epoch).

    Raises:
        ConfigError: The corpus gives fewer than 2 passages, or the settings are invalid.
    """
    started = time.perf_counter()
    torch = require("torch", "training token pruners")
    transformers = require("transformers", "training token pruners")
    out = Path(config.out)
    work = Path(config.work) if config.work else out
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    base = resolve_model(config.base).path
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    passages = load_passages(
        config.corpus, config.passage_words, records=config.records, documents=config.documents
    )[: config.max_passages]
    if len(passages) < 2:
        raise ConfigError(f"the corpus gave {len(passages)} passage(s); at least 2 are needed")
    teacher = teacher or _teacher(config, passages)
    labels = label_passages(passages, tokenizer, teacher, work / "labels.jsonl", config.progress)
    examples = _examples(passages, labels, tokenizer, config.max_length)
    order = np.random.default_rng(config.seed).permutation(len(examples))
    n_val = max(1, round(config.val_share * len(examples)))
    val = [examples[i] for i in order[:n_val]]
    train = [examples[i] for i in order[n_val:]]
    pad = tokenizer.pad_token_id or 0

    model = _student(base, config)
    history = _fit(torch, model, train, val, pad, config, work / "train_state.pt")
    final = evaluate(torch, model, val, pad)
    _save(model, tokenizer, out, config)
    report = {
        "config": asdict(config),
        "teacher": teacher.name,
        "passages": len(passages),
        "train_examples": len(train),
        "val_examples": len(val),
        "keep_share": float(np.mean(np.concatenate(labels))) if labels else 0.0,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "val": final,
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "hardware": hardware(torch),
    }
    (out / "ragzip_pruner.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
