"""Training token pruners (LLMLingua-2's data distillation): ``ragzip train-pruner``.

1. Passages are read from a corpus (JSONL/JSON of ``{"text", "title"?, "question"?,
   "answers"?}``, nq20-style records with ``documents``, or text files split at blank lines);
   long texts are cut into passages of at most ``passage_words`` words.
2. A teacher labels every word keep/drop (:mod:`.teachers`); labels are cached in
   ``OUT/labels.jsonl`` so a rerun does not ask the teacher again.
3. A token-classification student (default: the BERT encoder of the packaged
   all-MiniLM-L6-v2) is fine-tuned on the labels, every subword of a word carrying the word's
   label. Training state is saved after every epoch (``OUT/train_state.pt``) and resumed.
4. The model, its tokenizer and ``ragzip_pruner.json`` (teacher, metrics) are written to
   ``OUT``, a directory that :class:`TokenPruneCompressor` loads by path.

Everything is seeded without touching the global random generators.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ragzip._optional import require
from ragzip.training.teachers import Passage, SurprisalTeacher, Teacher
from ragzip.errors import ConfigError
from ragzip.models import resolve_model

__all__ = ["TrainConfig", "init_pruner", "load_passages", "train_pruner"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (the CLI flags of ``ragzip train-pruner``)."""

    out: str
    corpus: tuple[str, ...] = ()  # empty: the bundled demo corpus and test fixtures
    base: str = "minilm"
    teacher: str = "surprisal"  # or "openai"
    teacher_model: str = "smollm2-135m"
    base_url: str | None = None  # OpenAI-compatible server of the "openai" teacher
    keep_rate: float = 0.5
    epochs: int = 8
    batch_size: int = 8
    learning_rate: float = 1e-4
    max_length: int = 256
    passage_words: int = 120
    val_share: float = 0.15
    max_passages: int | None = None
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    seed: int = 0
    resume: bool = True
    progress: bool = True


def init_pruner(out: str | Path, base: str = "minilm", seed: int = 0) -> Path:
    """Saves ``base``'s encoder with a fresh, seeded 2-class token-classification head.

    Args:
        out: Directory to write (a checkpoint any token-classification loader reads).
        base: Encoder short name, hub id or path (default: the packaged all-MiniLM-L6-v2).
        seed: Seed of the head's initialization.
    """
    torch = require("torch", "training token pruners")
    transformers = require("transformers", "training token pruners")
    path = resolve_model(base).path
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.AutoModelForTokenClassification.from_pretrained(
            path, num_labels=2, id2label={0: "drop", 1: "keep"}, label2id={"drop": 0, "keep": 1}
        )
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# -- corpus ----------------------------------------------------------------------------------
def _records(path: Path) -> Iterator[dict[str, Any]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        name = path.name.removesuffix(".gz")
        if name.endswith(".jsonl"):
            for line in f:
                if line.strip():
                    yield json.loads(line)
        elif name.endswith(".json"):
            data = json.load(f)
            yield from data if isinstance(data, list) else [data]
        else:
            for block in f.read().split("\n\n"):
                if block.strip():
                    yield {"text": block.strip()}


def _split(text: str, size: int) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or []


def load_passages(paths: Sequence[str | Path] = (), passage_words: int = 120) -> list[Passage]:
    """Passages of the corpus files (default: the bundled demo corpus and test fixtures)."""
    items: list[dict[str, Any]] = []
    if paths:
        for p in paths:
            for rec in _records(Path(p)):
                if "documents" in rec:  # nq20-style: a question over several documents
                    for doc in rec["documents"]:
                        items.append(
                            {
                                **doc,
                                "question": rec.get("question", ""),
                                "answers": rec.get("answers", []),
                            }
                        )
                else:
                    items.append(rec)
    else:
        from ragzip.testing.fixtures import DOCUMENTS, QUESTIONS

        demo = resources.files("ragzip") / "data" / "demo_corpus.jsonl"
        items = [json.loads(line) for line in demo.read_text("utf-8").splitlines() if line.strip()]
        asked = {q.document_id: q for q in QUESTIONS}
        for d in DOCUMENTS:
            q = asked.get(d.id)
            items.append(
                {
                    "text": d.text,
                    "title": d.title,
                    "question": q.question if q else "",
                    "answers": [q.answer] if q else [],
                }
            )
    passages = []
    for rec in items:
        if not isinstance(rec, dict) or not str(rec.get("text", "")).strip():
            continue
        answers = tuple(str(a) for a in rec.get("answers", []) or [])
        for piece in _split(str(rec["text"]), passage_words):
            found = tuple(a for a in answers if a.lower() in piece.lower())
            passages.append(
                Passage(
                    piece,
                    str(rec.get("title", "") or ""),
                    str(rec.get("question", "") or ""),
                    found,
                )
            )
    return passages


def _key(p: Passage) -> str:
    return hashlib.sha1(json.dumps(asdict(p), sort_keys=True).encode()).hexdigest()


def _teacher(config: TrainConfig) -> Teacher:
    if config.teacher == "surprisal":
        return SurprisalTeacher(config.teacher_model, keep_rate=config.keep_rate)
    if config.teacher == "openai":
        if not config.base_url:
            raise ConfigError("the openai teacher needs --base-url (an OpenAI-compatible /v1)")
        from ragzip.training.teachers import LLMTeacher
        from ragzip.generators.openai_compat import OpenAICompatibleGenerator

        return LLMTeacher(
            OpenAICompatibleGenerator(config.base_url, config.teacher_model),
            keep_rate=config.keep_rate,
        )
    raise ConfigError(f"teacher must be 'surprisal' or 'openai', got {config.teacher!r}")


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
    """Word labels of every passage (student-tokenizer words), cached in ``cache``."""
    from tqdm.auto import tqdm

    known: dict[str, list[int]] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text("utf-8").splitlines():
            rec = json.loads(line)
            known[rec["key"]] = rec["labels"]
    labels = []
    sink = cache.open("a", encoding="utf-8") if cache is not None else None
    try:
        for p in tqdm(passages, desc=f"labelling ({teacher.name})", disable=not progress):
            key = _key(p)
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


def _examples(
    passages: Sequence[Passage], labels: Sequence[np.ndarray], tokenizer: Any, max_length: int
) -> list[tuple[list[int], list[int]]]:
    out = []
    for p, lab in zip(passages, labels, strict=True):
        enc = tokenizer(p.text, truncation=True, max_length=max_length)
        ids = list(enc["input_ids"])
        tags = [-100 if w is None or w >= lab.size else int(lab[w]) for w in enc.word_ids()]
        out.append((ids, tags))
    return out


def _batches(
    torch: Any,
    examples: Sequence[tuple[list[int], list[int]]],
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
    examples: Sequence[tuple[list[int], list[int]]],
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


def train_pruner(config: TrainConfig, teacher: Teacher | None = None) -> dict[str, Any]:
    """Runs data distillation and fine-tuning; returns the report written to
    ``OUT/ragzip_pruner.json`` (with ``val`` metrics of the keep class)."""
    torch = require("torch", "training token pruners")
    transformers = require("transformers", "training token pruners")
    from tqdm.auto import tqdm

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_model(config.base).path
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    passages = load_passages(config.corpus, config.passage_words)
    if config.max_passages is not None:
        passages = passages[: config.max_passages]
    if len(passages) < 2:
        raise ConfigError(f"the corpus gave {len(passages)} passage(s); at least 2 are needed")
    teacher = teacher or _teacher(config)
    labels = label_passages(passages, tokenizer, teacher, out / "labels.jsonl", config.progress)
    examples = _examples(passages, labels, tokenizer, config.max_length)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(examples))
    n_val = max(1, round(config.val_share * len(examples)))
    val = [examples[i] for i in order[:n_val]]
    train = [examples[i] for i in order[n_val:]]
    pad = tokenizer.pad_token_id or 0

    state_path = out / "train_state.pt"
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = transformers.AutoModelForTokenClassification.from_pretrained(
            base, num_labels=2, id2label={0: "drop", 1: "keep"}, label2id={"drop": 0, "keep": 1}
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = max(1, steps_per_epoch * config.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / max(1, total_steps // 10)) * max(0.0, 1 - s / total_steps),
    )
    start_epoch, step, history = 0, 0, []
    if config.resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step, history = state["epoch"], state["step"], state["history"]
        _log.info("resuming from epoch %d", start_epoch)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        epoch_order = np.random.default_rng(config.seed + 1 + epoch).permutation(len(train))
        bar = tqdm(
            _batches(torch, train, epoch_order.tolist(), config.batch_size, pad),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not config.progress,
        )
        losses = []
        for batch in bar:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
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
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "step": step,
                "history": history,
            },
            state_path,
        )
        if config.max_steps is not None and step >= config.max_steps:
            break
    final = evaluate(torch, model, val, pad)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = {
        "config": asdict(config),
        "teacher": teacher.name,
        "passages": len(passages),
        "train_examples": len(train),
        "val_examples": len(val),
        "keep_share": float(np.mean(np.concatenate(labels))) if labels else 0.0,
        "val": final,
        "history": history,
    }
    (out / "ragzip_pruner.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
