"""An in-process LRU of bytes, bounded by the total size of its values."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from ragzip.cache.base import BaseByteCache
from ragzip.errors import ConfigError

__all__ = ["MemoryCache"]


class MemoryCache(BaseByteCache):
    """A thread-safe LRU whose values together take at most ``max_bytes``.

    A value larger than ``max_bytes`` is not stored. Keys are not counted in the size.

    Args:
        max_bytes: Bound on the sum of ``len(value)`` over the entries (256 MiB by default).

    Example:
        >>> cache = MemoryCache(max_bytes=64 * 2**20)
        >>> cache.put("k", b"v"); cache.get("k")
        b'v'
    """

    name = "memory"

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        super().__init__()
        if max_bytes < 0:
            raise ConfigError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._data)

    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is not None:
                    self._data.move_to_end(key)
                    found[key] = value
        return found

    def _store(self, items: Mapping[str, bytes]) -> None:
        with self._lock:
            for key, value in items.items():
                old = self._data.pop(key, None)
                if old is not None:
                    self._size -= len(old)
                if len(value) > self.max_bytes:
                    continue
                self._data[key] = value
                self._size += len(value)
            while self._size > self.max_bytes and self._data:
                _, evicted = self._data.popitem(last=False)
                self._size -= len(evicted)

    def _clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def __repr__(self) -> str:
        return f"MemoryCache(max_bytes={self.max_bytes})"
