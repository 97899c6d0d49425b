"""The relevance model's validation figures on nq20-dev records 0-199 (never trained on).

One process, so document vectors and the model's outputs are computed once per record and
shared by every row (the figures equal separate ``ragzip eval ... --limit 200`` runs):

* gold-passage top-1 of the bi-encoder alone and with a cross model's passage score;
* ``extractive`` and ``token-prune`` hit rates at 20x and 50x: the untuned MiniLM sentence
  stage against the tuned sentence model (``--model``, the shipped ``ragzip-relevance``);
* the adaptive mode (``keep_threshold``, with the cross model): hit rate and the ratios it
  reaches under a 20x ceiling.

    .venv/bin/python benchmarks/relevance_validation.py ../shared/bench/nq20-dev.jsonl.gz \
        --model ragzip-relevance --cross runs/relevance-v1 \
        --out benchmarks/results/relevance_validation.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from tune_relevance import memoise_scores  # this folder is on sys.path when run as a script

from ragzip.compressors.base import Request
from ragzip.compressors.cross_stage import CrossStage
from ragzip.compressors.document_rank import DocumentRanker
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.compressors.token_prune import TokenPruneCompressor
from ragzip.eval.benchmarks import TASKS, load_jsonl, run_eval
from ragzip.tokens import get_counter
from ragzip.training.corpus import parse_records
from ragzip.types import Budget


def gold_top1(rows: list[dict[str, Any]], model: str) -> dict[str, float]:
    ranker = DocumentRanker("minilm")
    stage = CrossStage(model)
    task = TASKS["nq20"]
    bi_hits, cross_hits = 0, 0
    for rec in rows:
        query, docs = task.request(rec)
        scores = ranker.score(ranker.encoder.encode([query])[0], docs)
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        bi_hits += order[0] == rec["gold_index"]
        request = Request(query, tuple(docs), Budget(ratio=1), 0, get_counter("words"))
        cross_hits += stage.score(request, order, scores).docs[0] == rec["gold_index"]
    return {"bi_encoder": bi_hits / len(rows), "with_model": cross_hits / len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("--model", default="ragzip-relevance", help="tuned sentence model")
    parser.add_argument("--cross", default=None, help="a cross model (ragzip train --kind cross)")
    parser.add_argument("--records", default="0:200")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    memoise_scores()
    rows = load_jsonl(args.bench)[parse_records(args.records)]
    started = time.perf_counter()
    report: dict[str, Any] = {"records": args.records, "model": args.model, "cross": args.cross}
    if args.cross:
        report["gold_top1"] = gold_top1(rows, args.cross)
        print(report["gold_top1"], flush=True)
    runs = {
        "extractive, MiniLM sentences": ExtractiveCompressor(
            sentence_model=None, tokenizer="words"
        ),
        "extractive, tuned sentences": ExtractiveCompressor(
            sentence_model=args.model, tokenizer="words"
        ),
        "token-prune (coarse stage with tuned sentences)": TokenPruneCompressor(tokenizer="words"),
    }
    hits: dict[str, dict[str, float]] = {}
    for name, comp in runs.items():
        hits[name] = {}
        for target in (20, 50):
            hits[name][f"{target}x"] = run_eval("nq20", rows, comp, target).hit_rate
        print(name, hits[name], flush=True)
    report["hit_rate"] = hits
    adaptive = []
    for threshold in (0.2, 0.4, 0.6) if args.cross else ():
        comp = ExtractiveCompressor(
            relevance=args.cross, keep_threshold=threshold, tokenizer="words"
        )
        ratios = []
        task = TASKS["nq20"]
        hit = 0
        for rec in rows:
            query, docs = task.request(rec)
            words = len(task.context(rec).split())
            result = comp.compress(query, docs, Budget(tokens=int(words / 20)))
            text = result.text("\n")
            ratios.append(words / max(1, len(text.split())))
            hit += task.hit(rec, text)
        adaptive.append(
            {
                "keep_threshold": threshold,
                "ceiling": "20x",
                "answer_kept": hit / len(rows),
                "median_ratio": statistics.median(ratios),
                "p25_ratio": float(np.percentile(ratios, 25)),
                "p75_ratio": float(np.percentile(ratios, 75)),
            }
        )
        print(adaptive[-1], flush=True)
    report["adaptive"] = adaptive
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
