"""numpy arrays over any byte cache, in ``.npy`` format (dtype and shape kept, no pickle)."""

from __future__ import annotations

import numpy as np

from ragzip.cache.base import ByteCache
from ragzip.cache.typed import ArrayCodec, TypedCache

__all__ = ["ArrayCache"]


class ArrayCache(TypedCache[np.ndarray]):
    """Stores numpy arrays in ``backend`` under ``f"{namespace}:{key}"``: a
    :class:`~ragzip.cache.TypedCache` with the ``.npy`` codec and no in-process level.

    A value that does not decode as an ``.npy`` array (truncated, foreign, pickled objects)
    reads as a miss.

    Args:
        backend: Where the bytes go (memory, disk, Redis, tiered...).
        namespace: Keeps these arrays apart from other users of the backend (e.g. ``"emb"``).
        codec: An :class:`~ragzip.cache.ArrayCodec` that also checks the rank or casts.

    Example:
        >>> arrays = ArrayCache(MemoryCache(), "emb")
        >>> arrays.put("k", np.ones(384, dtype=np.float16)); arrays.get("k").dtype
        dtype('float16')
    """

    def __init__(self, backend: ByteCache, namespace: str, codec: ArrayCodec | None = None) -> None:
        super().__init__(backend, namespace, codec or ArrayCodec())
