"""RedisCache against a real redis-server: sharing, TTL, and outages that never raise."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest

pytest.importorskip("redis")

from ragzip.cache import ArrayCache, MemoryCache, RedisCache, TieredCache, make_cache

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"test:{uuid.uuid4().hex[:8]}:"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ragzip.cache" and r.levelno == logging.WARNING]


def test_round_trip_and_batches(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix=_prefix())
    assert cache.get("a") is None
    cache.put("a", b"\x00binary\xff")
    assert cache.get("a") == b"\x00binary\xff"
    cache.put_many({f"k{i}": bytes([i]) * i for i in range(50)})
    got = cache.get_many([f"k{i}" for i in range(60)])
    assert got == {f"k{i}": bytes([i]) * i for i in range(50)}
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.errors, stats.backend) == (51, 11, 0, "redis")


def test_prefix_isolates_and_clear_drops_only_its_keys(redis_url: str) -> None:
    one, two = RedisCache(redis_url, prefix=_prefix()), RedisCache(redis_url, prefix=_prefix())
    one.put("k", b"one")
    two.put("k", b"two")
    assert one.get("k") == b"one" and two.get("k") == b"two"
    one.clear()
    assert one.get("k") is None and two.get("k") == b"two"
    raw = RedisCache(redis_url, prefix="")
    assert raw.get(two.prefix + "k") == b"two"


def test_ttl_expires_entries(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix=_prefix(), ttl_s=1)
    cache.put("short", b"lived")
    assert cache.get("short") == b"lived"
    assert 0 < cache._client.ttl(cache.prefix + "short") <= 1
    time.sleep(1.2)
    assert cache.get("short") is None


def test_two_replicas_share_entries(redis_url: str) -> None:
    prefix = _prefix()
    spec = f"memory+{redis_url}?prefix={prefix}"
    replica_a, replica_b = make_cache(spec), make_cache(spec)
    arrays_a, arrays_b = ArrayCache(replica_a, "emb"), ArrayCache(replica_b, "emb")
    vector = np.linspace(0, 1, 384, dtype=np.float32)
    arrays_a.put("doc-1", vector)
    got = arrays_b.get("doc-1")
    assert got is not None and got.dtype == np.float32
    np.testing.assert_array_equal(got, vector)
    assert isinstance(replica_b, TieredCache)
    assert replica_b.tiers[0].get("emb:doc-1") is not None  # back-filled into b's memory


def test_outage_degrades_to_misses_with_one_warning(
    redis_server_factory: Callable[..., object], caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    url, port = server.url, server.port  # type: ignore[attr-defined]
    redis = RedisCache(url, prefix=_prefix(), timeout_s=0.2, retry_after_s=0.2)
    memory = MemoryCache()
    tiered = TieredCache(memory, redis)
    tiered.put("kept", b"in memory and redis")
    assert redis.get("kept") == b"in memory and redis"
    server.stop()  # type: ignore[attr-defined]

    caplog.set_level(logging.DEBUG, logger="ragzip.cache")
    for _ in range(3):  # the first failure opens the breaker: no more calls for 0.2 s
        assert redis.get("kept") is None
        redis.put("new", b"dropped")
        assert redis.get_many(["kept", "new"]) == {}
        assert tiered.get("kept") == b"in memory and redis"  # memory still serves
        assert tiered.get("other") is None
    time.sleep(0.25)  # breaker half-open: one more try, still down, no second warning
    assert redis.get("kept") is None
    tiered.put("during", b"outage")
    # 17 calls, but the breaker let only the first one and the half-open try reach Redis:
    # no per-request timeouts piled up
    assert 2 <= redis.stats().errors <= 4
    warnings = _warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert f"Redis cache at {url} unreachable" in message
    assert "serving from local compute" in message
    assert memory.get("during") == b"outage"

    redis_server_factory(port)  # back on the same port, empty
    time.sleep(0.25)
    redis.put("again", b"works")
    assert redis.get("again") == b"works"
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert len(_warnings(caplog)) == 1


def test_unreachable_from_the_start_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", timeout_s=0.2, retry_after_s=60)
    assert cache.get("a") is None
    cache.put_many({"a": b"1"})
    assert cache.get_many(["a", "b"]) == {}
    assert cache.stats().errors == 1  # the breaker held the other calls back
    cache.clear()
    assert len(_warnings(caplog)) == 1
    assert not cache.available


def test_password_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache("redis://user:s3cret@127.0.0.1:1/0", timeout_s=0.2)
    assert cache.get("a") is None
    assert "s3cret" not in caplog.text and "s3cret" not in repr(cache)
