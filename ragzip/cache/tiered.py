"""Several caches read in order, nearest first, with hits copied back to the nearer ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ragzip.cache.base import BaseByteCache, ByteCache
from ragzip.errors import ConfigError

__all__ = ["TieredCache"]


class TieredCache(BaseByteCache):
    """A read-through stack of caches: e.g. a process-local LRU in front of a shared Redis.

    ``get`` asks each tier in order for the keys still missing; a hit in a later tier is
    written back to the earlier ones. ``put`` writes to every tier. Since each tier swallows
    its own failures, a dead Redis behind a memory tier still serves the memory hits.

    Args:
        *tiers: Caches, nearest (fastest) first.

    Example:
        >>> cache = TieredCache(MemoryCache(), RedisCache("redis://127.0.0.1:6379/0"))
    """

    name = "tiered"

    def __init__(self, *tiers: ByteCache) -> None:
        super().__init__()
        if not tiers:
            raise ConfigError("TieredCache needs at least one tier")
        self.tiers: tuple[ByteCache, ...] = tiers

    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        missing = list(keys)
        for depth, tier in enumerate(self.tiers):
            if not missing:
                break
            hits = tier.get_many(missing)
            if not hits:
                continue
            for nearer in self.tiers[:depth]:
                nearer.put_many(hits)
            found.update(hits)
            missing = [k for k in missing if k not in hits]
        return found

    def _store(self, items: Mapping[str, bytes]) -> None:
        for tier in self.tiers:
            tier.put_many(items)

    def _clear(self) -> None:
        for tier in self.tiers:
            tier.clear()

    def __repr__(self) -> str:
        return f"TieredCache({', '.join(repr(t) for t in self.tiers)})"
