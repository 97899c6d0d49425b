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
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragzip.cache import ByteCache

__all__ = ["SHARED_CACHE", "SummaryCache", "file_cache", "summary_key"]


def summary_key(**parts: Any) -> str:
    """sha256 of the JSON of ``parts`` (keys sorted), e.g. model, query, documents, params."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8", "replace")).hexdigest()


class SummaryCache:
    """A thread-safe LRU of generated summaries with hit and miss counters.

    Args:
        max_items: Summaries kept in memory (0: the cache stores nothing).
        path: A JSON-lines file the summaries are appended to and loaded from.
        backend: A shared second level (values are UTF-8 bytes under ``summary:KEY``); a
            hit there is copied into memory.
    """

    _NAMESPACE = "summary:"

    def __init__(
        self,
        max_items: int = 4096,
        path: str | Path | None = None,
        backend: ByteCache | None = None,
    ) -> None:
        self.max_items = max_items
        self.path = Path(path) if path is not None else None
        self.backend = backend
        self._data: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    self._data[str(item["key"])] = str(item["value"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash: skip it

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
                return value
        value = self._from_backend(key)
        with self._lock:
            if value is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, value)
            return value

    def _from_backend(self, key: str) -> str | None:
        if self.backend is None or self.max_items <= 0:
            return None
        blob = self.backend.get(self._NAMESPACE + key)
        if blob is None:
            return None
        try:
            return blob.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None  # not ours: a miss

    def _remember(self, key: str, value: str) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_items:
            self._data.popitem(last=False)

    def put(self, key: str, value: str) -> None:
        if self.max_items <= 0:
            return
        if self.backend is not None:
            self.backend.put(self._NAMESPACE + key, value.encode("utf-8", "surrogatepass"))
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


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
