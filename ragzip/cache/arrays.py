"""numpy arrays over any byte cache, in ``.npy`` format (dtype and shape kept, no pickle)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from ragzip.cache.base import ByteCache, CacheStats

__all__ = ["ArrayCache"]


def _dump(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _load(blob: bytes) -> np.ndarray | None:
    try:
        value = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError):
        return None
    return value if isinstance(value, np.ndarray) else None


class ArrayCache:
    """Stores numpy arrays in ``backend`` under ``f"{namespace}:{key}"``.

    A value that does not decode as an ``.npy`` array (truncated, foreign, pickled objects)
    reads as a miss.

    Args:
        backend: Where the bytes go (memory, disk, Redis, tiered...).
        namespace: Keeps these arrays apart from other users of the backend (e.g. ``"emb"``).

    Example:
        >>> arrays = ArrayCache(MemoryCache(), "emb")
        >>> arrays.put("k", np.ones(384, dtype=np.float16)); arrays.get("k").dtype
        dtype('float16')
    """

    def __init__(self, backend: ByteCache, namespace: str) -> None:
        self.backend = backend
        self.namespace = namespace

    def _name(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def get(self, key: str) -> np.ndarray | None:
        blob = self.backend.get(self._name(key))
        return None if blob is None else _load(blob)

    def put(self, key: str, array: np.ndarray) -> None:
        self.backend.put(self._name(key), _dump(array))

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        names = {self._name(k): k for k in keys}
        found: dict[str, np.ndarray] = {}
        for name, blob in self.backend.get_many(list(names)).items():
            value = _load(blob)
            if value is not None:
                found[names[name]] = value
        return found

    def put_many(self, items: Mapping[str, np.ndarray]) -> None:
        self.backend.put_many({self._name(k): _dump(v) for k, v in items.items()})

    def stats(self) -> CacheStats:
        return self.backend.stats()

    def __repr__(self) -> str:
        return f"ArrayCache({self.backend!r}, {self.namespace!r})"
