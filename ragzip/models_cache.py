"""One bounded, thread-safe registry of the models and components shared across a process.

Components that share a loaded model (the bi-encoder behind :func:`get_bi_encoder
<ragzip.encoders.bi_encoder.get_bi_encoder>`, the soft decoder) look it up here with
:func:`shared_model`, under a key built from the :func:`normalised
<ragzip.models.normalize_model_name>` model name, so every spelling of a name shares one
instance; components built from a spec (the abstractive compressor's generator) with
:func:`shared_component`, under the spec's canonical :func:`spec_key`. A :class:`ModelCache`
of its own, passed as ``cache``, keeps one owner's components apart (the REST server's
compressors). The registry holds at most :func:`max_loaded_models` entries (8 by default,
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

import json
import os
import threading
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from ragzip.cache.lru import LRU
from ragzip.errors import ConfigError
from ragzip.models import normalize_model_name

__all__ = [
    "DEFAULT_MAX_LOADED_MODELS",
    "ModelCache",
    "loaded_models",
    "max_loaded_models",
    "set_max_loaded_models",
    "shared_component",
    "shared_model",
    "spec_key",
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
        self._entries: LRU[Hashable, Any] = LRU(_check_bound(max_entries, "max_entries"))
        self._loading: dict[Hashable, Future[Any]] = {}
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        """The most entries held at once."""
        return self._entries.max_size

    def resize(self, max_entries: int) -> None:
        """Changes the bound, dropping the least recently used entries beyond it.

        Raises:
            ConfigError: ``max_entries`` is not an integer >= 1.
        """
        self._entries.resize(_check_bound(max_entries, "max_entries"))

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
            found = self._entries.get(key, _ABSENT)
            if found is not _ABSENT:
                return cast(T, found)
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
            self._entries.put(key, value)
        pending.set_result(value)
        return value

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first."""
        return self._entries.keys()

    def values(self) -> list[Any]:
        """The entries held, least recently used first."""
        return self._entries.values()

    def discard(self, key: Hashable) -> None:
        """Drops ``key`` if it is held."""
        self._entries.discard(key)

    def clear(self) -> None:
        """Drops every entry."""
        self._entries.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)


_ABSENT = object()
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


def spec_key(spec: str | Mapping[str, Any]) -> str:
    """The canonical JSON of a component spec, the key of everything built once per spec.

    ``"x"``, ``{"type": "x"}`` and ``{"type": "x", "params": {}}`` are equal; dict keys are
    sorted; a ``model`` parameter is normalised (:func:`~ragzip.models.normalize_model_name`),
    so spellings of one model share a key.

    Raises:
        ConfigError: a spec that is neither a name nor a dict, or an empty ``model`` parameter.

    Example:
        >>> spec_key("truncate") == spec_key({"params": {}, "type": "truncate"})
        True
    """
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a spec is a name or a dict, got {type(spec).__name__}")
    params = spec.get("params") or {}
    if isinstance(params, Mapping):  # anything else is left for the registry to refuse
        params = dict(params)
        if isinstance(params.get("model"), str):
            params["model"] = normalize_model_name(params["model"])
    return json.dumps({**spec, "params": params}, sort_keys=True, default=str)


def shared_component(
    kind: str,
    spec: str | Mapping[str, Any],
    build: Callable[[], T],
    cache: ModelCache | None = None,
) -> T:
    """The one instance of what ``spec`` builds, built once by ``build()`` and then shared.

    Args:
        kind: What is built (``"generator"``, ``"compressor"``...): keeps kinds apart.
        spec: The component's spec; instances are keyed by its :func:`spec_key`.
        build: Builds the instance (called without any lock held; concurrent callers of one
            spec wait for one build).
        cache: Where instances live: the process-wide registry by default, or an owner's
            own :class:`ModelCache`.

    Raises:
        ConfigError: an empty ``model`` parameter.
    """
    registry = cache if cache is not None else loaded_models()
    return registry.get_or_load((kind, spec_key(spec)), build)
