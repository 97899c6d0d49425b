"""Typed values over any byte cache: a namespace, a codec, and an optional in-process LRU.

A :class:`TypedCache` stores values of one type in a :class:`~ragzip.cache.ByteCache` under
``f"{namespace}:{key}"``, encoded by a :class:`Codec`. With a ``local`` :class:`~ragzip.cache.LRU`
in front, reads look there first and copy what the backend had into it, so the hot values of a
process are kept decoded. Codecs: :class:`ArrayCodec` (numpy ``.npy``, no pickle),
:data:`TEXT` (UTF-8, lone surrogates kept), :data:`FLOAT` (8-byte little-endian doubles) and
:data:`JSON`.

Example:
    >>> summaries = TypedCache(make_cache("redis://127.0.0.1:6379/0"), "summary", TEXT, local=4096)
    >>> summaries.put("k", "a summary"); summaries.get("k")
    'a summary'
"""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ragzip.cache.base import ByteCache, CacheStats
from ragzip.cache.lru import LRU

__all__ = ["FLOAT", "JSON", "TEXT", "ArrayCodec", "Codec", "TypedCache"]

T = TypeVar("T")


class Codec(Protocol[T]):
    """Turns values into bytes and back; ``decode`` raises ``ValueError`` for foreign bytes."""

    def encode(self, value: T) -> bytes: ...

    def decode(self, blob: bytes) -> T: ...


class ArrayCodec:
    """numpy arrays as ``.npy`` bytes (dtype and shape kept, pickles refused).

    Args:
        ndim: When set, arrays of another rank are foreign (e.g. ``1`` for embeddings).
        dtype: When set, decoded arrays are cast to it (without a copy when they have it).
    """

    def __init__(self, ndim: int | None = None, dtype: Any = None) -> None:
        self.ndim = ndim
        self.dtype = dtype

    def encode(self, value: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        return buffer.getvalue()

    def decode(self, blob: bytes) -> np.ndarray:
        try:
            value = np.load(io.BytesIO(blob), allow_pickle=False)
        except (ValueError, OSError, EOFError, TypeError) as exc:
            raise ValueError(f"not an .npy array: {exc}") from exc
        if not isinstance(value, np.ndarray) or (self.ndim is not None and value.ndim != self.ndim):
            raise ValueError("not an array of the expected rank")
        return value if self.dtype is None else value.astype(self.dtype, copy=False)


class _Text:
    def encode(self, value: str) -> bytes:
        return value.encode("utf-8", "surrogatepass")

    def decode(self, blob: bytes) -> str:
        return blob.decode("utf-8", "surrogatepass")  # UnicodeDecodeError is a ValueError


class _Float:
    def encode(self, value: float) -> bytes:
        return struct.pack("<d", value)

    def decode(self, blob: bytes) -> float:
        if len(blob) != 8:
            raise ValueError(f"a double takes 8 bytes, got {len(blob)}")
        return float(struct.unpack("<d", blob)[0])


class _Json:
    def encode(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def decode(self, blob: bytes) -> Any:
        return json.loads(blob.decode("utf-8"))


TEXT: Codec[str] = _Text()
FLOAT: Codec[float] = _Float()
JSON: Codec[Any] = _Json()


class TypedCache(Generic[T]):
    """Values of one type by ``str`` key: an optional in-process LRU before a byte cache.

    Reads try ``local`` first, then the backend for what is still missing (one batched call);
    backend values are decoded and copied into ``local``. A value that does not decode (not
    ours, truncated) reads as a miss. Writes go to both. :attr:`hits` and :attr:`misses` count
    keys found in either level or in neither; ``local`` keeps its own counters.

    Args:
        backend: Where the bytes go (memory, disk, Redis, tiered...); ``None`` keeps values
            in ``local`` only.
        namespace: Keeps these values apart from other users of the backend (e.g. ``"emb"``).
        codec: Encodes the values.
        local: An :class:`~ragzip.cache.LRU` of decoded values, or its size (``0``/``None``:
            none).

    Example:
        >>> scores = TypedCache(MemoryCache(), "lmscore", FLOAT, local=50_000)
        >>> scores.put_many({"a": 0.5}); scores.get_many(["a", "b"])
        {'a': 0.5}
    """

    def __init__(
        self,
        backend: ByteCache | None,
        namespace: str,
        codec: Codec[T],
        *,
        local: LRU[str, T] | int | None = None,
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.codec = codec
        if isinstance(local, int):
            local = LRU(local) if local > 0 else None
        self.local: LRU[str, T] | None = local
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _name(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def get(self, key: str) -> T | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, value: T) -> None:
        self.put_many({key: value})

    def get_many(self, keys: Sequence[str]) -> dict[str, T]:
        """The values found for ``keys``; ``local`` is asked once per key as given."""
        found: dict[str, T] = {}
        if self.local is not None:
            for key in keys:
                value = self.local.get(key)
                if value is not None:
                    found[key] = value
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing and self.backend is not None:
            names = {self._name(k): k for k in missing}
            for name, blob in self.backend.get_many(list(names)).items():
                try:
                    value = self.codec.decode(blob)
                except ValueError:
                    continue  # not ours: a miss
                found[names[name]] = value
                if self.local is not None:
                    self.local.put(names[name], value)
        with self._lock:
            self.hits += len(found)
            self.misses += len(dict.fromkeys(keys)) - len(found)
        return found

    def put_many(self, items: Mapping[str, T]) -> None:
        if self.local is not None:
            for key, value in items.items():
                self.local.put(key, value)
        if items and self.backend is not None:
            self.backend.put_many({self._name(k): self.codec.encode(v) for k, v in items.items()})

    def stats(self) -> CacheStats:
        """The backend's counters (all zero without a backend)."""
        return self.backend.stats() if self.backend is not None else CacheStats()

    def clear(self) -> None:
        """Empties ``local`` and resets the counters (the shared backend is left alone)."""
        if self.local is not None:
            self.local.clear()
        with self._lock:
            self.hits = self.misses = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r}, {self.namespace!r})"
