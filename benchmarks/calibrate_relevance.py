"""Calibrate the extractive compressor's selective-augmentation threshold (``min_relevance``).

For each question, ``info["relevance"]`` (the best document's cosine similarity) is recorded
twice: with its own documents (answerable: nq20 always holds the gold passage) and with the
documents of an unrelated record. The table shows, per threshold, the share of answerable
questions that keep their context and the share of unrelated retrievals that are dropped.

    .venv/bin/python benchmarks/calibrate_relevance.py \
        ../shared/bench/nq20-dev.jsonl.gz --records 300
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ragzip.compressors.registry import compressors
from ragzip.eval.benchmarks import TASKS, load_jsonl
from ragzip.types import Budget


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench")
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--encoder", default="minilm")
    args = ap.parse_args()
    records = load_jsonl(args.bench)[: args.records]
    comp = compressors.build({"type": "extractive", "params": {"encoder": args.encoder}})
    task = TASKS["nq20"]
    shift = len(records) // 2
    own, unrelated = [], []
    for i, rec in enumerate(records):
        query, docs = task.request(rec)
        _, other = task.request(records[(i + shift) % len(records)])
        own.append(comp.compress(query, docs, Budget(ratio=10)).info["relevance"])
        unrelated.append(comp.compress(query, other, Budget(ratio=10)).info["relevance"])
    pos, neg = np.array(own), np.array(unrelated)
    rows = [
        {
            "min_relevance": t,
            "answerable_kept": round(float((pos >= t).mean()), 3),
            "unrelated_dropped": round(float((neg < t).mean()), 3),
        }
        for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
    ]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
