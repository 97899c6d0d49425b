"""Where the code compressor's coarse stage ranks the target function of each code-needle task.

For every task the file is chunked as the ``code`` compressor chunks it, the chunks are scored
by :class:`~ragzip.compressors.code.scoring.ChunkScorer` (the settings given), and the rank of
the chunk holding the target's ``def`` line is recorded: the share ranked first and among the
5 best, per setting, with the median seconds of scoring one file (the first file includes
loading the models).

Usage:
    python benchmarks/code_rank.py ../shared/bench/code-dev.jsonl.gz \
        --settings '{"encoder": "minilm", "mode": "bi"}' \
        '{"encoder": "ragzip-code", "mode": "bi"}' --out benchmarks/results/code_rank.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ragzip.compressors.code.chunking import chunk_code, comment_prefix, name_words
from ragzip.compressors.code.scoring import ChunkScorer
from ragzip.eval.benchmarks import load_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--settings", nargs="+", default=['{"mode": "bi"}'])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    records = load_jsonl(args.file)[: args.limit]
    rows = []
    for setting in args.settings:
        scorer = ChunkScorer(**json.loads(setting))
        ranks = []
        seconds = []
        for r in records:
            lines = r["code"].splitlines()
            chunks = [c for c in chunk_code(r["code"], path=r["path"]) if c.end > c.start]
            texts = ["\n".join(lines[c.start : c.end]) for c in chunks]
            keep = [k for k, t in enumerate(texts) if t.strip()]
            chunks, texts = [chunks[k] for k in keep], [texts[k] for k in keep]
            names = [name_words(c.name) for c in chunks]
            start = time.perf_counter()
            scores = scorer.score(r["query"], texts, comment_prefix("python"), prefixes=names)
            seconds.append(time.perf_counter() - start)
            line = r["target_lines"][0] - 1
            target = next(k for k, c in enumerate(chunks) if c.start <= line < c.end)
            ranks.append(int((scores > scores[target]).sum()))
        ranks_a = np.array(ranks)
        row = {
            "setting": json.loads(setting),
            "tasks": len(ranks),
            "first": round(float((ranks_a == 0).mean()), 3),
            "top5": round(float((ranks_a < 5).mean()), 3),
            "median_seconds": round(float(np.median(seconds)), 3),
        }
        rows.append(row)
        print(json.dumps(row))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
