"""Training soft encoders by distillation: ``ragzip train-soft``.

The decoder reading the full text is the teacher; the same frozen decoder reading the
compressed segments is the student. Each example is a window of a corpus text: a context of
``context_tokens`` followed by ``target_tokens``. The loss is the KL divergence between the
teacher's and the student's next-token distributions over the target tokens, so the encoder
learns whatever makes the compressed context act on the decoder as the full one does. Where
the corpus has questions with answers found in their passages (nq20-style records, or
``{"text", "question", "answers"}``), every other step distils the answer instead: the
decoder reading the passage as soft segments inside the RAG prompt should answer as it does
reading the passage as text (:mod:`.qa`). Only the encoder's projection (and its LoRA
adapters) are trained and saved.

Held-out windows report the decoder's loss on the target tokens with the full context, the
soft context and no context, and the share of the gap between none and full that the soft
context recovers.

Training is seeded (its own generators; the global ones are untouched) and resumable: the
state is saved to ``OUT/train_state.pt`` every ``checkpoint_every`` steps and a rerun with the
same ``OUT`` continues from there.

One recipe: data windows, both losses and the resumable loop share the frozen decoder and
the encoder under training (a little over 350 lines).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragzip._optional import require
from ragzip.encoders.soft.config import SoftConfig
from ragzip.encoders.soft.qa import QAExample, qa_examples, qa_logits
from ragzip.errors import ConfigError

__all__ = ["SoftTrainConfig", "evaluate", "make_windows", "train_soft"]

_log = logging.getLogger(__name__)
STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class SoftTrainConfig:
    """Settings of one run (the CLI flags of ``ragzip train-soft``)."""

    out: str
    corpus: tuple[str, ...] = ()  # empty: the bundled demo corpus
    steps: int = 300
    batch_size: int = 4
    learning_rate: float = 1e-3
    context_tokens: int = 96
    target_tokens: int = 32
    eval_windows: int = 32
    checkpoint_every: int = 50
    max_texts: int | None = None  # texts read at most (smoke runs)
    seed: int = 0
    device: str | None = None
    resume: bool = True
    qa: bool = True  # also distil answers where the corpus has questions (see .qa)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "context_tokens", "target_tokens", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.target_tokens < 2:
            raise ConfigError("target_tokens must be at least 2")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")


def make_windows(
    texts: list[str], tokenizer: Any, context_tokens: int, target_tokens: int
) -> list[list[int]]:
    """Non-overlapping token windows of ``context_tokens + target_tokens`` from each text."""
    size = context_tokens + target_tokens
    windows: list[list[int]] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        windows.extend(ids[i : i + size] for i in range(0, len(ids) - size + 1, size))
    return windows


def _passages(corpus: tuple[str, ...]) -> list[Any]:
    from ragzip.training.corpus import load_passages

    # whole texts: a passage limit far above any document keeps them intact
    return load_passages(corpus, passage_words=1_000_000)


def _soft_inputs(encoder: Any, context: Any, config: SoftConfig) -> Any:
    """(B, C) context ids -> (B, positions, hidden) soft embeddings, segment by segment."""
    torch = require("torch", "soft training")
    length = context.shape[1]
    pieces = []
    for start in range(0, length, config.segment_tokens):
        seg = context[:, start : start + config.segment_tokens]
        pieces.append(encoder(seg, torch.ones_like(seg)))
    return torch.cat(pieces, dim=1)


def _losses(
    encoder: Any, decoder: Any, batch: Any, config: SoftConfig, context_tokens: int
) -> dict[str, Any]:
    """Teacher and student logits on the target tokens, and their KL divergence."""
    torch = require("torch", "soft training")
    functional = torch.nn.functional
    context, target = batch[:, :context_tokens], batch[:, context_tokens:]
    t = target.shape[1]
    with torch.no_grad():
        teacher = decoder(input_ids=batch).logits[:, context_tokens - 1 : -1].float()
    soft = _soft_inputs(encoder, context, config)
    target_embeds = decoder.get_input_embeddings()(target)
    student_in = torch.cat([soft, target_embeds.to(soft.dtype)], dim=1)
    p = soft.shape[1]
    student = decoder(inputs_embeds=student_in).logits[:, p - 1 : p - 1 + t].float()
    kl = (
        functional.kl_div(
            functional.log_softmax(student, -1),
            functional.log_softmax(teacher, -1),
            log_target=True,
            reduction="batchmean",
        )
        / t
    )
    return {"kl": kl, "student": student, "teacher": teacher}


def evaluate(
    encoder: Any,
    decoder: Any,
    windows: list[list[int]],
    config: SoftConfig,
    context_tokens: int,
    batch_size: int = 8,
    qa: Sequence[QAExample] = (),
) -> dict[str, float]:
    """Mean loss (nats per token) on the target tokens after the first, by condition."""
    torch = require("torch", "soft training")
    functional = torch.nn.functional
    totals = {"full": 0.0, "soft": 0.0, "none": 0.0}
    count = 0
    device = next(decoder.parameters()).device
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = torch.tensor(windows[start : start + batch_size], device=device)
            target = batch[:, context_tokens:]
            labels = target[:, 1:].reshape(-1)
            out = _losses(encoder, decoder, batch, config, context_tokens)
            none = decoder(input_ids=target).logits[:, :-1].float()
            for name, logits in (
                ("full", out["teacher"][:, 1:]),
                ("soft", out["student"][:, 1:]),
                ("none", none),
            ):
                totals[name] += float(
                    functional.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]), labels, reduction="sum"
                    )
                )
            count += int(labels.numel())
    result = _summary(totals, count)
    if qa:
        result.update(_evaluate_qa(encoder, decoder, qa, config))
    return result


def _evaluate_qa(
    encoder: Any, decoder: Any, examples: Sequence[QAExample], config: SoftConfig
) -> dict[str, float]:
    """Answer loss (nats per token) with the passage as text, as soft segments, and without."""
    torch = require("torch", "soft training")
    functional = torch.nn.functional
    totals = {"qa_full": 0.0, "qa_soft": 0.0, "qa_none": 0.0}
    count = 0
    device = next(decoder.parameters()).device
    with torch.no_grad():
        for ex in examples:
            teacher, student, answer = qa_logits(encoder, decoder, ex, config)
            bare = torch.tensor([*ex.prefix, *ex.suffix, *ex.answer], device=device)[None]
            none = decoder(input_ids=bare).logits[0, -len(ex.answer) - 1 : -1].float()
            for name, logits in (("qa_full", teacher), ("qa_soft", student), ("qa_none", none)):
                totals[name] += float(functional.cross_entropy(logits, answer, reduction="sum"))
            count += len(ex.answer)
    result = _summary(totals, count, prefix="qa_")
    result["qa_examples"] = float(len(examples))
    return result


def _summary(totals: dict[str, float], count: int, prefix: str = "") -> dict[str, float]:
    """Mean losses, and the share of the none-to-full gap the soft context recovers."""
    result = {k: v / max(count, 1) for k, v in totals.items()}
    none, full, soft = (result[f"{prefix}{k}"] for k in ("none", "full", "soft"))
    result[f"{prefix}recovered"] = (none - soft) / (none - full) if none > full else float("nan")
    return result


def _kl(teacher: Any, student: Any) -> Any:
    """Mean per-token KL(teacher || student) of (tokens, vocab) logits."""
    torch = require("torch", "soft training")
    functional = torch.nn.functional
    return functional.kl_div(
        functional.log_softmax(student, -1),
        functional.log_softmax(teacher, -1),
        log_target=True,
        reduction="batchmean",
    )


def train_soft(train: SoftTrainConfig, config: SoftConfig | None = None) -> dict[str, Any]:
    """Trains an encoder, writes it to ``train.out`` and returns the run's report."""
    torch = require("torch", "soft training")
    from ragzip.encoders.soft.compressor import load_decoder
    from ragzip.encoders.soft.encoder import SoftEncoder
    from ragzip.progress import progress_bar

    out = Path(train.out)
    config = config or SoftConfig()
    if (out / "soft_config.json").is_file():
        saved = SoftConfig.load(out)
        if saved != config:
            raise ConfigError(
                f"{out} holds an encoder trained with other settings ({saved.to_dict()}); "
                "choose another --out or the same settings"
            )
    started = time.perf_counter()
    decoder, tokenizer = load_decoder(config.decoder, train.device, "float32")
    passages = _passages(train.corpus)
    texts = list(dict.fromkeys(p.text for p in passages))
    random.Random(train.seed).shuffle(texts)
    if train.max_texts is not None:
        texts = texts[: train.max_texts]
    # held-out windows and questions come from texts never trained on
    evaluation: list[list[int]] = []
    training: list[list[int]] = []
    held: set[str] = set()
    for text in texts:
        windows = make_windows([text], tokenizer, train.context_tokens, train.target_tokens)
        hold = len(evaluation) < train.eval_windows and len(evaluation) < len(training) // 4 + 1
        if hold and windows:
            evaluation.extend(windows)
            held.add(text)
        else:
            training.extend(windows)
    chosen = set(texts)
    asked = [p for p in passages if p.text in chosen and p.question and p.answers]
    qa_eval = qa_examples([p for p in asked if p.text in held], tokenizer)[: train.eval_windows]
    qa_train = qa_examples([p for p in asked if p.text not in held], tokenizer)
    if not train.qa:
        qa_eval, qa_train = [], []
    if not training:
        raise ConfigError(
            f"no training windows: the corpus needs texts of at least "
            f"{train.context_tokens + train.target_tokens} tokens (lower --context-tokens)"
        )
    generator = torch.Generator().manual_seed(train.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train.seed)
        encoder = SoftEncoder(config, decoder).to(decoder.device)
    params = [p for n, p in encoder.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / train.steps)),
    )
    step, history = 0, []
    state_path = out / STATE_FILE
    if state_path.is_file() and not train.resume:
        state_path.unlink()
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        encoder.load_state_dict(state["encoder"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, history = int(state["step"]), list(state["history"])
        _log.info("resuming from step %d", step)
    before = (
        evaluate(encoder, decoder, evaluation, config, train.context_tokens, qa=qa_eval)
        if step == 0 and evaluation
        else None
    )
    encoder.train()
    bar = progress_bar(total=train.steps, initial=step, desc="train-soft", enabled=train.progress)
    while step < train.steps:
        optimizer.zero_grad(set_to_none=True)
        if qa_train and step % 2 == 1:  # alternate: answers after soft passages
            picks = torch.randint(len(qa_train), (train.batch_size,), generator=generator)
            total = 0.0
            for i in picks.tolist():
                teacher, student, _ = qa_logits(encoder, decoder, qa_train[i], config)
                part = _kl(teacher, student) / train.batch_size
                part.backward()
                total += float(part.detach())
            loss = torch.tensor(total)
        else:  # continuation of the corpus text after soft context
            picks = torch.randint(len(training), (train.batch_size,), generator=generator)
            batch = torch.tensor([training[i] for i in picks.tolist()], device=decoder.device)
            loss = _losses(encoder, decoder, batch, config, train.context_tokens)["kl"]
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        history.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(kl=f"{sum(history[-20:]) / len(history[-20:]):.3f}")
        if step % train.checkpoint_every == 0 or step == train.steps:
            _save_state(state_path, encoder, optimizer, schedule, generator, step, history)
    bar.close()
    encoder.eval()
    after = (
        evaluate(encoder, decoder, evaluation, config, train.context_tokens, qa=qa_eval)
        if evaluation
        else None
    )
    encoder.save(out)
    report = {
        "config": config.to_dict(),
        "train": {k: v for k, v in asdict(train).items() if k != "progress"},
        "windows": {"train": len(training), "eval": len(evaluation)},
        "questions": {"train": len(qa_train), "eval": len(qa_eval)},
        "final_kl": sum(history[-20:]) / max(len(history[-20:]), 1),
        "eval_before": before,
        "eval_after": after,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "train_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _save_state(
    path: Path,
    encoder: Any,
    optimizer: Any,
    schedule: Any,
    generator: Any,
    step: int,
    history: list[float],
) -> None:
    torch = require("torch", "soft training")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "encoder": encoder.trainable_state(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": generator.get_state(),
            "step": step,
            "history": history,
        },
        tmp,
    )
    tmp.replace(path)
