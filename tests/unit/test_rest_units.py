"""Plumbing of the REST sidecar: settings precedence, spec keys, the batcher, the limiter."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")

from ragzip.adapters.rest.batching import EmbeddingBatcher
from ragzip.adapters.rest.errors import Overloaded, PayloadTooLarge, RequestTimeout
from ragzip.adapters.rest.hardening import Limiter, check_input_size
from ragzip.adapters.rest.service import spec_key
from ragzip.adapters.rest.settings import ServerSettings


def test_settings_precedence_file_then_env_then_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("port: 7000\nmax_queue: 5\napi_key: from-file\ncompressor: truncate\n")
    monkeypatch.setenv("RAGZIP_MAX_QUEUE", "9")
    s = ServerSettings.load(config, port=7100, api_key=None)
    assert (s.port, s.max_queue, s.api_key, s.compressor) == (7100, 9, "from-file", "truncate")
    monkeypatch.setenv("RAGZIP_COMPRESSOR", '{"type": "extractive", "params": {}}')
    assert ServerSettings.load(config).compressor == {"type": "extractive", "params": {}}


def test_settings_reject_unknown_keys(tmp_path: Path) -> None:
    config = tmp_path / "server.json"
    config.write_text('{"prot": 1}')
    with pytest.raises(ValueError, match="prot"):
        ServerSettings.load(config)


def test_spec_keys_are_canonical() -> None:
    assert spec_key("truncate") == spec_key({"type": "truncate", "params": {}})
    assert spec_key({"params": {"b": 1, "a": 2}, "type": "x"}) == spec_key(
        {"type": "x", "params": {"a": 2, "b": 1}}
    )
    assert spec_key("x") != spec_key({"type": "x", "params": {"a": 1}})


def test_input_limits_name_the_setting() -> None:
    count = lambda text: len(text.split())  # noqa: E731
    assert check_input_size("q", ["a b", "c"], max_documents=2, max_tokens=4, count=count) == 4
    with pytest.raises(PayloadTooLarge, match="max_documents"):
        check_input_size("", ["a"] * 3, max_documents=2, max_tokens=99, count=count)
    with pytest.raises(PayloadTooLarge, match="max_tokens_per_request"):
        check_input_size("q", ["a b c d"], max_documents=2, max_tokens=4, count=count)


def test_batcher_merges_concurrent_calls_and_returns_each_its_rows() -> None:
    forwards: list[int] = []
    gate = threading.Event()

    def embed(texts: list[str]) -> np.ndarray:
        gate.wait(5)  # the first forward blocks until every caller has queued up
        forwards.append(len(texts))
        return np.array([[float(t)] for t in texts])

    batcher = EmbeddingBatcher(embed, window_s=0.0)
    inputs = [[str(i), str(i + 100)] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batcher, texts) for texts in inputs]
        deadline = time.monotonic() + 5
        while batcher.calls < 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        gate.set()
        results = [f.result() for f in futures]
    for texts, rows in zip(inputs, results, strict=True):
        assert rows[:, 0].tolist() == [float(t) for t in texts]
    assert sum(forwards) == 16
    assert len(forwards) <= 2  # the first caller alone, then everyone who queued meanwhile


def test_batcher_passes_errors_to_every_caller_of_the_batch() -> None:
    def fail(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model broke")

    with pytest.raises(RuntimeError, match="model broke"):
        EmbeddingBatcher(fail)(["a"])


async def test_limiter_bounds_concurrency_queue_and_time() -> None:
    limiter = Limiter(max_concurrency=1, max_queue=1, timeout_s=0.3, retry_after_s=2)
    first = asyncio.ensure_future(limiter.run(time.sleep, 0.2))
    await asyncio.sleep(0.02)
    second = asyncio.ensure_future(limiter.run(lambda: "queued"))
    await asyncio.sleep(0.02)
    with pytest.raises(Overloaded) as refused:  # one running, one waiting: full
        await limiter.run(lambda: None)
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "2"
    await first
    assert await second == "queued"
    with pytest.raises(RequestTimeout):
        await limiter.run(time.sleep, 1.0)
    assert limiter.busy == 1  # the timed-out thread still holds its slot...
    with pytest.raises(Overloaded) as late:  # ...so a waiter gives up at its deadline: 503
        await limiter.run(lambda: None)
    assert late.value.status == 503
    await asyncio.sleep(1.0)
    assert limiter.busy == 0


def test_batcher_starts_a_new_forward_past_max_texts() -> None:
    gate = threading.Event()
    forwards: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        gate.wait(5)
        forwards.append(texts)
        return np.array([[float(t)] for t in texts])

    batcher = EmbeddingBatcher(embed, window_s=0.0, max_texts=3)
    inputs = [["0"], ["1", "2"], ["3", "4"], ["5"]]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher, inputs[0])]
        while batcher.calls < 1:
            time.sleep(0.001)
        futures += [pool.submit(batcher, texts) for texts in inputs[1:]]
        while batcher.calls < 4:
            time.sleep(0.001)
        gate.set()
        results = [f.result() for f in futures]
    for texts, rows in zip(inputs, results, strict=True):
        assert rows[:, 0].tolist() == [float(t) for t in texts]
    assert all(len(texts) <= 4 for texts in forwards)  # 3 texts, plus the call that crosses
    assert batcher.forwards == len(forwards) >= 2
    assert batcher.stats() == {"calls": 4, "forwards": len(forwards), "texts": 6}
