"""Wall time per nq20 record of the extractive compressor on this machine's CPU.

Three regimes, each over the same records:
  cold     the embedding cache is cleared before every record: every document and sentence
           is encoded (a compressor handed documents it has never seen);
  indexed  as cold, but the documents' vectors are already known, as in the pipeline, where
           the FAISS index computed them at indexing time and shares them with the compressor;
  warm     the cache persists across records, as in a service whose chunks recur,
for the sentence stage on untuned MiniLM and on the tuned ``ragzip-relevance`` (the default),
each in fp32 and with dynamic-int8 encoders, and with a cross model read in fp32, bf16
autocast, dynamic int8 and ``auto`` (which probes). Quality (hit rate) is reported beside each
timing.

    .venv/bin/python benchmarks/bench_extractive.py ../shared/bench/nq20-dev.jsonl.gz \
        --records 200 --target 20 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from ragzip.compressors.registry import compressors
from ragzip.encoders.bi_encoder import document_text
from ragzip.eval.benchmarks import TASKS, load_jsonl
from ragzip.types import Budget


def run(records: list[dict], target: float, path: str, regime: str, cross: str | None) -> dict:
    quantize = "int8" if path.endswith("int8") else None
    params: dict = {"tokenizer": "words", "quantize": quantize}
    if path.startswith("minilm"):
        params["sentence_model"] = None
    if path.startswith("cross-"):
        params.update(relevance=cross, dtype=path.removeprefix("cross-"))
    comp = compressors.build({"type": "extractive", "params": params})
    comp.warm_up()
    encoder = comp.ranker.encoder  # documents (what a FAISS index shares)
    caches = [e.cache for e in {id(x): x for x in (encoder, comp.sentence_encoder)}.values()]
    for cache in caches:
        if cache is not None:
            cache.clear()
    task = TASKS["nq20"]
    times, hits = [], 0
    for rec in records:
        words = int(len(task.context(rec).split()) / target)
        query, docs = task.request(rec)
        for cache in caches if regime != "warm" else ():
            if cache is not None:
                cache.clear()
        if regime == "indexed":  # what FaissRetriever.add/load primes the shared encoder with
            texts = [document_text(d) for d in docs]
            encoder.prime(texts, encoder.encode(texts))
        start = time.perf_counter()
        result = comp.compress(query, docs, Budget(tokens=words))
        times.append(time.perf_counter() - start)
        hits += task.hit(rec, result.text("\n"))
    return {
        "path": path,
        "regime": regime,
        "records": len(records),
        "mean_s": round(statistics.mean(times), 4),
        "median_s": round(statistics.median(times), 4),
        "p95_s": round(sorted(times)[int(0.95 * (len(times) - 1))], 4),
        "hit_rate": round(hits / len(records), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", help="nq20-dev.jsonl.gz")
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--target", type=float, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    ap.add_argument(
        "--paths",
        default="minilm-fp32,minilm-int8,tuned-fp32,tuned-int8",
        help="comma-separated: minilm-fp32, minilm-int8 (untuned sentence stage), tuned-fp32, "
        "tuned-int8 (ragzip-relevance), cross-fp32, cross-bf16, cross-int8, cross-auto",
    )
    ap.add_argument("--cross", default=None, help="cross model directory for cross-* paths")
    ap.add_argument("--regimes", default="cold,indexed,warm")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    records = load_jsonl(args.bench)[: args.records]
    rows = []
    for path in args.paths.split(","):
        for regime in args.regimes.split(","):
            row = run(records, args.target, path, regime, args.cross)
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "target": args.target,
    }
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"meta": meta, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
