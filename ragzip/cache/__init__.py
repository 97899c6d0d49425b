"""Caches of computed artifacts (embeddings, summaries, scores) shared across queries.

Everything is bytes by string key behind the :class:`ByteCache` protocol: an in-process
:class:`MemoryCache`, a host-wide :class:`DiskCache`, a :class:`RedisCache` shared by replicas,
and a :class:`TieredCache` that stacks them. :class:`ArrayCache` stores numpy arrays on any of
them. Build one from a spec with :func:`make_cache`; :func:`default_cache` is the process-wide
one (``$RAGZIP_CACHE``). Nothing is created at import time.

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
from ragzip.cache.memory import MemoryCache
from ragzip.cache.redis import RedisCache
from ragzip.cache.tiered import TieredCache

__all__ = [
    "ArrayCache",
    "BaseByteCache",
    "ByteCache",
    "CacheStats",
    "DiskCache",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "TieredCache",
    "content_key",
    "default_cache",
    "make_cache",
    "set_default_cache",
]
