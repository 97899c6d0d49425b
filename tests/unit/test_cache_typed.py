"""The one in-process LRU and typed values over byte caches (namespace, codec, local level)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ragzip.cache import FLOAT, JSON, LRU, TEXT, ArrayCache, ArrayCodec, MemoryCache, TypedCache
from ragzip.errors import ConfigError


# -- LRU ----------------------------------------------------------------------------------------
def test_lru_counts_and_evicts_the_least_recently_used() -> None:
    lru: LRU[str, int] = LRU(2)
    assert lru.get("a") is None and lru.misses == 1
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1 and lru.hits == 1
    lru.put("c", 3)  # evicts b
    assert lru.keys() == ["a", "c"] and "b" not in lru and len(lru) == 2
    assert lru.peek("a") == 1 and lru.hits == 1  # peek counts nothing
    assert lru.get("b", "absent") == "absent"
    lru.clear()
    assert len(lru) == 0 and lru.hits == lru.misses == 0


def test_lru_bounded_by_size_drops_values_larger_than_the_bound() -> None:
    lru: LRU[str, bytes] = LRU(10, size_of=len)
    lru.put("a", b"12345")
    lru.put("b", b"123456")  # 11 bytes in all: a goes
    assert lru.keys() == ["b"] and lru.size == 6
    lru.put("b", b"x" * 11)  # too large: the old value goes too, nothing is stored
    assert len(lru) == 0 and lru.size == 0
    lru.put("c", b"123")
    lru.resize(2)
    assert len(lru) == 0 and lru.max_size == 2


def test_lru_of_size_zero_stores_nothing() -> None:
    lru: LRU[str, str] = LRU(0)
    lru.put("a", "A")
    assert lru.get("a") is None and len(lru) == 0


@pytest.mark.parametrize("bound", [-1, 1.5, "8", True, None])
def test_lru_bad_bounds_are_config_errors(bound: object) -> None:
    with pytest.raises(ConfigError, match="max_size"):
        LRU(bound)  # type: ignore[arg-type]


def test_lru_is_thread_safe() -> None:
    lru: LRU[int, bytes] = LRU(400, size_of=len)

    def work(n: int) -> None:
        for i in range(500):
            lru.put(i % 60, bytes([n]) * 10)
            lru.get((i * 7) % 60)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lru.size == sum(len(v) for v in lru.values()) <= 400
    assert lru.hits + lru.misses == 4 * 500


# -- codecs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("codec", "value"),
    [(TEXT, "a summary with a lone surrogate \udc80"), (FLOAT, -1.25), (JSON, {"b": [1, 2]})],
)
def test_codecs_round_trip(codec: object, value: object) -> None:
    assert codec.decode(codec.encode(value)) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("codec", "blob"),
    [(TEXT, b"\xff\xfe"), (FLOAT, b"1234"), (JSON, b"{not json"), (ArrayCodec(), b"\x93NUMPY")],
)
def test_codecs_refuse_foreign_bytes_with_value_error(codec: object, blob: bytes) -> None:
    with pytest.raises(ValueError):
        codec.decode(blob)  # type: ignore[attr-defined]


def test_array_codec_checks_rank_and_casts() -> None:
    codec = ArrayCodec(ndim=1, dtype=np.float32)
    vector = codec.decode(ArrayCodec().encode(np.ones(4, dtype=np.float16)))
    assert vector.dtype == np.float32 and vector.shape == (4,)
    with pytest.raises(ValueError, match="rank"):
        codec.decode(ArrayCodec().encode(np.ones((2, 2))))


# -- TypedCache ---------------------------------------------------------------------------------
def test_typed_values_are_namespaced_in_the_backend() -> None:
    backend = MemoryCache()
    scores = TypedCache(backend, "lmscore", FLOAT)
    scores.put_many({"a": 0.5, "b": 1.5})
    assert backend.get("lmscore:a") == FLOAT.encode(0.5)
    assert scores.get_many(["a", "b", "c"]) == {"a": 0.5, "b": 1.5}
    assert (scores.hits, scores.misses) == (2, 1)
    backend.put("lmscore:bad", b"not a double")
    assert scores.get("bad") is None  # not ours: a miss
    assert scores.stats().backend == "memory"


def test_a_local_level_is_read_first_and_filled_from_the_backend() -> None:
    backend = MemoryCache()
    TypedCache(backend, "summary", TEXT).put("k", "shared")
    replica = TypedCache(backend, "summary", TEXT, local=8)
    assert replica.get("k") == "shared" and replica.hits == 1
    assert replica.local is not None and replica.local.misses == 1 and len(replica.local) == 1
    backend.clear()
    assert replica.get("k") == "shared"  # now from memory
    assert replica.local.hits == 1
    replica.clear()
    assert len(replica.local) == 0 and replica.hits == replica.misses == 0


def test_without_a_backend_values_live_in_the_local_level_only() -> None:
    cache = TypedCache(None, "x", TEXT, local=LRU(1))
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") is None and cache.get("b") == "B"
    assert cache.stats().puts == 0
    assert TypedCache(None, "x", TEXT).get("a") is None  # no level at all: always a miss


def test_array_cache_is_a_typed_cache_of_arrays() -> None:
    arrays = ArrayCache(MemoryCache(), "emb")
    assert isinstance(arrays, TypedCache) and arrays.local is None
    arrays.put("k", np.arange(3, dtype=np.int16))
    value = arrays.get("k")
    assert value is not None and value.dtype == np.int16 and value.tolist() == [0, 1, 2]
    assert repr(arrays) == "ArrayCache(MemoryCache(max_bytes=268435456), 'emb')"
