"""DiskCache: persistence across instances, eviction, damage, and concurrent processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

import pytest

from ragzip.cache import DiskCache

pytestmark = pytest.mark.integration


def _value(key: str) -> bytes:
    """What every writer stores under ``key``: any other bytes read back are corrupt."""
    return (key.encode() + b"|") * (1 + len(key) * 37 % 300)


def _worker(path: str, worker: int, rounds: int) -> tuple[int, int, int]:
    """Puts and gets overlapping keys; returns (bad reads, hits, errors)."""
    cache = DiskCache(path)
    bad = hits = 0
    for i in range(rounds):
        key = f"k{(i * 7 + worker * 13) % 60}"
        if i % 3 == 0:
            cache.put_many(
                {key: _value(key), f"k{(i + worker) % 60}": _value(f"k{(i + worker) % 60}")}
            )
        else:
            cache.put(key, _value(key))
        for other, got in cache.get_many([key, f"k{(i * 11) % 60}"]).items():
            hits += 1
            bad += got != _value(other)
    stats = cache.stats()
    return bad, hits, stats.errors


def test_disk_persists_across_instances(tmp_path: Path) -> None:
    first = DiskCache(tmp_path / "c.db")
    first.put_many({"a": b"1", "b": b"\x00" * 1000})
    del first
    second = DiskCache(tmp_path / "c.db")
    assert second.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"\x00" * 1000}
    assert len(second) == 2
    second.clear()
    assert DiskCache(tmp_path / "c.db").get("a") is None


def test_disk_directory_path_and_stats(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    assert cache.path == tmp_path / "cache.sqlite3"
    cache.put("k", b"v")
    assert cache.get("k") == b"v" and cache.get("x") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.puts, stats.errors, stats.backend) == (
        1, 1, 1, 0, "disk",
    )  # fmt: skip


def test_disk_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c.db", max_bytes=300)
    for key in "abc":
        cache.put(key, key.encode() * 100)
    assert cache.get("a") is not None  # a becomes the most recently used
    cache.put("d", b"d" * 100)
    assert cache.get("b") is None
    assert set(cache.get_many(["a", "c", "d"])) == {"a", "c", "d"}


def test_disk_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c.db")
    cache.put_many({"good": b"fine", "bad": b"original"})
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("UPDATE entries SET value = ? WHERE key = 'bad'", (b"origiXal",))
    assert cache.get_many(["good", "bad"]) == {"good": b"fine"}
    assert cache.stats().errors == 1


def test_disk_corrupt_file_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not a database" * 200)
    cache = DiskCache(path)
    assert cache.get("a") is None
    cache.put("a", b"1")
    assert cache.get_many(["a", "b"]) == {}
    assert cache.stats().errors >= 3
    assert sum(r.levelname == "WARNING" for r in caplog.records) == 1


def test_disk_threads_share_one_instance(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c.db")
    bad: list[str] = []

    def work(n: int) -> None:
        for i in range(100):
            key = f"k{(i + n) % 20}"
            cache.put(key, _value(key))
            got = cache.get(key)
            if got != _value(key):
                bad.append(key)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad and cache.stats().errors == 0


def test_disk_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_worker, [(path, w, 200) for w in range(4)])
    assert all(bad == 0 for bad, _, _ in results), results
    assert all(errors == 0 for _, _, errors in results), results
    assert sum(hits for _, hits, _ in results) > 0
    final = DiskCache(path).get_many([f"k{i}" for i in range(60)])
    assert final and all(v == _value(k) for k, v in final.items())
