"""The app factory: ``create_app(settings)`` wires settings, components, limits and routes.

Run it with ``ragzip serve`` (uvicorn) or any ASGI server::

    uvicorn --factory ragzip.adapters.rest.app:create_app

**Lifespan.** Startup builds the default compressor and loads the index (a bad config fails
the start); with ``warm_up`` the models then load in the background while ``/healthz``
already answers and ``/readyz`` says 503 until they are in. Shutdown is uvicorn's: it stops
accepting connections, lets in-flight requests finish (up to ``graceful_shutdown_s`` with
``ragzip serve``), then runs the lifespan exit, which detaches the encoder batchers and
closes a generator the app built.

**Middleware** (outermost first): CORS (only with ``cors_origins``), metrics, a catch-all
that turns escaped exceptions into a generic 500, bearer auth (before a byte of the body is
read), then the body limits (size, read time, JSON depth) before any parsing. Every route,
the OpenAI-compatible ones included, then goes through the same request policy, limits,
timeout and metrics (see :mod:`ragzip.adapters.rest.routes` and
:mod:`ragzip.adapters.proxy`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Security
from fastapi.security import HTTPBearer

from ragzip import __version__
from ragzip.adapters.rest import routes
from ragzip.adapters.rest.errors import CatchAllMiddleware, install_error_handlers
from ragzip.adapters.rest.hardening import AuthMiddleware, BodyLimitMiddleware, Limiter
from ragzip.adapters.rest.metrics import Metrics, MetricsMiddleware
from ragzip.adapters.rest.service import Services
from ragzip.adapters.rest.settings import ServerSettings
from ragzip.compressors.base import Compressor

__all__ = ["create_app"]

logger = logging.getLogger("ragzip.server")


def create_app(
    settings: ServerSettings | None = None,
    *,
    compressor_overrides: Mapping[str, Compressor] | None = None,
    retriever: Any = None,
    generator: Any = None,
) -> FastAPI:
    """Builds the REST sidecar.

    Args:
        settings: Server settings (default: from ``RAGZIP_*`` and the config file).
        compressor_overrides: Ready compressors by name; a request or the default spec that
            names one without params gets that object (for embedding and tests).
        retriever: A ready retriever, instead of loading ``settings.index_dir``.
        generator: A ready generator, instead of building ``settings.generator``.

    Returns:
        The FastAPI app; its lifespan builds and warms the components.

    Raises:
        ConfigError: the default budget or the generator spec is invalid.

    Example:
        >>> app = create_app(ServerSettings(compressor="truncate", warm_up=False))
    """
    settings = settings or ServerSettings()
    services = Services(
        settings,
        compressor_overrides=compressor_overrides,
        retriever=retriever,
        generator=generator,
    )
    metrics = Metrics(encoders=services.encoders)
    services.on_build = metrics.compressors_built.inc
    limiter = Limiter(
        settings.max_concurrency,
        settings.max_queue,
        settings.request_timeout_s,
        settings.retry_after_s,
        metrics,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services.cache is not None:
            from ragzip.cache import set_default_cache

            set_default_cache(services.cache)  # soft segments and other default-cache users
        if settings.allow_regex:
            from ragzip.patterns import set_pattern_timeout

            set_pattern_timeout(settings.regex_timeout_s)  # the server owns its process
        await asyncio.to_thread(services.start)
        warming = (
            asyncio.ensure_future(asyncio.to_thread(services.warm)) if settings.warm_up else None
        )
        try:
            yield
        finally:
            if warming is not None and not warming.done():
                logger.info("shutting down while models are still loading")
            services.stop()

    app = FastAPI(
        title="ragzip",
        version=__version__,
        summary="Compress retrieved context before it reaches the LLM.",
        lifespan=lifespan,
    )
    app.state.ragzip = routes.State(services=services, limiter=limiter, metrics=metrics)
    install_error_handlers(app, log_documents=settings.log_documents)
    # Checked by AuthMiddleware before the body is read; declared here for the OpenAPI schema.
    auth = [Security(HTTPBearer(auto_error=False))] if settings.api_key else []
    app.include_router(routes.api_router, dependencies=auth)
    app.include_router(routes.probe_router)
    if settings.ui:
        from ragzip.adapters.rest import inspector

        app.include_router(inspector.api_router, dependencies=auth)
        app.include_router(inspector.page_router)
    _include_openai_routers(app, settings, services, limiter, metrics, auth)

    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        max_depth=settings.max_json_depth,
    )
    app.add_middleware(
        AuthMiddleware, api_key=settings.api_key, protected=("/v1/", "/metrics", "/ui")
    )
    app.add_middleware(CatchAllMiddleware, log_documents=settings.log_documents)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _include_openai_routers(
    app: FastAPI,
    settings: ServerSettings,
    services: Services,
    limiter: Limiter,
    metrics: Metrics,
    auth: list[Any],
) -> None:
    """Mounts the compressing chat proxy, or the local generator as an OpenAI upstream."""
    if not settings.upstream_url and not (settings.serve_local_generator and services.generator):
        return
    try:
        from ragzip.adapters import local_openai, proxy
    except ImportError as exc:
        logger.warning("OpenAI-compatible routes unavailable (%s); skipping them", exc)
        return
    if settings.upstream_url:
        chat = proxy.ChatProxy(settings, services=services, limiter=limiter, metrics=metrics)
        app.include_router(chat.router, dependencies=auth)
    else:
        router = local_openai.create_local_openai_router(services.generator, limiter=limiter)
        app.include_router(router, dependencies=auth)
