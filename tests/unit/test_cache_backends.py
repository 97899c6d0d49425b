"""ragzip.cache: memory LRU, tiers, arrays, specs, content keys and the default cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ragzip.cache import (
    ArrayCache,
    ByteCache,
    CacheStats,
    DiskCache,
    MemoryCache,
    RedisCache,
    TieredCache,
    content_key,
    default_cache,
    make_cache,
    set_default_cache,
)
from ragzip.cache.base import NullCache
from ragzip.errors import ConfigError


def test_memory_round_trip_and_stats() -> None:
    cache = MemoryCache()
    assert cache.get("a") is None
    cache.put("a", b"1")
    assert cache.get("a") == b"1"
    assert cache.stats() == CacheStats(hits=1, misses=1, puts=1, errors=0, backend="memory")
    assert cache.stats().hit_rate == 0.5
    assert isinstance(cache, ByteCache)


def test_memory_evicts_least_recently_used_by_bytes() -> None:
    cache = MemoryCache(max_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now the most recent
    cache.put("c", b"cccc")  # 12 bytes > 10: b goes
    assert cache.get("b") is None
    assert cache.get("a") == b"aaaa" and cache.get("c") == b"cccc"
    assert cache.size_bytes == 8
    cache.put("huge", b"x" * 11)  # larger than the bound: not stored, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2
    cache.put("a", b"a")  # replacing counts the new size only
    assert cache.size_bytes == 5


def test_memory_get_many_put_many_and_clear() -> None:
    cache = MemoryCache()
    cache.put_many({"a": b"1", "b": b"2"})
    assert cache.get_many(["a", "b", "c", "a"]) == {"a": b"1", "b": b"2"}
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.puts) == (2, 1, 2)
    cache.clear()
    assert cache.get_many(["a"]) == {}
    assert cache.stats().puts == 0


def test_memory_is_thread_safe() -> None:
    cache = MemoryCache(max_bytes=4000)

    def work(n: int) -> None:
        for i in range(500):
            cache.put(f"{n}-{i % 50}", bytes([n]) * 10)
            value = cache.get(f"{n}-{(i * 7) % 50}")
            assert value is None or value == bytes([n]) * 10

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.size_bytes <= 4000
    assert cache.size_bytes == sum(len(v) for v in cache.get_many(list(cache._data)).values())


def test_tiered_backfills_nearer_tiers() -> None:
    near, far = MemoryCache(), MemoryCache()
    tiered = TieredCache(near, far)
    far.put_many({"x": b"far", "y": b"far-y"})
    near.put("y", b"near-y")
    assert tiered.get_many(["x", "y", "z"]) == {"x": b"far", "y": b"near-y"}
    assert near.get("x") == b"far"  # back-filled
    tiered.put("w", b"both")
    assert near.get("w") == b"both" and far.get("w") == b"both"
    stats = tiered.stats()
    assert (stats.hits, stats.misses, stats.backend) == (2, 1, "tiered")
    with pytest.raises(ConfigError):
        TieredCache()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(384,), (3, 5), (2, 0), ()])
def test_array_round_trip_keeps_dtype_and_shape(dtype: type, shape: tuple[int, ...]) -> None:
    arrays = ArrayCache(MemoryCache(), "emb")
    value = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    arrays.put("k", value)
    out = arrays.get("k")
    assert out is not None
    assert out.dtype == value.dtype and out.shape == value.shape
    np.testing.assert_array_equal(out, value)


def test_array_namespaces_and_batches() -> None:
    backend = MemoryCache()
    emb, other = ArrayCache(backend, "emb"), ArrayCache(backend, "other")
    emb.put_many({"a": np.ones(3, np.float32), "b": np.zeros((2, 2), np.float16)})
    assert backend.get("emb:a") is not None
    assert other.get("a") is None
    got = emb.get_many(["a", "b", "c"])
    assert set(got) == {"a", "b"} and got["b"].dtype == np.float16


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x93NUMPY\x01\x00" + b"\xff" * 20])
def test_array_corrupt_value_is_a_miss(blob: bytes) -> None:
    backend = MemoryCache()
    arrays = ArrayCache(backend, "emb")
    arrays.put("good", np.ones(4, np.float32))
    backend.put("emb:bad", blob)
    assert arrays.get("bad") is None
    assert set(arrays.get_many(["bad", "good"])) == {"good"}


def test_array_truncated_value_is_a_miss() -> None:
    backend = MemoryCache()
    arrays = ArrayCache(backend, "emb")
    arrays.put("k", np.ones(100, np.float32))
    blob = backend.get("emb:k")
    assert blob is not None
    backend.put("emb:k", blob[:-7])
    assert arrays.get("k") is None


def test_array_refuses_pickled_objects() -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    backend = MemoryCache()
    backend.put("emb:obj", buffer.getvalue())
    assert ArrayCache(backend, "emb").get("obj") is None


def test_null_cache_never_stores() -> None:
    cache = make_cache("none")
    assert isinstance(cache, NullCache)
    cache.put("a", b"1")
    assert cache.get("a") is None
    assert cache.stats().puts == 1 and cache.stats().misses == 1
    assert isinstance(make_cache("off"), NullCache)


def test_content_key_is_stable_and_distinguishes_parts() -> None:
    key = content_key("soft", "minilm", 0.5, "text")
    assert key == content_key("soft", "minilm", 0.5, "text")
    assert len(key) == 32 and int(key, 16) >= 0
    assert content_key("ab", "c") != content_key("a", "bc")
    assert content_key(1) != content_key("1")
    assert content_key(b"x") != content_key("x")
    assert content_key({"a": 1, "b": 2}) == content_key({"b": 2, "a": 1})
    assert content_key((1, 2)) == content_key([1, 2])
    # Pinned: keys must not change between releases (shared caches outlive processes).
    assert content_key("a", 1) == "df207a00981113e06126f1c2fbde3780"


def test_make_cache_specs(tmp_path) -> None:
    assert isinstance(make_cache(None), MemoryCache)
    assert isinstance(make_cache("memory"), MemoryCache)
    memory = make_cache("memory?max_mb=64")
    assert isinstance(memory, MemoryCache) and memory.max_bytes == 64 * 2**20
    disk = make_cache(f"disk:{tmp_path / 'a.db'}?max_mb=1")
    assert isinstance(disk, DiskCache) and disk.path == tmp_path / "a.db"
    assert disk.max_bytes == 2**20
    file = make_cache(f"file://{tmp_path / 'b.db'}")
    assert isinstance(file, DiskCache) and file.path == tmp_path / "b.db"
    redis = make_cache("redis://127.0.0.1:6379/2?prefix=x:&ttl_s=60&retry_after_s=1")
    assert isinstance(redis, RedisCache)
    assert (redis.prefix, redis.ttl_s, redis.retry_after_s) == ("x:", 60, 1.0)
    assert redis.url == "redis://127.0.0.1:6379/2"
    assert isinstance(make_cache("rediss://example.com:6380/0"), RedisCache)
    tiered = make_cache("memory+redis://127.0.0.1:6379/0")
    assert isinstance(tiered, TieredCache)
    assert [t.name for t in tiered.tiers] == ["memory", "redis"]
    listed = make_cache(["memory?max_mb=1", f"disk:{tmp_path}"])
    assert isinstance(listed, TieredCache) and [t.name for t in listed.tiers] == ["memory", "disk"]
    same = MemoryCache()
    assert make_cache(same) is same


@pytest.mark.parametrize(
    "spec",
    [
        "bogus",
        "",
        "memory?max_mb=lots",
        "memory?colour=red",
        "disk:",
        "memory+",
        "redis://127.0.0.1:6379/0?ttl_s=soon",
        "redis:///0",
        [],
        42,
    ],
)
def test_bad_spec_says_what_is_accepted(spec: object) -> None:
    with pytest.raises(ConfigError, match=r"Accepted forms: 'memory'.*'redis://host:port/db'"):
        make_cache(spec)  # type: ignore[arg-type]


def test_default_cache_is_lazy_and_replaceable(monkeypatch, tmp_path) -> None:
    set_default_cache(None)
    try:
        monkeypatch.setenv("RAGZIP_CACHE", f"disk:{tmp_path / 'd.db'}")
        first = default_cache()
        assert isinstance(first, DiskCache) and default_cache() is first
        replaced = set_default_cache("memory?max_mb=1")
        assert isinstance(replaced, MemoryCache) and default_cache() is replaced
        mine = MemoryCache()
        assert set_default_cache(mine) is mine and default_cache() is mine
        monkeypatch.delenv("RAGZIP_CACHE")
        assert set_default_cache(None) is None
        assert isinstance(default_cache(), MemoryCache)
    finally:
        set_default_cache(None)


def test_default_cache_is_one_instance_across_threads() -> None:
    set_default_cache(None)
    seen: list[ByteCache] = []
    threads = [threading.Thread(target=lambda: seen.append(default_cache())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    set_default_cache(None)


def test_import_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = (
        "import ragzip.cache, ragzip.cache.factory as f; "
        "assert f._default is None; import sys; assert 'redis' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
