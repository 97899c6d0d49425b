"""Soft compression: time to first token, and how much of the context's effect survives.

TTFT (``--ttft``): a 2,000- and a 4,000-token context (nq20 passages, or any JSONL of texts)
answered by SmolLM2-135M on this machine's CPU. Rows: the full text; soft-compressed at 2x and
4x with the ``pool`` and ``lora`` encoders, cold (empty segment cache: encoding included) and
warm (every segment cached, e.g. the same documents retrieved for a second question). Every
row uses the same prompt layout and measures from the documents to the first generated token
(tokenizing, encoding or cache lookups, embedding, prefill). Encoder weights do not change the
timing, so untrained encoders of each kind are timed.

Quality (``--quality N``): for the first N nq20 records, the decoder's loss on the gold answer
(nats per answer token, teacher-forced after the assistant prompt) with the gold passage as
full text, as soft embeddings from a trained encoder (``--encoder DIR``), and with no context;
``recovered`` is the share of the gap between none and full that the soft context keeps.

    .venv/bin/python benchmarks/bench_soft.py --ttft --threads 2 \
        --bench ../shared/bench/nq20-dev.jsonl.gz --out benchmarks/results/soft_ttft.json
    .venv/bin/python benchmarks/bench_soft.py --make-corpus nq20-train.jsonl \
        --bench ../shared/bench/nq20-dev.jsonl.gz
    ragzip train-soft --out DIR --corpus nq20-train.jsonl --rate 2 --steps 150 --batch-size 8
    .venv/bin/python benchmarks/bench_soft.py --quality 200 --encoder DIR \
        --bench ../shared/bench/nq20-dev.jsonl.gz --out benchmarks/results/soft_quality.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragzip.cache import MemoryCache
from ragzip.encoders.soft import SoftCompressor
from ragzip.generators.soft import SoftGenerator
from ragzip.prompt import PromptTemplate
from ragzip.types import CompressedDocument

QUESTION = "Which of these documents mentions the oldest event, and what happened then?"


def records(path: str) -> list[dict[str, Any]]:
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def documents_of(recs: list[dict[str, Any]], tokens: int, tokenizer: Any) -> list[dict[str, Any]]:
    """Distinct passages, in file order, until they hold ``tokens`` decoder tokens."""
    docs, total, seen = [], 0, set()
    for rec in recs:
        for doc in rec.get("documents", [rec]):
            text = doc["text"]
            if text in seen:
                continue
            seen.add(text)
            n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if total + n > tokens:
                return docs
            docs.append(
                {"id": f"d{len(docs)}", "text": text, "metadata": {"title": doc.get("title", "")}}
            )
            total += n
    return docs


def first_token(gen: SoftGenerator, embeds: np.ndarray) -> float:
    for _, seconds in gen.decode(embeds, max_tokens=1):
        return seconds
    raise RuntimeError("no token")


def time_full(gen: SoftGenerator, docs: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    kept = [CompressedDocument(d["text"], d["id"], metadata=d["metadata"]) for d in docs]
    embeds = gen.text_embeds(gen.prompt.render(QUESTION, kept))
    built = time.perf_counter() - start
    return built + first_token(gen, embeds)


def time_soft(gen: SoftGenerator, docs: list[dict[str, Any]]) -> tuple[float, int]:
    start = time.perf_counter()
    embeds, _ = gen.prompt_embeds(QUESTION, docs)
    built = time.perf_counter() - start
    return built + first_token(gen, embeds), int(embeds.shape[0])


def ttft(args: argparse.Namespace) -> dict[str, Any]:
    recs = records(args.bench)
    rows = []
    for tokens in args.lengths:
        base = SoftGenerator("untrained", rate=4, cache="none")
        docs = documents_of(recs, tokens, base.compressor.tokenizer)
        n = sum(
            len(base.compressor.tokenizer(d["text"], add_special_tokens=False)["input_ids"])
            for d in docs
        )
        first_token(base, base.text_embeds([{"role": "user", "content": "warm up"}]))
        full = [time_full(base, docs) for _ in range(args.repeats)]
        kept = [CompressedDocument(d["text"], d["id"], metadata=d["metadata"]) for d in docs]
        positions = int(base.text_embeds(base.prompt.render(QUESTION, kept)).shape[0])
        rows.append(
            {
                "context_tokens": n,
                "setting": "full text",
                "prompt_positions": positions,
                "ttft_s": statistics.median(full),
                "runs": full,
            }
        )
        print(rows[-1], flush=True)
        for kind in args.kinds:
            for rate in args.rates:
                cold, warm = [], []
                for _ in range(args.repeats):
                    gen = SoftGenerator(
                        "untrained", rate=rate, kind=kind, layers=4, cache=MemoryCache()
                    )
                    gen.warm_up()
                    seconds, positions = time_soft(gen, docs)
                    cold.append(seconds)
                    warm.append(time_soft(gen, docs)[0])
                for name, runs in (("cold", cold), ("warm", warm)):
                    rows.append({
                        "context_tokens": n, "setting": f"soft {rate}x {kind}, {name} cache",
                        "prompt_positions": positions, "ttft_s": statistics.median(runs),
                        "runs": runs, "speedup": statistics.median(full) / statistics.median(runs),
                    })  # fmt: skip
                    print(rows[-1], flush=True)
    return {"rows": rows}


def answer_loss(gen: SoftGenerator, prompt: np.ndarray, answer: str) -> tuple[float, int]:
    tok = gen.compressor.tokenizer
    decoder = gen.compressor.decoder
    ids = tok(answer + tok.eos_token, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        ans = decoder.get_input_embeddings()(ids)[0].float().numpy()
        full = torch.from_numpy(np.concatenate([prompt, ans]))[None]
        logits = decoder(inputs_embeds=full).logits[0, prompt.shape[0] - 1 : -1].float()
        loss = torch.nn.functional.cross_entropy(logits, ids[0], reduction="sum")
    return float(loss), int(ids.shape[1])


def quality(args: argparse.Namespace) -> dict[str, Any]:
    recs = records(args.bench)[: args.quality]
    soft = SoftGenerator(args.encoder, cache="none")
    plain = SoftGenerator(compressor=SoftCompressor("untrained", rate=soft.compressor.config.rate,
                                                    segment_tokens=soft.compressor.config.segment_tokens,
                                                    cache="none"))  # fmt: skip
    totals = {"full": 0.0, "soft": 0.0, "mean-pool": 0.0, "none": 0.0}
    count, positions, tokens = 0, 0, 0
    for rec in recs:
        gold = rec["documents"][rec["gold_index"]]
        doc = {"id": "gold", "text": gold["text"], "metadata": {"title": gold["title"]}}
        kept = [CompressedDocument(gold["text"], "gold", metadata={"title": gold["title"]})]
        answer = rec["answers"][0]
        embeds, ctx = soft.prompt_embeds(rec["question"], [doc])
        pooled, _ = plain.prompt_embeds(rec["question"], [doc])
        prompts = {
            "full": soft.text_embeds(soft.prompt.render(rec["question"], kept)),
            "soft": embeds,
            "mean-pool": pooled,
            "none": soft.text_embeds(soft.prompt.render(rec["question"], [])),
        }
        for name, prompt in prompts.items():
            loss, n = answer_loss(soft, prompt, answer)
            totals[name] += loss
        count += n
        positions += ctx.positions
        tokens += ctx.tokens_before
    result = {k: v / count for k, v in totals.items()}
    gap = result["none"] - result["full"]
    return {
        "records": len(recs),
        "answer_tokens": count,
        "context_ratio": tokens / positions,
        "loss_nats_per_token": result,
        "recovered": {k: (result["none"] - result[k]) / gap for k in ("soft", "mean-pool")},
        "encoder": args.encoder,
        "prompt": PromptTemplate().to_dict(),
    }


def make_corpus(args: argparse.Namespace) -> None:
    """The training corpus of the README figures: nq20 records after the first ``--quality``
    (default 200), without the gold passages of the scored records."""
    recs = records(args.bench)
    scored = args.quality or 200
    gold = {r["documents"][r["gold_index"]]["text"] for r in recs[:scored]}
    with open(args.make_corpus, "w", encoding="utf-8") as f:
        for rec in recs[scored:]:
            docs = [d for d in rec["documents"] if d["text"] not in gold]
            f.write(json.dumps({**rec, "documents": docs}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", default="../shared/bench/nq20-dev.jsonl.gz")
    parser.add_argument("--ttft", action="store_true")
    parser.add_argument("--lengths", type=int, nargs="+", default=[2000, 4000])
    parser.add_argument("--rates", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--kinds", nargs="+", default=["pool", "lora"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", type=int, default=0)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--make-corpus", default=None, help="write the training corpus here")
    args = parser.parse_args()
    if args.make_corpus:
        make_corpus(args)
        return
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, "
                              f"{args.threads} threads", "torch": torch.__version__}  # fmt: skip
    if args.ttft:
        report["ttft"] = ttft(args)
    if args.quality:
        report["quality"] = quality(args)
        print(json.dumps(report["quality"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
