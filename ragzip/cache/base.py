"""The byte-cache contract, its counters, a cache that stores nothing, and content keys.

Every backend maps ``str`` keys to ``bytes`` values. Backends write only the batch methods
(:meth:`BaseByteCache._fetch` and :meth:`BaseByteCache._store`); the base class derives
``get``/``put`` from them and keeps the hit, miss, put and error counters in one place.
"""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["BaseByteCache", "ByteCache", "CacheStats", "NullCache", "content_key"]


@dataclass(frozen=True)
class CacheStats:
    """Counters of one cache since it was created (or last cleared).

    Attributes:
        hits: Keys found.
        misses: Keys asked for and not found (including while a backend is unreachable).
        puts: Values handed to the cache to store.
        errors: Backend failures that were swallowed (I/O, network, corrupt entries).
        backend: The cache's ``name`` (``"memory"``, ``"disk"``, ``"redis"``...).
    """

    hits: int = 0
    misses: int = 0
    puts: int = 0
    errors: int = 0
    backend: str = ""

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


@runtime_checkable
class ByteCache(Protocol):
    """A store of ``bytes`` by ``str`` key that never raises on backend failures."""

    name: str

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...

    def stats(self) -> CacheStats: ...

    def clear(self) -> None: ...


class BaseByteCache(ABC):
    """Template for backends: ``get``/``put`` go through the batch methods and are counted.

    Subclasses implement :meth:`_fetch`, :meth:`_store` and :meth:`_clear`, and call
    :meth:`_error` when they swallow a failure.
    """

    name: str = "base"

    def __init__(self) -> None:
        self._counts_lock = threading.Lock()
        self._hits = self._misses = self._puts = self._errors = 0

    @abstractmethod
    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values found for ``keys`` (distinct); must not raise on backend failures."""

    @abstractmethod
    def _store(self, items: Mapping[str, bytes]) -> None:
        """Stores ``items``; must not raise on backend failures."""

    @abstractmethod
    def _clear(self) -> None:
        """Drops every entry of this cache."""

    def get(self, key: str) -> bytes | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, value: bytes) -> None:
        self.put_many({key: value})

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        found = self._fetch(unique)
        with self._counts_lock:
            self._hits += len(found)
            self._misses += len(unique) - len(found)
        return found

    def put_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        clean = {str(k): bytes(v) for k, v in items.items()}
        with self._counts_lock:
            self._puts += len(clean)
        self._store(clean)

    def stats(self) -> CacheStats:
        with self._counts_lock:
            return CacheStats(self._hits, self._misses, self._puts, self._errors, self.name)

    def clear(self) -> None:
        self._clear()
        with self._counts_lock:
            self._hits = self._misses = self._puts = self._errors = 0

    def _error(self, count: int = 1) -> None:
        with self._counts_lock:
            self._errors += count

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NullCache(BaseByteCache):
    """Stores nothing: every get is a miss (``make_cache("none")``)."""

    name = "none"

    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {}

    def _store(self, items: Mapping[str, bytes]) -> None:
        return None

    def _clear(self) -> None:
        return None


def _encode_part(part: object) -> bytes:
    if isinstance(part, bytes | bytearray | memoryview):
        return b"b" + bytes(part)
    if isinstance(part, str):
        return b"s" + part.encode("utf-8", "surrogatepass")
    blob = json.dumps(part, sort_keys=True, ensure_ascii=False, default=str)
    return b"j" + blob.encode("utf-8", "surrogatepass")


def content_key(*parts: object) -> str:
    """A stable hex key (blake2b, 16 bytes) of ``parts``, equal across processes and runs.

    Strings and bytes are hashed as they are; numbers, tuples, lists and dicts through JSON
    with sorted keys. Each part is length-prefixed, so ``("ab", "c")`` and ``("a", "bc")``
    differ, and so do ``1`` and ``"1"``.

    Example:
        >>> content_key("soft", "minilm", 0.5, "some segment text")  # 32 hex characters
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        encoded = _encode_part(part)
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()
