"""Code-needle quality and time per file for the ``code`` compressor, several settings at once.

One process, one compressor per setting, every target: the LM scores cached by the first
target are reused by the next (as a sidecar serving the same file twice would), so the time per
file is reported for the first target only (cold) and for the later ones (warm).

Usage:
    python benchmarks/bench_code.py ../shared/bench/code-dev.jsonl.gz --targets 4 8 \
        --settings '{"scoring": "blend"}' '{"scoring": "bi"}' --out benchmarks/results/code.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from ragzip import build_compressor
from ragzip.eval.benchmarks import load_jsonl, run_eval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--targets", type=float, nargs="+", default=[4.0, 8.0])
    parser.add_argument("--settings", nargs="+", default=['{"scoring": "blend"}'])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = load_jsonl(args.file)[: args.limit]
    rows = []
    for setting in args.settings:
        params = json.loads(setting)
        compressor = build_compressor({"type": "code", "params": {**params, "tokenizer": "words"}})
        compressor.warm_up()
        for k, target in enumerate(args.targets):
            summary = run_eval("code-needle", records, compressor, target)
            row = {
                "params": params,
                "target": target,
                "hit_rate": round(summary.hit_rate, 4),
                "within_budget": summary.within_budget,
                "median_ratio": round(summary.median_ratio, 2),
                "seconds_per_file": round(summary.seconds_per_record, 3),
                "median_seconds": round(summary.median_seconds, 3),
                "lm_cache": "cold" if k == 0 else "warm",
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {
        "set": Path(args.file).name,
        "files": len(records),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}",
        "rows": rows,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
