"""The components behind the routes: compressors (cached per spec), retriever, generator."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ragzip.adapters.rest import batching
from ragzip.adapters.rest.policy import RequestPolicy
from ragzip.adapters.rest.settings import ServerSettings
from ragzip.cache import ByteCache, make_cache
from ragzip.compressors.base import Compressor
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError, InvalidInputError, RagzipError
from ragzip.models_cache import ModelCache, shared_component, spec_key
from ragzip.tokens import get_counter
from ragzip.types import Budget

__all__ = ["Services", "spec_key"]

logger = logging.getLogger("ragzip.server")

_MAX_CACHED = 32


class Services:
    """Builds, caches, warms and releases what the routes use.

    Compressors built from request specs are cached by
    :func:`~ragzip.models_cache.spec_key` in a :class:`~ragzip.models_cache.ModelCache` of the
    server's own (at most 32, least recently used evicted; concurrent requests for one spec
    wait for one build), so repeated requests reuse loaded models; bi-encoders are shared
    process-wide anyway (:func:`~ragzip.encoders.bi_encoder.get_bi_encoder`). With the
    ``cache`` setting, every encoder the server uses stores its embeddings there too (so
    replicas pointed at one Redis share them; a Redis outage falls back to computing).

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
        self.policy = RequestPolicy(settings, self._overrides)
        self.cache: ByteCache | None = make_cache(settings.cache) if settings.cache else None
        self._compressors = ModelCache(_MAX_CACHED)
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
        self._attached: list[Any] = []  # encoders given a micro-batcher
        self._seen: list[Any] = []  # encoders prepared (cache, batcher)
        self.ready = False
        self.draining = False  # set on SIGTERM by ragzip serve: /readyz says 503 from then
        self.warm_error: str | None = None
        self.on_build: Callable[[], None] = lambda: None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Builds the default compressor and loads the index (fails fast on bad config)."""
        self.compressor(None)
        for override in self._overrides.values():
            self._prepare(override)
        if self.retriever is None and self.settings.index_dir is not None:
            from ragzip.retrievers.faiss_index import FaissRetriever

            self.retriever = FaissRetriever.load(self.settings.index_dir)
        self._prepare(self.retriever)
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
        self._seen.clear()
        if self._own_generator and self.generator is not None:
            self.generator.close()

    # -- compressors ----------------------------------------------------------------------------
    def compressor(self, requested: str | Mapping[str, Any] | None) -> Compressor:
        """The compressor for a request's choice (``None``: the default), built once and cached.

        The choice goes through :class:`~ragzip.adapters.rest.policy.RequestPolicy`: only
        offered names and the parameters each compressor declares safe.
        """
        override = self._overrides.get(_bare_name(requested or self.default_spec) or "")
        if override is not None:
            return override
        spec = self.policy.spec(requested)
        built: Compressor = shared_component(
            "compressor", spec, lambda: self._build(spec), self._compressors
        )
        return built

    def _build(self, spec: str | Mapping[str, Any]) -> Compressor:
        try:
            built: Compressor = compressors.build(spec)  # cheap: models load on first use
        except ValueError as exc:  # an option a compressor rejects is a bad request, not a 500
            if isinstance(exc, RagzipError):
                raise
            raise ConfigError(f"invalid compressor options: {exc}") from exc
        self.on_build()
        self._prepare(built)
        return built

    def budget(self, budget: Budget | None) -> Budget:
        """A request's budget under the server's policy (``None``: the default budget)."""
        return self.default_budget if budget is None else self.policy.budget(budget)

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
        components: list[Any] = [*self._compressors.values(), self.retriever]
        for component in components:
            yield from _encoders_of(component)

    def _prepare(self, component: Any) -> None:
        """Gives a component's encoders the server's cache and micro-batcher (once each)."""
        if component is None:
            return
        for encoder in _encoders_of(component):
            if any(encoder is e for e in self._seen):
                continue
            self._seen.append(encoder)
            if self.cache is not None and encoder.shared_cache is None:
                encoder.shared_cache = self.cache  # embeddings under its "emb" namespace
            if (
                self.settings.batching
                and batching.attach(encoder, self.settings.batch_window_ms / 1000) is not None
            ):
                self._attached.append(encoder)


def _bare_name(spec: str | Mapping[str, Any]) -> str | None:
    """The name of a spec that sets no parameters (``"x"`` or ``{"type": "x"}``)."""
    if isinstance(spec, str):
        return spec
    if set(spec) <= {"type", "params"} and not spec.get("params"):
        name = spec.get("type")
        return name if isinstance(name, str) else None
    return None


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
