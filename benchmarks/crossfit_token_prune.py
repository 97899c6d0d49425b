"""Token pruning on nq20 with pruners that never saw the records they are scored on.

The only question-answer data here is the evaluation file itself, so the pruner is trained
and scored by 2-fold cross-fitting: the file is cut into two halves; a pruner is trained by
``train-pruner`` (offline SmolLM2 surprisal teacher, answer words kept) on the gold passages of
the first ``--passages`` records of one half and scores the other half; the two halves'
predictions together cover every record once.

    .venv/bin/python benchmarks/crossfit_token_prune.py ../shared/bench/nq20-dev.jsonl.gz \
        --targets 20 50 --work runs/crossfit --out benchmarks/results/token_prune_nq20_crossfit.json

Trained pruners and predictions stay in ``--work`` (a rerun reuses finished pruners).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ragzip.compressors.token_prune import TokenPruneCompressor
from ragzip.eval.benchmarks import load_jsonl, run_eval
from ragzip.training.pruner import TrainConfig, train_pruner


def gold_corpus(records: list[dict[str, Any]], path: Path) -> Path:
    """The gold passage of each record with its question and answers, as JSONL."""
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            doc = r["documents"][r["gold_index"]]
            row = {**doc, "question": r["question"], "answers": r["answers"]}
            f.write(json.dumps(row) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", help="nq20 JSONL file (.gz accepted)")
    parser.add_argument("--targets", type=float, nargs="+", default=[20.0, 50.0])
    parser.add_argument("--passages", type=int, default=256, help="training records per fold")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=None, help="smoke runs")
    parser.add_argument("--limit", type=int, default=None, help="score only N records")
    parser.add_argument("--work", default="runs/crossfit")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    records = load_jsonl(args.bench)[: args.limit]
    half = len(records) // 2
    folds = [records[:half], records[half:]]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pruners = []
    for k, fold in enumerate(folds):  # pruner k is trained on fold k, scores the other fold
        out = work / f"pruner-{k}"
        if not (out / "ragzip_pruner.json").is_file():
            corpus = gold_corpus(fold[: args.passages], work / f"corpus-{k}.jsonl")
            config = TrainConfig(  # full fine-tuning: how the README's figures were made
                out=str(out),
                corpus=(str(corpus),),
                epochs=args.epochs,
                max_steps=args.max_steps,
                mode="full",
            )
            train_pruner(config)
        pruners.append(out)
    rows = []
    for target in args.targets:
        hits = 0.0
        parts = []
        for k in range(2):
            scored = folds[1 - k]
            comp = TokenPruneCompressor(str(pruners[k]), tokenizer="words")
            with (work / f"pred-{target:g}x-fold{1 - k}.jsonl").open("w") as preds:
                summary = run_eval("nq20", scored, comp, target, predictions=preds)
            print(f"pruner {k} on fold {1 - k}: {summary.line()}")
            hits += summary.hit_rate * summary.n
            parts.append(summary.to_dict())
        row = {"target": target, "n": len(records), "hit_rate": hits / len(records), "folds": parts}
        print(
            f"{target:g}x cross-fitted hit rate over {len(records)} records: {row['hit_rate']:.4f}"
        )
        rows.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps({"passages": args.passages, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
