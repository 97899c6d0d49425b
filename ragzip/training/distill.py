"""Distillation: train a small summarizer on a larger teacher's faithful, helpful summaries.

RECOMP trains its abstractive compressor on summaries a large LM writes, keeping only those
that help the reader LM answer, and teaches it to answer nothing when nothing helps. This
recipe does the same with the parts of this package:

1. :func:`build_examples` renders the compressor's own prompt (prefiltered sentences, word
   budget) for each ``(question, documents, answers)`` record and asks the *teacher* (any
   generator spec: a large model on vLLM through ``openai``, in production) for a summary.
2. A summary is kept only when the guard changes none of its sentences (faithful) and, when
   answers are given, it contains one (helpful). When no source sentence contains an answer,
   the target is the sentinel, so the student learns selective augmentation.
3. :func:`train_student` fine-tunes a causal LM (SmolLM2-135M by default) on the kept
   ``(prompt, summary)`` pairs, with the loss on the summary tokens only.

Run ``python -m ragzip.training.distill build|train --help``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragzip._optional import require
from ragzip.compressors.abstractive.compressor import AbstractiveCompressor
from ragzip.compressors.abstractive.guard import guard
from ragzip.compressors.abstractive.parsing import clean_summary, is_sentinel
from ragzip.encoders.bi_encoder import get_bi_encoder
from ragzip.lm import load_lm
from ragzip.text import sentences
from ragzip.types import Budget, Document, as_documents

__all__ = ["Example", "build_examples", "train_student"]


@dataclass(frozen=True)
class Example:
    """One training pair and why it was kept."""

    prompt: str
    summary: str
    reason: str  # "faithful", "sentinel"

    def to_chat(self) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "user", "content": self.prompt},
                {"role": "assistant", "content": self.summary},
            ],
            "reason": self.reason,
        }


def _normalize(text: str) -> str:
    return " ".join(text.lower().split())


def build_examples(
    records: Iterable[Mapping[str, Any]],
    teacher: Mapping[str, Any] | str,
    *,
    ratio: float = 20.0,
    compressor_params: Mapping[str, Any] | None = None,
) -> tuple[list[Example], dict[str, int]]:
    """Teacher summaries for ``records`` (``{"question", "documents", "answers"?}``), filtered.

    Args:
        records: Questions with documents (strings or ``{"title", "text"}``) and, optionally,
            acceptable answers.
        teacher: Generator spec of the teacher.
        ratio: Compression ratio whose word budget the prompts ask for.
        compressor_params: Other :class:`AbstractiveCompressor` parameters (the student's
            prompt must be the one it will be used with).

    Returns:
        The kept examples and counts of what was kept or skipped.
    """
    spec = teacher if isinstance(teacher, str) else dict(teacher)
    compressor = AbstractiveCompressor(spec, **dict(compressor_params or {}))
    encode = get_bi_encoder(compressor.encoder).encode
    generator = compressor._generator()
    counts = {"records": 0, "faithful": 0, "sentinel": 0, "unfaithful": 0, "unhelpful": 0}
    examples: list[Example] = []
    for record in records:
        counts["records"] += 1
        documents: Sequence[Document] = as_documents(record["documents"])
        answers = [_normalize(a) for a in record.get("answers") or []]
        request = compressor._request(str(record["question"]), documents, Budget(ratio=ratio))
        sources, _, _ = compressor._sources(request)
        if not sources:
            continue
        words = compressor._summary_words(request, sources, request.limit)
        prompt = compressor._render(request.query, sources, words or compressor.min_summary_words)
        source_text = _normalize(" ".join(s.text for s in sources))
        if answers and not any(a in source_text for a in answers):
            examples.append(Example(prompt, compressor.sentinel, "sentinel"))
            counts["sentinel"] += 1
            continue
        raw = generator.generate(
            [{"role": "user", "content": prompt}],
            max_tokens=max(8, int((words or 16) * compressor.tokens_per_word)),
        ).text
        summary = clean_summary(raw)
        if is_sentinel(summary, compressor.sentinel):
            counts["unhelpful"] += 1
            continue
        report = guard(sentences(summary), sources, encode, threshold=compressor.guard_threshold)
        if report.dropped or report.replaced:
            counts["unfaithful"] += 1
            continue
        if answers and not any(a in _normalize(summary) for a in answers):
            counts["unhelpful"] += 1
            continue
        examples.append(Example(prompt, summary, "faithful"))
        counts["faithful"] += 1
    return examples, counts


def train_student(
    examples: Sequence[Example],
    output_dir: str | Path,
    *,
    student: str = "smollm2-135m",
    epochs: int = 1,
    learning_rate: float = 5e-5,
    batch_size: int = 4,
    max_length: int = 768,
    seed: int = 0,
) -> dict[str, float]:
    """Fine-tunes a causal LM on the pairs (loss on the summary only) and saves it.

    Returns:
        ``{"steps", "loss"}``: optimizer steps and the mean loss of the last epoch.
    """
    torch = require("torch", "training a summarizer")
    model, tokenizer, _ = load_lm(
        student, device="cpu", dtype=None, what="student", purpose="training a summarizer"
    )
    generator = torch.Generator().manual_seed(seed)  # local RNG: no global seeding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = [_encode_pair(tokenizer, e, max_length) for e in examples]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    steps, losses = 0, [0.0]
    for _ in range(epochs):
        losses = []
        order = torch.randperm(len(rows), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            batch = [rows[i] for i in order[start : start + batch_size]]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (tokens, target) in enumerate(batch):
                ids[r, : len(tokens)] = torch.tensor(tokens)
                labels[r, : len(target)] = torch.tensor(target)
                mask[r, : len(tokens)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
            losses.append(float(loss.detach()))
    model.eval()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return {"steps": float(steps), "loss": sum(losses) / max(len(losses), 1)}


def _encode_pair(tokenizer: Any, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of the chat-rendered pair, and labels that mask the prompt with -100."""
    chat = [{"role": "user", "content": example.prompt}]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    else:
        prompt = f"user: {example.prompt}\nassistant:"
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.summary, add_special_tokens=False)["input_ids"]
    answer_ids = [*answer_ids, tokenizer.eos_token_id]
    ids = (prompt_ids + answer_ids)[-max_length:]
    labels = ([-100] * len(prompt_ids) + answer_ids)[-max_length:]
    return ids, labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Distil an abstractive compressor.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="teacher summaries -> chat JSONL")
    build.add_argument("records", help="JSONL (.gz) of {question, documents, answers}")
    build.add_argument("out")
    build.add_argument("--teacher", required=True, help="generator spec as JSON")
    build.add_argument("--ratio", type=float, default=20.0)
    build.add_argument("--limit", type=int, default=None)
    train = sub.add_parser("train", help="fine-tune the student on the chat JSONL")
    train.add_argument("data")
    train.add_argument("output_dir")
    train.add_argument("--student", default="smollm2-135m")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--lr", type=float, default=5e-5)
    args = parser.parse_args(argv)
    if args.command == "build":
        from ragzip.eval.benchmarks import load_jsonl

        records = load_jsonl(args.records)[: args.limit]
        examples, counts = build_examples(records, json.loads(args.teacher), ratio=args.ratio)
        with open(args.out, "w", encoding="utf-8") as f:
            for example in examples:
                f.write(json.dumps(example.to_chat(), ensure_ascii=False) + "\n")
        print(json.dumps(counts))
    else:
        pairs = []
        for line in Path(args.data).read_text(encoding="utf-8").splitlines():
            messages = json.loads(line)["messages"]
            pairs.append(Example(messages[0]["content"], messages[1]["content"], "loaded"))
        stats = train_student(pairs, args.output_dir, student=args.student, epochs=args.epochs,
                              learning_rate=args.lr)  # fmt: skip
        print(json.dumps(stats))


if __name__ == "__main__":
    main()
