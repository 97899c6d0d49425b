"""An in-process LRU of bytes, bounded by the total size of its values (a byte-cache face of
:class:`~ragzip.cache.LRU`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ragzip.cache.base import BaseByteCache
from ragzip.cache.lru import LRU
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
        self._data: LRU[str, bytes] = LRU(int(max_bytes), size_of=len)

    @property
    def size_bytes(self) -> int:
        return self._data.size

    def __len__(self) -> int:
        return len(self._data)

    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for key in keys:
            value = self._data.get(key)
            if value is not None:
                found[key] = value
        return found

    def _store(self, items: Mapping[str, bytes]) -> None:
        for key, value in items.items():
            self._data.put(key, value)

    def _clear(self) -> None:
        self._data.clear()

    def __repr__(self) -> str:
        return f"MemoryCache(max_bytes={self.max_bytes})"
