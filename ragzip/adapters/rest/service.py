"""The components behind the routes: compressors (cached per spec), retriever, generator."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ragzip.adapters.rest import batching
from ragzip.adapters.rest.settings import ServerSettings
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.middleware.base import Compressor
from ragzip.middleware.registry import compressors
from ragzip.middleware.tokens import get_counter
from ragzip.types import Budget

__all__ = ["Services", "spec_key"]

logger = logging.getLogger("ragzip.server")

_MAX_CACHED = 32


def spec_key(spec: str | Mapping[str, Any]) -> str:
    """A canonical JSON key of a compressor spec (``"x"`` and ``{"type": "x"}`` are equal)."""
    if isinstance(spec, str):
        spec = {"type": spec}
    plain = {**dict(spec), "params": dict(spec.get("params") or {})}
    return json.dumps(plain, sort_keys=True, default=str)


class Services:
    """Builds, caches, warms and releases what the routes use.

    Compressors built from request specs are cached by :func:`spec_key` (at most 32, least
    recently used evicted), so repeated requests reuse loaded models; bi-encoders are shared
    process-wide anyway (:func:`~ragzip.encoders.bi_encoder.get_bi_encoder`).

    Args:
        settings: Server settings.
        compressor_overrides: Ready compressors used for specs naming them without params
            (``{"slow": SlowCompressor()}`` makes ``"slow"`` and ``{"type": "slow"}`` resolve
            to it); a test and embedding seam.
        retriever: A ready retriever instead of loading ``settings.index_dir``.
        generator: A ready generator instead of building ``settings.generator``.
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        compressor_overrides: Mapping[str, Compressor] | None = None,
        retriever: Any = None,
        generator: Any = None,
    ) -> None:
        self.settings = settings
        self._overrides = dict(compressor_overrides or {})
        self._cache: OrderedDict[str, Compressor] = OrderedDict()
        self._lock = threading.Lock()
        self.default_spec: str | dict[str, Any] = settings.compressor
        try:
            self.default_budget = Budget.of(settings.budget)
        except (InvalidInputError, TypeError) as exc:
            raise ConfigError(f"invalid default budget {settings.budget!r}: {exc}") from exc
        self.retriever = retriever
        self.generator = generator
        self._own_generator = False
        if self.generator is None and settings.generator is not None:
            from ragzip.generators.registry import generators

            self.generator = generators.build(settings.generator)  # cheap: loads on first use
            self._own_generator = True
        self._attached: list[Any] = []
        self.ready = False
        self.warm_error: str | None = None
        self.on_build: Callable[[], None] = lambda: None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Builds the default compressor and loads the index (fails fast on bad config)."""
        self.compressor(None)
        if self.retriever is None and self.settings.index_dir is not None:
            from ragzip.retrievers.faiss_index import FaissRetriever

            self.retriever = FaissRetriever.load(self.settings.index_dir)
        self._batch(self.retriever)
        if not self.settings.warm_up:
            self.ready = True

    def warm(self) -> None:
        """Loads the models of the default compressor, retriever and generator."""
        try:
            for component in (self.compressor(None), self.generator):
                warm = getattr(component, "warm_up", None)
                if callable(warm):
                    warm()
            encoder = getattr(self.retriever, "encoder", None)
            if encoder is not None:
                encoder.encode(["warm up"])
        except Exception as exc:
            self.warm_error = f"{type(exc).__name__}"
            logger.error("warm-up failed: %s: %s", type(exc).__name__, exc)
            return
        self.ready = True

    def stop(self) -> None:
        self.ready = False
        for encoder in self._attached:
            batching.detach(encoder)
        self._attached.clear()
        if self._own_generator and self.generator is not None:
            self.generator.close()

    # -- compressors ----------------------------------------------------------------------------
    def compressor(self, spec: str | Mapping[str, Any] | None) -> Compressor:
        """The compressor for a spec (``None``: the default), built once and cached."""
        if spec is None:
            spec = self.default_spec
        if isinstance(spec, Mapping) and not isinstance(spec.get("type"), str):
            raise ConfigError(f"a compressor spec needs a string 'type', got {spec.get('type')!r}")
        key = spec_key(spec)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        name = spec if isinstance(spec, str) else spec["type"]
        params = {} if isinstance(spec, str) else spec.get("params") or {}
        built: Compressor
        if name in self._overrides and not params:
            built = self._overrides[name]
        else:
            built = compressors.build(spec)  # cheap: models load on first use
            self.on_build()
        self._batch(built)
        with self._lock:
            self._cache[key] = built
            while len(self._cache) > _MAX_CACHED:
                self._cache.popitem(last=False)
        return built

    def count(self, compressor: Compressor) -> Callable[[str], int]:
        """The compressor's token counter (``approx`` when it has none)."""
        counter = getattr(compressor, "counter", None)
        if counter is None or not callable(getattr(counter, "count", None)):
            counter = get_counter("approx")
        count: Callable[[str], int] = counter.count
        return count

    # -- encoders -------------------------------------------------------------------------------
    def encoders(self) -> Iterator[Any]:
        """Bi-encoders of the cached compressors and the retriever (for metrics)."""
        with self._lock:
            components: list[Any] = [*self._cache.values(), self.retriever]
        for component in components:
            yield from _encoders_of(component)

    def _batch(self, component: Any) -> None:
        if not self.settings.batching or component is None:
            return
        for encoder in _encoders_of(component):
            if any(encoder is e for e in self._attached):
                continue
            if batching.attach(encoder, self.settings.batch_window_ms / 1000) is not None:
                self._attached.append(encoder)


def _encoders_of(component: Any) -> Iterator[Any]:
    """Known places where ragzip components keep their shared bi-encoders."""
    from ragzip.encoders.bi_encoder import BiEncoder

    if component is None:
        return
    candidates = [
        getattr(component, "sentence_encoder", None),
        getattr(getattr(component, "ranker", None), "encoder", None),
        getattr(component, "encoder", None),
    ]
    for candidate in candidates:
        if isinstance(candidate, BiEncoder):
            yield candidate
