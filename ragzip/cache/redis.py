"""A cache in Redis, shared by replicas, that degrades to misses when Redis is away.

Reads use one ``MGET``, writes one pipelined batch of ``SET`` (with ``EX`` when a TTL is set).
Any Redis failure is swallowed: reads return misses, writes are dropped, ``stats().errors``
counts them, and a circuit breaker stops calling Redis for ``retry_after_s`` seconds so an
outage costs one timeout, not one per request. One warning is logged per outage and one info
line when Redis answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ragzip._optional import require
from ragzip.cache.base import BaseByteCache
from ragzip.errors import ConfigError

__all__ = ["RedisCache"]

logger = logging.getLogger("ragzip.cache")
T = TypeVar("T")


def _safe_url(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisCache(BaseByteCache):
    """Bytes by key in Redis under ``prefix``, never raising when Redis is unreachable.

    Needs the ``redis`` package (``pip install 'ragzip[redis]'``). The constructor does not
    connect; the first get or put does.

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://`` for TLS.
        prefix: Prepended to every key, so several caches can share a database.
        ttl_s: Expiry of each entry in seconds; ``None``: entries do not expire (configure
            Redis' ``maxmemory-policy`` to evict).
        timeout_s: Socket connect and read timeout; keep it small, a miss is cheap.
        retry_after_s: After a failure, Redis is not called again for this long.

    Example:
        >>> cache = RedisCache("redis://cache.internal:6379/0", ttl_s=7 * 24 * 3600)
        >>> cache.put("k", b"v"); cache.get("k")  # None if Redis is down, never an error
    """

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "ragzip:",
        ttl_s: int | None = None,
        timeout_s: float = 0.5,
        retry_after_s: float = 5.0,
    ) -> None:
        super().__init__()
        if ttl_s is not None and ttl_s <= 0:
            raise ConfigError(f"ttl_s must be a positive number of seconds or None, got {ttl_s}")
        redis = require("redis", "the Redis cache")
        self.url = url
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._redis_error: type[Exception] = redis.RedisError
        retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        try:
            self._client: Any = redis.Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=retry,
                retry_on_timeout=False,
            )
        except ValueError as exc:
            raise ConfigError(f"Invalid Redis URL {_safe_url(url)!r}: {exc}") from exc
        self._state = threading.Lock()
        self._down_until = 0.0  # monotonic time before which Redis is not called
        self._outage = False

    @property
    def available(self) -> bool:
        """False while the circuit breaker holds calls back after a failure."""
        return time.monotonic() >= self._down_until

    def _call(self, what: str, fn: Callable[[], T]) -> T | None:
        if not self.available:
            return None
        try:
            result = fn()
        except (self._redis_error, OSError) as exc:
            self._error()
            with self._state:
                self._down_until = time.monotonic() + self.retry_after_s
                first = not self._outage
                self._outage = True
            if first:
                logger.warning(
                    "Redis cache at %s unreachable: %s; serving from local compute "
                    "(retrying every %.1f s)",
                    _safe_url(self.url),
                    exc,
                    self.retry_after_s,
                )
            else:
                logger.debug("Redis cache %s still failing: %s", what, exc)
            return None
        with self._state:
            recovered, self._outage = self._outage, False
        if recovered:
            logger.info("Redis cache at %s is reachable again", _safe_url(self.url))
        return result

    def _fetch(self, keys: Sequence[str]) -> dict[str, bytes]:
        names = [self.prefix + k for k in keys]
        values = self._call("read", lambda: self._client.mget(names))
        if values is None:
            return {}
        return {k: bytes(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def _store(self, items: Mapping[str, bytes]) -> None:
        def write() -> None:
            pipe = self._client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(self.prefix + key, value, ex=self.ttl_s)
            pipe.execute()

        self._call("write", write)

    def _clear(self) -> None:
        """Deletes the keys under ``prefix`` (all of them: other replicas lose them too)."""

        def drop() -> None:
            batch: list[str] = []
            for name in self._client.scan_iter(match=self.prefix + "*", count=500):
                batch.append(name)
                if len(batch) >= 500:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)

        self._call("clear", drop)

    def close(self) -> None:
        """Releases the connection pool."""
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisCache({_safe_url(self.url)!r}, prefix={self.prefix!r}, ttl_s={self.ttl_s})"
