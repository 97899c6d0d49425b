"""Prometheus metrics of one app (a private registry, so several apps can share a process)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RATIOS = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32, 64)


class Metrics:
    """The server's counters and histograms.

    Args:
        encoders: Returns the bi-encoders whose embedding caches and batchers are reported.
    """

    def __init__(self, encoders: Callable[[], Iterable[Any]] = tuple) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ragzip_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "ragzip_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.in_flight = Gauge("ragzip_requests_in_flight", "requests being served", registry=r)
        self.computing = Gauge("ragzip_compute_slots_busy", "compute slots in use", registry=r)
        self.waiting = Gauge("ragzip_compute_queue", "requests waiting for a slot", registry=r)
        self.rejected = Counter(
            "ragzip_rejected", "requests refused by a limit", ["reason"], registry=r
        )
        self.tokens_in = Counter(
            "ragzip_tokens_in", "tokens before compression", ["compressor"], registry=r
        )
        self.tokens_out = Counter(
            "ragzip_tokens_out", "tokens after compression", ["compressor"], registry=r
        )
        self.ratio = Histogram(
            "ragzip_compression_ratio",
            "tokens_before / tokens_after",
            ["compressor"],
            buckets=_RATIOS,
            registry=r,
        )
        self.compressors_built = Counter(
            "ragzip_compressors_built", "compressors built from specs (cache misses)", registry=r
        )
        r.register(_EncoderCollector(encoders))

    def observe_compression(self, compressor: str, before: int, after: int) -> None:
        self.tokens_in.labels(compressor).inc(before)
        self.tokens_out.labels(compressor).inc(after)
        if after > 0:
            self.ratio.labels(compressor).observe(before / after)


class _EncoderCollector(Collector):
    """Embedding-cache hits/misses and batching counts of the encoders in use."""

    def __init__(self, encoders: Callable[[], Iterable[Any]]) -> None:
        self.encoders = encoders

    def collect(self) -> Iterator[Metric]:
        from ragzip.adapters.rest.batching import batcher_of

        hits = CounterMetricFamily(
            "ragzip_embedding_cache_hits", "bi-encoder cache hits", labels=["encoder"]
        )
        misses = CounterMetricFamily(
            "ragzip_embedding_cache_misses", "bi-encoder cache misses", labels=["encoder"]
        )
        size = GaugeMetricFamily(
            "ragzip_embedding_cache_items", "embeddings cached", labels=["encoder"]
        )
        calls = CounterMetricFamily(
            "ragzip_batcher_calls", "encode calls sent to the micro-batcher", labels=["encoder"]
        )
        forwards = CounterMetricFamily(
            "ragzip_batcher_forwards", "batched forwards run", labels=["encoder"]
        )
        seen: set[int] = set()
        for encoder in self.encoders():
            if id(encoder) in seen:
                continue
            seen.add(id(encoder))
            name = str(getattr(encoder, "model_name", type(encoder).__name__))
            cache = getattr(encoder, "cache", None)
            if cache is not None:
                hits.add_metric([name], float(getattr(cache, "hits", 0)))
                misses.add_metric([name], float(getattr(cache, "misses", 0)))
                size.add_metric([name], float(len(cache)))
            batcher = batcher_of(encoder)
            if batcher is not None:
                calls.add_metric([name], float(batcher.calls))
                forwards.add_metric([name], float(batcher.forwards))
        yield from (hits, misses, size, calls, forwards)


class MetricsMiddleware:
    """Counts requests by route template, method and status, and times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracked)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(path, scope.get("method", "?"), str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)
