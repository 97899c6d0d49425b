"""Load with faults against the REST sidecar (``ragzip serve``) on loopback.

Starts its own ``redis-server`` (no persistence) and ``ragzip serve`` (default compressor
extractive) with ``RAGZIP_CACHE=memory+redis://127.0.0.1:PORT/0``, then ``--clients``
concurrent clients post nq20-like payloads (a question and 20 passages, built as in
``bench_rest_load.py``, every query string new) to ``/v1/compress`` until ``--requests`` were
attempted or ``--duration`` seconds passed, whichever comes first. On the way, with progress
the larger of attempted / ``--requests`` and elapsed / ``--duration``:

- at 30%, ``redis-server`` is killed (SIGKILL);
- at 55%, it is started again on the same port (empty);
- at 85%, ``/metrics`` is scraped and ``ragzip serve`` gets SIGTERM (graceful shutdown: it
  stops accepting connections, finishes the requests in flight and exits).

Every request is classified: ``ok`` (200), ``failed`` by HTTP status, ``refused`` (connect
error or connect timeout: the server was not accepting, the request never left the client;
after SIGTERM such a client stops), ``lost`` (sent, no complete response: read or write
error, remote protocol error, read or write timeout) or ``other`` (any other client error).
The target is 0 lost; the script exits 1 if a request was lost or the server did not exit by
itself after SIGTERM.

Also recorded: the server's exit code and seconds from SIGTERM to exit; Redis ``INFO``
(commands processed, per command, clients, keys) after warm-up, before the kill and at the
end (the restarted instance counts from zero); the cache and request counters of
``/metrics`` just before SIGTERM; the requests in flight at SIGTERM and what became of them;
the server log without its access lines.

Usage:
    python benchmarks/bench_rest_faults.py --requests 600 --clients 32 --duration 40 \
        --out benchmarks/results/rest_faults.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rest_load import payloads, percentile

KILL_REDIS, RESTART_REDIS, SIGTERM_SERVER = 0.30, 0.55, 0.85
REFUSED = (httpx.ConnectError, httpx.ConnectTimeout)
LOST = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
)
PROBES = {"info", "ping", "client", "hello", "command", "config", "dbsize"}  # this script's
METRICS = (
    "ragzip_requests_total",
    "ragzip_rejected_total",
    "ragzip_requests_in_flight",
    "ragzip_compute_",
    "ragzip_batcher_",
    "ragzip_compressors_built_total",
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "rest_faults.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """Terminates ``proc`` if it still runs, then kills it after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- redis ---------------------------------------------------------------------------------------
def start_redis(port: int, log: Path) -> subprocess.Popen[bytes]:
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found (apt-get install -y redis-server)")
    cmd = [
        exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as client:
                if client.ping():
                    return proc
        except (redis.RedisError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"redis-server did not start on port {port}; see {log}")
        time.sleep(0.05)


def redis_info(port: int) -> dict[str, Any]:
    """Commands processed (all, and not this script's probes), clients and keys."""
    import redis

    with redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2) as client:
        stats = client.info("stats")
        clients = client.info("clients")
        commands = client.info("commandstats")
        keys = client.dbsize()
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in commands.items()}
    return {
        "total_commands_processed": int(stats["total_commands_processed"]),
        "commands_not_from_this_script": sum(
            n for name, n in calls.items() if name.split("|")[0] not in PROBES
        ),
        "commandstats": calls,
        "connected_clients_besides_this_probe": int(clients["connected_clients"]) - 1,
        "keys": int(keys),
    }


# -- the sidecar ---------------------------------------------------------------------------------
def start_sidecar(
    port: int, redis_port: int, args: argparse.Namespace, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "ragzip.cli.main", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--compressor", "extractive", "--log-level", "info",
        "--max-concurrency", str(args.max_concurrency), "--max-queue", str(args.max_queue),
        "--graceful-shutdown", str(args.graceful_shutdown),
        "--shutdown-drain", str(args.shutdown_drain),
    ]  # fmt: skip
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAGZIP_CACHE": f"memory+redis://127.0.0.1:{redis_port}/0",
    }
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not become ready; its log:\n{log.read_text()}")
        time.sleep(0.2)


def metric_samples(text: str) -> dict[str, float]:
    """The request, limit, batching and any cache samples of a Prometheus text."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.split("{")[0].endswith("_created"):
            continue
        if "cache" in name or name.startswith(METRICS):
            samples[name] = float(value)
    return samples


def server_log(log: Path) -> dict[str, Any]:
    """Access lines counted by status; every other line kept (the last 60)."""
    access: Counter[str] = Counter()
    other = []
    for line in log.read_text(errors="replace").splitlines():
        if ' - "' in line and ' HTTP/1.1" ' in line:
            access[line.rsplit('" ', 1)[1].split(" ")[0]] += 1
        elif line.strip():
            other.append(line)
    return {
        "access_lines_by_status": dict(access),
        "tracebacks": sum("Traceback" in line for line in other),
        "other_lines": other[-60:],
    }


# -- the load and the faults ---------------------------------------------------------------------
class Run:
    """What the clients and the fault schedule share: counters, phase, timeline, records."""

    def __init__(self, total: int, seconds: float) -> None:
        self.total = total
        self.seconds = seconds
        self.began = time.monotonic()
        self.attempted = 0
        self.phase = "redis up"
        self.sigterm_at: float | None = None  # seconds since ``began``
        self.clients_done = 0
        self.records: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []

    def now(self) -> float:
        return time.monotonic() - self.began

    def progress(self) -> float:
        return max(self.attempted / self.total, self.now() / self.seconds)

    def more(self) -> bool:
        return self.attempted < self.total and self.now() < self.seconds

    def event(self, name: str, **extra: Any) -> None:
        self.timeline.append(
            {"event": name, "t_s": round(self.now(), 3), "attempted": self.attempted, **extra}
        )


async def client_loop(
    run: Run, client: httpx.AsyncClient, bodies: list[dict[str, Any]], w: int, clients: int
) -> None:
    i = w
    prev: dict[str, Any] = {}
    try:
        while run.more():
            run.attempted += 1
            body = bodies[i % len(bodies)]
            body = {**body, "query": f"{body['query']} [{i}]"}  # no query cache hits
            rec: dict[str, Any] = {"n": i, "client": w, "phase": run.phase, "t_s": run.now()}
            if prev:  # a request right after a response may go out on a closing keep-alive
                rec["prev_outcome"], rec["prev_end_s"] = prev["outcome"], prev["end_s"]
            i += clients
            start = time.perf_counter()
            try:
                r = await client.post("/v1/compress", json=body)
                rec["status"] = r.status_code
                rec["outcome"] = "ok" if r.status_code == 200 else "failed"
                rec["connection"] = r.headers.get("connection", "")  # "close" announces it
                if r.status_code != 200:
                    rec["detail"] = r.text[:300]
            except httpx.HTTPError as exc:
                kind = "refused" if isinstance(exc, REFUSED) else "other"
                rec["outcome"] = "lost" if isinstance(exc, LOST) else kind
                rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
            rec["ms"] = (time.perf_counter() - start) * 1000
            rec["end_s"] = run.now()
            run.records.append(rec)
            prev = rec
            if rec["outcome"] == "refused" and run.sigterm_at is not None:
                return  # the server stopped accepting: this client is done
    finally:
        run.clients_done += 1


async def until(run: Run, fraction: float, clients: int) -> None:
    while run.progress() < fraction and run.clients_done < clients:
        await asyncio.sleep(0.01)


async def faults(
    run: Run,
    procs: dict[str, subprocess.Popen[bytes]],
    redis_port: int,
    url: str,
    args: argparse.Namespace,
    logs: dict[str, Path],
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    await until(run, KILL_REDIS, args.clients)
    found["redis_before_kill"] = await asyncio.to_thread(redis_info, redis_port)
    procs["redis"].kill()
    await asyncio.to_thread(procs["redis"].wait)
    run.phase = "redis down"
    run.event("redis killed (SIGKILL)", progress=round(run.progress(), 3))

    await until(run, RESTART_REDIS, args.clients)
    procs["redis"] = await asyncio.to_thread(start_redis, redis_port, logs["redis"])
    run.phase = "redis back"
    run.event("redis restarted", progress=round(run.progress(), 3))

    await until(run, SIGTERM_SERVER, args.clients)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as ctl:
            found["metrics_text"] = (await ctl.get("/metrics")).text
    except httpx.HTTPError as exc:
        found["metrics_text"] = f"scrape failed: {type(exc).__name__}: {exc}"
    server = procs["server"]
    server.send_signal(signal.SIGTERM)
    run.sigterm_at = run.now()
    run.phase = "after SIGTERM"
    run.event("server SIGTERM", progress=round(run.progress(), 3))
    deadline = time.monotonic() + args.graceful_shutdown + 30
    while server.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    exited = server.poll() is not None
    found["server_exit"] = {
        "exited_by_itself": exited,
        "exit_code": server.returncode if exited else None,
        "seconds_after_sigterm": round(run.now() - run.sigterm_at, 3) if exited else None,
    }
    run.event("server exited" if exited else "server still running", code=server.returncode)
    return found


async def load(
    bodies: list[dict[str, Any]],
    procs: dict[str, subprocess.Popen[bytes]],
    redis_port: int,
    url: str,
    args: argparse.Namespace,
    logs: dict[str, Path],
) -> tuple[Run, dict[str, Any]]:
    run = Run(args.requests, args.duration)
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    timeout = httpx.Timeout(args.timeout, connect=5)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        schedule = asyncio.create_task(faults(run, procs, redis_port, url, args, logs))
        loops = [client_loop(run, client, bodies, w, args.clients) for w in range(args.clients)]
        await asyncio.gather(*loops)
        run.event("clients done")
        found = await schedule
    return run, found


# -- the report ----------------------------------------------------------------------------------
def summarise(run: Run) -> dict[str, Any]:
    outcomes = Counter(r["outcome"] for r in run.records)
    ok_ms = [r["ms"] for r in run.records if r["outcome"] == "ok"]
    phases: dict[str, dict[str, Any]] = {}
    for name in ("redis up", "redis down", "redis back", "after SIGTERM"):
        recs = [r for r in run.records if r["phase"] == name]
        ms = [r["ms"] for r in recs if r["outcome"] == "ok"]
        phases[name] = {
            "attempted": len(recs),
            **Counter(r["outcome"] for r in recs),
            "p50_ms": round(percentile(ms, 0.50), 1),
        }
    at = run.sigterm_at
    in_flight = [r for r in run.records if at is not None and r["t_s"] < at < r["end_s"]]
    abnormal = [r for r in run.records if r["outcome"] not in ("ok", "refused")]
    refused = [r for r in run.records if r["outcome"] == "refused"]
    refused_early = [r for r in refused if r["phase"] != "after SIGTERM"]
    rounded = [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
        for r in (abnormal + refused_early)[:20]
    ]
    return {
        "attempted": len(run.records),
        "sent": len(run.records) - outcomes["refused"],
        "succeeded": outcomes["ok"],
        "failed_by_status": dict(
            Counter(str(r["status"]) for r in run.records if r["outcome"] == "failed")
        ),
        "refused": outcomes["refused"],
        "refused_before_sigterm": len(refused_early),
        "lost": outcomes["lost"],
        "other_errors": outcomes["other"],
        "p50_ms": round(percentile(ok_ms, 0.50), 1),
        "p99_ms": round(percentile(ok_ms, 0.99), 1),
        "seconds": round(max((r["end_s"] for r in run.records), default=0.0), 2),
        "by_phase": phases,
        "in_flight_at_sigterm": {
            "requests": len(in_flight),
            **dict(Counter(r["outcome"] for r in in_flight)),
            "connection_close_announced": sum(r.get("connection") == "close" for r in in_flight),
        },
        "lost_right_after_own_ok": sum(
            r["outcome"] == "lost" and r.get("prev_end_s", -1) >= r["t_s"] - 0.005
            for r in run.records
        ),
        "abnormal_requests": rounded,
    }


def table(result: dict[str, Any]) -> str:
    s, r0, r1 = result["requests"], result["redis"]["before_kill"], result["redis"]["at_end"]
    ex = result["server_exit"]
    rows = [
        ("attempted / sent", f"{s['attempted']} / {s['sent']}"),
        ("succeeded (200)", s["succeeded"]),
        ("failed by status", s["failed_by_status"] or "none"),
        ("refused (after SIGTERM)", f"{s['refused']} ({s['refused_before_sigterm']} before)"),
        ("LOST", f"{s['lost']} ({s['lost_right_after_own_ok']} sent as own 200 arrived)"),
        ("other client errors", s["other_errors"]),
        ("p50 / p99 ms (200s)", f"{s['p50_ms']} / {s['p99_ms']}"),
        ("in flight at SIGTERM", s["in_flight_at_sigterm"]),
        ("server exit", f"code {ex['exit_code']} after {ex['seconds_after_sigterm']} s"),
        ("redis cmds before kill", r0["commands_not_from_this_script"]),
        ("redis cmds after restart", r1["commands_not_from_this_script"]),
        ("redis keys at end", r1["keys"]),
    ]
    rows += [(f"  {e['event']}", f"t={e['t_s']} s, #{e['attempted']}") for e in result["timeline"]]
    rows += [(f"  phase {k}", v) for k, v in s["by_phase"].items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="total requests (at most)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds (at most)")
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--graceful-shutdown", type=float, default=30.0, help="server seconds")
    parser.add_argument(
        "--shutdown-drain", type=float, default=2.0, help="server seconds of drain on SIGTERM"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="client read timeout")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="write the JSON here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ragzip-faults-"))
    logs = {"redis": tmp / "redis.log", "server": tmp / "server.log"}
    redis_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    bodies = payloads()
    load_before = round(os.getloadavg()[0], 2)  # other processes on the machine skew latency
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["redis"] = start_redis(redis_port, logs["redis"])
        procs["server"] = start_sidecar(port, redis_port, args, logs["server"])
        started = time.monotonic()
        wait_ready(procs["server"], url, logs["server"])
        ready_s = time.monotonic() - started
        for b in bodies[:4]:  # warm the connection path and the passage embeddings
            httpx.post(f"{url}/v1/compress", json={**b, "query": b["query"] + " warm"}, timeout=60)
        after_warm = redis_info(redis_port)
        run, found = asyncio.run(load(bodies, procs, redis_port, url, args, logs))
        at_end = redis_info(redis_port)
    finally:
        stop(procs.get("server"))
        if "redis" in procs and procs["redis"].poll() is None:
            procs["redis"].kill()
            procs["redis"].wait()

    result = {
        "payload": "nq20-like: 1 question, 20 demo passages, ratio 4, every query new",
        "compressor": "extractive",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1m": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "server": {
            "max_concurrency": args.max_concurrency,
            "max_queue": args.max_queue,
            "graceful_shutdown_s": args.graceful_shutdown,
            "shutdown_drain_s": args.shutdown_drain,
            "ragzip_cache": f"memory+redis://127.0.0.1:{redis_port}/0",
            "seconds_to_ready": round(ready_s, 1),
        },
        "load": {"clients": args.clients, "max_requests": args.requests, "max_s": args.duration},
        "requests": summarise(run),
        "server_exit": found["server_exit"],
        "timeline": run.timeline,
        "redis": {
            "after_warm_up": after_warm,
            "before_kill": found["redis_before_kill"],
            "at_end": at_end,
        },
        "metrics_before_sigterm": metric_samples(found["metrics_text"])
        or found["metrics_text"][:500],
        "server_log": server_log(logs["server"]),
    }
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}; server and redis logs in {tmp}")
    bad = result["requests"]["lost"] > 0 or not result["server_exit"]["exited_by_itself"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
