"""Bounded load test of the REST sidecar (``ragzip serve``) on loopback.

Starts ``ragzip serve`` in a subprocess on 127.0.0.1, then:

1. in-process: the compressor called directly on each payload (median latency);
2. one client, sequential requests: the same payloads over HTTP, so the difference of the
   medians is the sidecar's overhead (HTTP, JSON, validation, thread hop);
3. ``--clients`` concurrent clients for ``--duration`` seconds: throughput, p50/p99 latency,
   failed (non-200) and lost (transport errors, timeouts) requests.

Payload: nq20-like, a question and 20 passages (the bundled demo corpus, repeated with new
ids), budget ratio 4, the server's default compressor (extractive on minilm). Every request
has a new query string; the passages repeat, so their embeddings come from the cache after
the first request (as with a hot corpus in production).

Usage:
    python benchmarks/bench_rest_load.py --clients 32 --duration 30 \
        --out benchmarks/results/rest_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx


def payloads(n: int = 64) -> list[dict[str, Any]]:
    data = resources.files("ragzip.data")
    corpus = [json.loads(x) for x in data.joinpath("demo_corpus.jsonl").read_text().splitlines()]
    questions = json.loads(data.joinpath("demo_questions.json").read_text())
    questions = [q["question"] if isinstance(q, dict) else str(q) for q in questions]
    docs = [
        {"id": f"{d['id']}-{i}", "text": d["text"], "metadata": {"title": d["title"]}}
        for i, d in enumerate((corpus * 2)[:20])
    ]
    return [
        {"query": f"{questions[i % len(questions)]} ({i})", "documents": docs, "budget": 4}
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def start_server(port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "ragzip.cli.main", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--compressor", args.compressor, "--log-level", "warning",
        "--max-concurrency", str(args.max_concurrency), "--max-queue", str(args.max_queue),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not become ready")
        time.sleep(0.2)


async def load(url: str, bodies: list[dict[str, Any]], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    failed = lost = 0
    status: dict[str, int] = {}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker(w: int) -> None:
            nonlocal failed, lost
            i = w
            while time.monotonic() < stop:
                body = bodies[i % len(bodies)]
                body = {**body, "query": f"{body['query']} [{i}]"}  # no query cache hits
                i += clients
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/compress", json=body)
                except httpx.HTTPError:
                    lost += 1
                    continue
                status[str(r.status_code)] = status.get(str(r.status_code), 0) + 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    failed += 1

        began = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.monotonic() - began
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "ok": len(latencies),
        "failed": failed,
        "lost": lost,
        "status": status,
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--compressor", default="extractive")
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    from ragzip import build_compressor

    bodies = payloads()
    compressor = build_compressor(args.compressor)
    for body in bodies[:16]:  # load the model, warm torch and the passage embeddings
        compressor.compress(body["query"], body["documents"], body["budget"])
    in_process = []
    for i, body in enumerate(bodies):  # new query strings, as in the HTTP phases
        body = {**body, "query": f"{body['query']} <{i}>"}
        start = time.perf_counter()
        compressor.compress(body["query"], body["documents"], body["budget"])
        in_process.append(time.perf_counter() - start)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_server(port, args)
    url = f"http://127.0.0.1:{port}"
    try:
        seq = [dict(b, query=b["query"] + " again") for b in bodies]
        for b in seq[:4]:  # warm the connection and the server's caches
            httpx.post(f"{url}/v1/compress", json=b, timeout=60)
        single = asyncio.run(load(url, seq, 1, min(10.0, args.duration)))
        concurrent = asyncio.run(load(url, bodies, args.clients, args.duration))
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    batched = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(("ragzip_batcher_calls_total", "ragzip_batcher_forwards_total"))
    }
    in_p50 = statistics.median(in_process) * 1000
    result = {
        "payload": "nq20-like: 1 question, 20 demo passages, ratio 4",
        "compressor": args.compressor,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "in_process_p50_ms": round(in_p50, 1),
        "single_client": single,
        "sidecar_overhead_p50_ms": round(single["p50_ms"] - in_p50, 1),
        "concurrent": concurrent,
        "encoder_batching": batched,
        "server": {"max_concurrency": args.max_concurrency, "max_queue": args.max_queue},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
