"""The one in-process LRU: a thread-safe map bounded by entry count or by a size per value."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar, overload

from ragzip.errors import ConfigError

__all__ = ["LRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class LRU(Generic[K, V]):
    """A thread-safe least-recently-used map with hit and miss counters.

    The entries' sizes (``size_of(value)``, 1 each by default) add up to at most ``max_size``:
    storing more drops the least recently used first, and a value larger than ``max_size`` on
    its own is not stored (``max_size=0`` stores nothing). :meth:`get` counts a hit or a miss;
    :meth:`peek` and ``in`` count nothing and do not refresh the entry.

    Args:
        max_size: Bound on the total size of the entries (>= 0).
        size_of: Size of one value (``len`` bounds a cache of bytes by its bytes).

    Raises:
        ConfigError: ``max_size`` is not an integer >= 0.

    Example:
        >>> lru = LRU[str, int](2)
        >>> lru.put("a", 1); lru.put("b", 2); lru.get("a"); lru.put("c", 3)
        >>> lru.keys(), lru.hits
        (['a', 'c'], 1)
    """

    def __init__(self, max_size: int, *, size_of: Callable[[V], int] | None = None) -> None:
        self.max_size = _check_size(max_size)
        self._size_of = size_of
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        """The total size of the entries (their count without ``size_of``)."""
        return self._size

    def _weigh(self, value: V) -> int:
        return 1 if self._size_of is None else self._size_of(value)

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        """The value under ``key`` (now the most recently used), else ``default``; counted."""
        with self._lock:
            if key not in self._data:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]

    def peek(self, key: K, default: D | None = None) -> V | D | None:
        """The value under ``key`` without counting or refreshing it."""
        with self._lock:
            return self._data.get(key, default)

    def put(self, key: K, value: V) -> None:
        """Stores ``value`` as the most recently used, dropping old entries beyond the bound."""
        size = self._weigh(value)
        with self._lock:
            self._pop(key)
            if size > self.max_size:
                return
            self._data[key] = value
            self._size += size
            self._trim()

    def discard(self, key: K) -> None:
        """Drops ``key`` if it is held."""
        with self._lock:
            self._pop(key)

    def resize(self, max_size: int) -> None:
        """Changes the bound, dropping the least recently used entries beyond it.

        Raises:
            ConfigError: ``max_size`` is not an integer >= 0.
        """
        bound = _check_size(max_size)
        with self._lock:
            self.max_size = bound
            self._trim()

    def clear(self) -> None:
        """Drops every entry and resets the counters."""
        with self._lock:
            self._data.clear()
            self._size = 0
            self.hits = self.misses = 0

    def keys(self) -> list[K]:
        """The keys, least recently used first."""
        with self._lock:
            return list(self._data)

    def values(self) -> list[V]:
        """The values, least recently used first."""
        with self._lock:
            return list(self._data.values())

    def _pop(self, key: K) -> None:
        if key in self._data:
            self._size -= self._weigh(self._data.pop(key))

    def _trim(self) -> None:
        while self._size > self.max_size and self._data:
            _, evicted = self._data.popitem(last=False)
            self._size -= self._weigh(evicted)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"LRU(max_size={self.max_size}, entries={len(self._data)})"


def _check_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"max_size must be an integer >= 0, got {value!r}")
    return value
