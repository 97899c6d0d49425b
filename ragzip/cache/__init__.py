"""Caches of computed artifacts (embeddings, summaries, scores) shared across queries.

Everything is bytes by string key behind the :class:`ByteCache` protocol: an in-process
:class:`MemoryCache`, a host-wide :class:`DiskCache`, a :class:`RedisCache` shared by replicas,
and a :class:`TieredCache` that stacks them. A :class:`TypedCache` stores values of one type
on any of them (a namespace and a :class:`Codec`, optionally behind an in-process :class:`LRU`
of decoded values); :class:`ArrayCache` is the one for numpy arrays. Build a byte cache from a
spec with :func:`make_cache`; :func:`default_cache` is the process-wide one (``$RAGZIP_CACHE``).
Nothing is created at import time.

Example:
    >>> from ragzip.cache import ArrayCache, content_key, make_cache
    >>> cache = make_cache("memory+redis://127.0.0.1:6379/0")
    >>> arrays = ArrayCache(cache, "emb")
    >>> arrays.put(content_key("minilm", "some text"), vector)
"""

from ragzip.cache.arrays import ArrayCache
from ragzip.cache.base import BaseByteCache, ByteCache, CacheStats, NullCache, content_key
from ragzip.cache.disk import DiskCache
from ragzip.cache.factory import default_cache, make_cache, set_default_cache
from ragzip.cache.lru import LRU
from ragzip.cache.memory import MemoryCache
from ragzip.cache.redis import RedisCache
from ragzip.cache.tiered import TieredCache
from ragzip.cache.typed import FLOAT, JSON, TEXT, ArrayCodec, Codec, TypedCache

__all__ = [
    "FLOAT",
    "JSON",
    "LRU",
    "TEXT",
    "ArrayCache",
    "ArrayCodec",
    "BaseByteCache",
    "ByteCache",
    "CacheStats",
    "Codec",
    "DiskCache",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "TieredCache",
    "TypedCache",
    "content_key",
    "default_cache",
    "make_cache",
    "set_default_cache",
]
