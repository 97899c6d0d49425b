"""Chooses a cross model's combination weights on held-out *training* records.

``ragzip train`` runs on nq20-dev records 200-999 with ``--val-share 0.125`` hold out
900-999 (the last 1/8 of that range); this grid runs on those 100 records only, so records
0-199 stay the untouched validation split behind every figure in the README. For the cross
model trained that way every weight tied or lost against the bi-encoder alone
(``benchmarks/results/relevance_tuning.json``). Cross-encoder outputs are
memoised per (question, passages) inside this script, so the grid costs one model pass per
record.

    .venv/bin/python benchmarks/tune_relevance.py ../shared/bench/nq20-dev.jsonl.gz \
        --model runs/relevance-v1 --records 900:1000 --out benchmarks/results/relevance_tuning.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.compressors.token_prune import TokenPruneCompressor
from ragzip.encoders import relevance
from ragzip.eval.benchmarks import load_jsonl, run_eval
from ragzip.training.corpus import parse_records


def memoise_scores() -> None:
    """Memoises the cross model's outputs per (model, question, passages) in this process."""
    original = relevance.RelevanceModel.score
    memo: dict[Any, Any] = {}

    def score(self: Any, query: str, passages: Any, titles: Any = None) -> Any:
        key = (self.model_name, query, tuple(passages), tuple(titles or ()))
        if key not in memo:
            memo[key] = original(self, query, passages, titles)
        return memo[key]

    relevance.RelevanceModel.score = score  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("--model", default="ragzip-relevance")
    parser.add_argument("--records", default="900:1000")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    memoise_scores()
    rows = load_jsonl(args.bench)[parse_records(args.records)]
    results: list[dict[str, Any]] = []
    grid = itertools.product([0.0, 0.5, 1.0], [0.0, 0.25, 0.5, 1.0])
    for passage_weight, cross_weight in grid:
        comp = ExtractiveCompressor(
            relevance=args.model,
            passage_weight=passage_weight,
            cross_weight=cross_weight,
            tokenizer="words",
        )
        for target in (20, 50):
            hit = run_eval("nq20", rows, comp, target).hit_rate
            results.append(
                {
                    "compressor": "extractive",
                    "passage_weight": passage_weight,
                    "cross_weight": cross_weight,
                    "target": target,
                    "hit": hit,
                }
            )
            print(results[-1], flush=True)
    for sentence_weight in (0.0, 0.25, 0.5, 1.0):
        comp2 = TokenPruneCompressor(args.model, sentence_weight=sentence_weight, tokenizer="words")
        hit = run_eval("nq20", rows, comp2, 50).hit_rate
        results.append(
            {
                "compressor": "token-prune",
                "sentence_weight": sentence_weight,
                "target": 50,
                "hit": hit,
            }
        )
        print(results[-1], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
