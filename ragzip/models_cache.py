"""One bounded, thread-safe registry of the models shared across a process.

Components that share a loaded model (the bi-encoder behind :func:`get_bi_encoder
<ragzip.encoders.bi_encoder.get_bi_encoder>`, the soft decoder, the abstractive compressor's
generator) look it up here under a key built from the :func:`normalised
<ragzip.models.normalize_model_name>` model name, so every spelling of a name shares one
instance. The registry holds at most :func:`max_loaded_models` entries (8 by default,
``RAGZIP_MAX_LOADED_MODELS`` or :func:`set_max_loaded_models` to change it); adding one more
drops the least recently used. A dropped model is freed once nothing else references it:
components built earlier keep theirs until they are themselves dropped.

Loading runs outside the registry's lock: concurrent requests for the same key wait for one
load, and different keys load in parallel.

Example:
    >>> from ragzip.models_cache import shared_model
    >>> encoder = shared_model("bi-encoder", " MiniLM ", lambda name: BiEncoder(name))
    >>> encoder is shared_model("bi-encoder", "minilm", lambda name: BiEncoder(name))
    True
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

from ragzip.errors import ConfigError
from ragzip.models import normalize_model_name

__all__ = [
    "DEFAULT_MAX_LOADED_MODELS",
    "ModelCache",
    "loaded_models",
    "max_loaded_models",
    "set_max_loaded_models",
    "shared_model",
]

DEFAULT_MAX_LOADED_MODELS = 8
_ENV = "RAGZIP_MAX_LOADED_MODELS"

T = TypeVar("T")


def _check_bound(value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{source} must be an integer >= 1, got {value!r}")
    return value


class ModelCache:
    """A keyed LRU of loaded objects with a maximum entry count.

    Args:
        max_entries: Most entries held (>= 1); the least recently used is dropped first.

    Raises:
        ConfigError: ``max_entries`` is not an integer >= 1.

    Example:
        >>> cache = ModelCache(2)
        >>> cache.get_or_load("a", lambda: object()) is cache.get_or_load("a", lambda: 1)
        True
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_LOADED_MODELS) -> None:
        self._max = _check_bound(max_entries, "max_entries")
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._loading: dict[Hashable, Future[Any]] = {}
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        """The most entries held at once."""
        return self._max

    def resize(self, max_entries: int) -> None:
        """Changes the bound, dropping the least recently used entries beyond it.

        Raises:
            ConfigError: ``max_entries`` is not an integer >= 1.
        """
        bound = _check_bound(max_entries, "max_entries")
        with self._lock:
            self._max = bound
            self._trim()

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        """The entry under ``key``, calling ``load()`` once to create it when absent.

        Threads asking for a key being loaded wait for that load and share its result (or its
        exception); a failed load stores nothing, so the next call tries again.

        Args:
            key: A hashable key (e.g. ``("bi-encoder", "minilm", ...)``).
            load: Builds the entry; called without the registry's lock held.

        Returns:
            The entry, now the most recently used.
        """
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            pending = self._loading.get(key)
            owner = pending is None
            if pending is None:
                pending = self._loading[key] = Future()
        if not owner:
            return pending.result()
        try:
            value = load()
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._loading[key]
            self._entries[key] = value
            self._entries.move_to_end(key)
            self._trim()
        pending.set_result(value)
        return value

    def _trim(self) -> None:
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def discard(self, key: Hashable) -> None:
        """Drops ``key`` if it is held."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Drops every entry."""
        with self._lock:
            self._entries.clear()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


_default: ModelCache | None = None
_default_lock = threading.Lock()


def loaded_models() -> ModelCache:
    """The process-wide registry (created on first use, bounded by
    ``$RAGZIP_MAX_LOADED_MODELS`` when set, else :data:`DEFAULT_MAX_LOADED_MODELS`).

    Raises:
        ConfigError: ``RAGZIP_MAX_LOADED_MODELS`` is set to something other than an integer
            >= 1.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelCache(_bound_from_env())
        return _default


def _bound_from_env() -> int:
    raw = os.environ.get(_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_LOADED_MODELS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        raise ConfigError(f"{_ENV} must be an integer >= 1, got {raw!r}")
    return value


def max_loaded_models() -> int:
    """The bound of the process-wide registry."""
    return loaded_models().max_entries


def set_max_loaded_models(max_entries: int) -> None:
    """Sets the bound of the process-wide registry (least recently used entries beyond it are
    dropped now).

    Raises:
        ConfigError: ``max_entries`` is not an integer >= 1.
    """
    loaded_models().resize(max_entries)


def shared_model(kind: str, name: str, load: Callable[[str], T], settings: Hashable = ()) -> T:
    """The process-wide instance of model ``name`` of ``kind`` with ``settings``.

    The name is normalised (:func:`~ragzip.models.normalize_model_name`) and ``load`` is called
    with the normalised name, once per ``(kind, name, settings)`` while the entry stays in the
    registry.

    Args:
        kind: What is loaded (``"bi-encoder"``, ``"decoder"``...): keeps kinds apart.
        name: Model name in any spelling.
        load: Builds the instance from the normalised name.
        settings: Whatever else distinguishes instances (device, dtype...), hashable.

    Raises:
        ConfigError: an empty or non-string name.
    """
    normalized = normalize_model_name(name)
    return loaded_models().get_or_load((kind, normalized, settings), lambda: load(normalized))
