"""A persistent cache in one SQLite file, shared by the processes and threads of a host.

Why SQLite (WAL mode, ``busy_timeout``) rather than one file per key: a write is one
transaction, so a reader sees a whole value or nothing even when a process dies mid-write;
WAL lets readers run while a writer commits; ``busy_timeout`` makes concurrent writers wait
their turn instead of failing; size-bounded eviction is one ``DELETE ... ORDER BY atime``
instead of a directory walk; and thousands of small values do not become thousands of inodes.
Each value also stores a short blake2b digest that is checked on read, so a damaged entry
reads as a miss. The file must sit on a local filesystem (WAL does not work over NFS).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from ragzip.cache.base import BaseByteCache
from ragzip.errors import ConfigError

__all__ = ["DiskCache"]

logger = logging.getLogger("ragzip.cache")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " key TEXT PRIMARY KEY, value BLOB NOT NULL, digest BLOB NOT NULL,"
    " size INTEGER NOT NULL, atime REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_atime ON entries (atime)",
)
_BATCH = 500  # SQLite's default limit of bound parameters is 999 on old builds


def _digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=8).digest()


class DiskCache(BaseByteCache):
    """Bytes by key in a SQLite database at ``path`` (a file, or a directory to hold one).

    Safe with several processes and threads reading and writing at once, and survives
    restarts. Failures (locked too long, disk full, a corrupt file) are logged, counted in
    ``stats().errors`` and read as misses; they never raise.

    Args:
        path: The database file, or an existing directory (the file is ``cache.sqlite3``
            inside it).
        max_bytes: Bound on the total size of values; the least recently used go first.
            ``None``: unbounded.
        timeout_s: How long a writer waits for another one before giving up (the put is
            then dropped).

    Example:
        >>> cache = DiskCache("~/.cache/ragzip", max_bytes=2 * 2**30)
    """

    name = "disk"

    def __init__(
        self, path: str | Path, max_bytes: int | None = None, *, timeout_s: float = 10.0
    ) -> None:
        super().__init__()
        if max_bytes is not None and max_bytes < 0:
            raise ConfigError(f"max_bytes must be >= 0 or None, got {max_bytes}")
        target = Path(path).expanduser()
        self.path = target / "cache.sqlite3" if target.is_dir() else target
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._warned = False

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        deadline = time.monotonic() + self.timeout_s
        while True:  # switching to WAL takes a lock that the busy handler does not wait for
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        conn.execute("PRAGMA synchronous = NORMAL")
        for statement in _SCHEMA:
            conn.execute(statement)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            self._error()
            if not self._warned:
                self._warned = True
                logger.warning("Disk cache at %s failed to %s: %s", self.path, what, exc)
            else:
                logger.debug("Disk cache at %s failed to %s: %s", self.path, what, exc)
            conn = getattr(self._local, "conn", None)
            self._local.conn = None
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()

    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._guard("read"):
            conn = self._connect()
            for at in range(0, len(keys), _BATCH):
                batch = keys[at : at + _BATCH]
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT key, value, digest FROM entries WHERE key IN ({marks})", batch
                ).fetchall()
                for key, value, digest in rows:
                    if isinstance(value, bytes) and _digest(value) == digest:
                        found[key] = value
                    else:
                        self._error()  # damaged entry: a miss
            if found and self.max_bytes is not None:
                self._touch(conn, list(found))
        return found

    def _touch(self, conn: sqlite3.Connection, keys: list[str]) -> None:
        now = time.time()
        for at in range(0, len(keys), _BATCH):
            batch = keys[at : at + _BATCH]
            marks = ",".join("?" * len(batch))
            conn.execute(f"UPDATE entries SET atime = ? WHERE key IN ({marks})", [now, *batch])

    def _store(self, items: Mapping[str, bytes]) -> None:
        now = time.time()
        rows = [(k, v, _digest(v), len(v), now) for k, v in items.items()]
        with self._guard("write"):
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, digest, size, atime)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                if self.max_bytes is not None:
                    self._evict(conn, self.max_bytes)
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _evict(conn: sqlite3.Connection, max_bytes: int) -> None:
        (total,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()
        excess = int(total) - max_bytes
        if excess <= 0:
            return
        doomed: list[str] = []
        for key, size in conn.execute("SELECT key, size FROM entries ORDER BY atime, key"):
            doomed.append(key)
            excess -= int(size)
            if excess <= 0:
                break
        for at in range(0, len(doomed), _BATCH):
            batch = doomed[at : at + _BATCH]
            conn.execute(f"DELETE FROM entries WHERE key IN ({','.join('?' * len(batch))})", batch)

    def _clear(self) -> None:
        with self._guard("clear"):
            self._connect().execute("DELETE FROM entries")

    def __len__(self) -> int:
        with self._guard("count"):
            (count,) = self._connect().execute("SELECT COUNT(*) FROM entries").fetchone()
            return int(count)
        return 0

    def __repr__(self) -> str:
        return f"DiskCache({str(self.path)!r}, max_bytes={self.max_bytes})"
