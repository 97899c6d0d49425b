"""An LRU of summaries keyed by content: model, prompt, query, documents and settings.

A cache may also persist to a JSON-lines file (one ``{"key", "value"}`` per line, appended as
summaries are made), so evaluation runs that differ only after generation (the guard on and
off) share one set of generations. A ``backend`` (:class:`~ragzip.cache.ByteCache`, e.g. Redis)
is a second level behind the in-memory LRU, so replicas share summaries.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ragzip.cache.base import ByteCache
from ragzip.cache.lru import LRU
from ragzip.cache.typed import TEXT, TypedCache

__all__ = ["SHARED_CACHE", "SummaryCache", "file_cache", "summary_key"]


def summary_key(**parts: Any) -> str:
    """sha256 of the JSON of ``parts`` (keys sorted), e.g. model, query, documents, params."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8", "replace")).hexdigest()


class SummaryCache(TypedCache[str]):
    """A thread-safe LRU of generated summaries with hit and miss counters: a
    :class:`~ragzip.cache.TypedCache` of text under the ``summary`` namespace.

    Args:
        max_items: Summaries kept in memory (0: the cache stores nothing).
        path: A JSON-lines file the summaries are appended to and loaded from.
        backend: A shared second level (values are UTF-8 bytes under ``summary:KEY``); a
            hit there is copied into memory.
    """

    def __init__(
        self,
        max_items: int = 4096,
        path: str | Path | None = None,
        backend: ByteCache | None = None,
    ) -> None:
        memory: LRU[str, str] = LRU(max(max_items, 0))
        super().__init__(backend if max_items > 0 else None, "summary", TEXT, local=memory)
        self.max_items = max_items
        self.path = Path(path) if path is not None else None
        self._file_lock = threading.Lock()
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    key, value = str(item["key"]), str(item["value"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash: skip it
                memory.put(key, value)

    def put(self, key: str, value: str) -> None:
        if self.max_items <= 0:
            return
        self.put_many({key: value})
        if self.path is not None:
            with self._file_lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")

    def __len__(self) -> int:
        """Summaries held in memory."""
        return len(self.local) if self.local is not None else 0


SHARED_CACHE = SummaryCache()
_files: dict[str, SummaryCache] = {}
_files_lock = threading.Lock()


def file_cache(path: str | Path, max_items: int = 1_000_000) -> SummaryCache:
    """The process-wide cache persisted at ``path`` (one instance per resolved path)."""
    key = str(Path(path).expanduser().resolve())
    with _files_lock:
        if key not in _files:
            _files[key] = SummaryCache(max_items, key)
        return _files[key]


"""The process-wide cache compressors use by default (summaries are pure functions of the key)."""
