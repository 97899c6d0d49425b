"""Caches from one-line specs, and the process-wide default cache (``RAGZIP_CACHE``).

Specs: ``"memory"`` or ``"memory?max_mb=64"``; ``"disk:/path"`` or ``"file:///path"``
(optionally ``?max_mb=N``); ``"redis://host:port/db"`` or ``"rediss://..."`` (optionally
``?prefix=P&ttl_s=N&timeout_s=F&retry_after_s=F``; other query parameters go to redis-py);
``"none"`` or ``"off"``; several joined with ``"+"`` or given as a list make a
:class:`TieredCache`, nearest first: ``"memory+redis://127.0.0.1:6379/0"``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ragzip.cache.base import ByteCache, NullCache
from ragzip.cache.disk import DiskCache
from ragzip.cache.memory import MemoryCache
from ragzip.cache.redis import RedisCache
from ragzip.cache.tiered import TieredCache
from ragzip.errors import ConfigError

__all__ = ["CacheSpec", "default_cache", "make_cache", "set_default_cache"]

CacheSpec = str | ByteCache | list[Any] | tuple[Any, ...] | None

ACCEPTED = (
    "'memory', 'memory?max_mb=64', 'disk:/path' or 'file:///path' (optionally ?max_mb=N), "
    "'redis://host:port/db' or 'rediss://...' (optionally ?prefix=P&ttl_s=N&timeout_s=F"
    "&retry_after_s=F), 'none' or 'off', several joined with '+' "
    "(e.g. 'memory+redis://127.0.0.1:6379/0') or a list of these, or a ByteCache instance"
)
ENV_VAR = "RAGZIP_CACHE"


def _fail(spec: object, why: str) -> ConfigError:
    return ConfigError(f"Invalid cache spec {spec!r}: {why}. Accepted forms: {ACCEPTED}")


def _number(spec: str, params: dict[str, str], name: str, kind: type[float] | type[int]) -> Any:
    raw = params.pop(name, None)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise _fail(spec, f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < 0:
        raise _fail(spec, f"{name} must be >= 0")
    return value


def _split_query(spec: str, rest: str) -> tuple[str, dict[str, str]]:
    body, _, query = rest.partition("?")
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise _fail(spec, f"cannot parse the query {query!r}") from None
    return body, params


def _no_leftovers(spec: str, params: dict[str, str]) -> None:
    if params:
        raise _fail(spec, f"unknown parameter(s) {', '.join(sorted(params))}")


def _max_bytes(spec: str, params: dict[str, str]) -> int | None:
    max_mb = _number(spec, params, "max_mb", float)
    return None if max_mb is None else int(max_mb * 2**20)


def _memory(spec: str, rest: str) -> ByteCache:
    body, params = _split_query(spec, rest)
    if body:
        raise _fail(spec, "memory takes no path")
    max_bytes = _max_bytes(spec, params)
    _no_leftovers(spec, params)
    return MemoryCache() if max_bytes is None else MemoryCache(max_bytes)


def _disk(spec: str, rest: str) -> ByteCache:
    body, params = _split_query(spec, rest)
    path = urlsplit(body).path if body.startswith("//") else body
    if not path:
        raise _fail(spec, "disk needs a path, e.g. 'disk:/var/cache/ragzip'")
    max_bytes = _max_bytes(spec, params)
    _no_leftovers(spec, params)
    return DiskCache(path, max_bytes)


def _redis(spec: str, rest: str) -> ByteCache:
    parts = urlsplit(spec)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    kwargs: dict[str, Any] = {}
    if "prefix" in params:
        kwargs["prefix"] = params.pop("prefix")
    for name, kind in (("ttl_s", int), ("timeout_s", float), ("retry_after_s", float)):
        value = _number(spec, params, name, kind)
        if value is not None:
            kwargs[name] = value
    if not parts.hostname:
        raise _fail(spec, "a Redis URL needs a host, e.g. 'redis://127.0.0.1:6379/0'")
    url = urlunsplit(parts._replace(query=urlencode(params)))
    return RedisCache(url, **kwargs)


def _null(spec: str, rest: str) -> ByteCache:
    if rest.strip("?"):
        raise _fail(spec, "none/off take no parameters")
    return NullCache()


# scheme -> builder(full spec, text after the scheme and its separator)
BUILDERS: dict[str, Callable[[str, str], ByteCache]] = {
    "memory": _memory,
    "disk": _disk,
    "file": _disk,
    "redis": _redis,
    "rediss": _redis,
    "none": _null,
    "off": _null,
    "null": _null,
}


def _scheme(spec: str) -> tuple[str, str]:
    """``("redis", "//host:6379/0")``, ``("disk", "/path")``, ``("memory", "?max_mb=64")``."""
    head = spec.split("?", 1)[0]
    if ":" in head:
        scheme, _, rest = spec.partition(":")
        return scheme.lower(), rest
    return head.lower(), spec[len(head) :]


def _single(spec: str) -> ByteCache:
    spec = spec.strip()
    scheme, rest = _scheme(spec)
    builder = BUILDERS.get(scheme)
    if builder is None:
        raise _fail(spec, f"unknown cache kind {scheme!r}" if scheme else "empty spec")
    return builder(spec, rest)


def make_cache(spec: CacheSpec = None) -> ByteCache:
    """Builds a cache from a spec (see the module docstring); a cache instance is returned as is.

    Raises:
        ConfigError: The spec is not one of the accepted forms.

    Example:
        >>> make_cache("memory+redis://127.0.0.1:6379/0?ttl_s=86400")  # a TieredCache
    """
    if spec is None:
        return MemoryCache()
    if isinstance(spec, ByteCache):
        return spec
    if isinstance(spec, list | tuple):
        tiers = [make_cache(s) for s in spec]
        if not tiers:
            raise _fail(spec, "an empty list")
        return tiers[0] if len(tiers) == 1 else TieredCache(*tiers)
    if not isinstance(spec, str):
        raise _fail(spec, f"a {type(spec).__name__} is not a spec")
    parts = spec.split("+")
    if len(parts) > 1:
        if any(not p.strip() for p in parts):
            raise _fail(spec, "an empty part between '+'")
        return TieredCache(*(_single(p) for p in parts))
    return _single(spec)


_default: ByteCache | None = None
_default_lock = threading.Lock()


def default_cache() -> ByteCache:
    """The process-wide cache, built on first call from ``$RAGZIP_CACHE`` (default ``memory``)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = make_cache(os.environ.get(ENV_VAR) or "memory")
        return _default


def set_default_cache(spec: CacheSpec) -> ByteCache | None:
    """Replaces the process-wide cache with ``make_cache(spec)`` and returns it.

    ``None`` resets it (and returns ``None``): the next :func:`default_cache` builds one from
    ``$RAGZIP_CACHE`` again.
    """
    global _default
    cache = None if spec is None else make_cache(spec)
    with _default_lock:
        _default = cache
    return cache
