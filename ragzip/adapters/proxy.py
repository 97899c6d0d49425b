"""The OpenAI-compatible compressing proxy.

A local generator can be its upstream: see :mod:`ragzip.adapters.local_openai`.

**The proxy** (:func:`create_proxy_router`) answers ``POST /v1/chat/completions``: it compresses
the retrieved context of the request, forwards the request to an OpenAI-compatible upstream
and relays the answer (server-sent events are passed through as they arrive). Every answer
carries ``X-Ragzip-Tokens-Before``, ``X-Ragzip-Tokens-After``, ``X-Ragzip-Ratio`` and
``X-Ragzip-Tokens-Saved``. Context is marked in one of two ways (both may be combined):

1. An extension field, removed before forwarding (OpenAI SDKs send it with ``extra_body``)::

       "ragzip": {
         "documents": ["text", {"text": "...", "id": "d1", "title": "..."}],
         "query": "optional; default: the last user message",
         "budget": {"ratio": 4} | {"tokens": 300, "keep": ["..."]} | 4,
         "compressor": "optional spec, e.g. truncate or {type: extractive, params: {...}}",
         "inject": "system" | "user"
       }

   The kept text is rendered as ``[1] ...`` lines under ``Context:`` and appended to the first
   system message (or a new one), or, with ``"inject": "user"``, put before the last user
   message.

2. Marked sections inside any message's text: ``<ragzip:context> ... </ragzip:context>``. A
   section holds one document, documents separated by lines of ``---``, or
   ``<doc>...</doc>`` elements. Each section is replaced in place (tags removed) by its kept
   documents separated by blank lines. The ``ragzip`` field may still give a query, budget or
   compressor.

All documents of one request are compressed together in one call, in a worker thread.
Requests with neither marking are forwarded byte for byte (the headers say 0 saved).

**One request path.** Mounted by ``ragzip serve``, the proxy goes through the sidecar's path:
auth and the body limits before parsing, the compressor chosen under the server's request
policy (:mod:`ragzip.adapters.rest.policy`, so a request cannot name models, files or URLs),
the document and token limits, one compute slot for the whole request (streams included),
the request timeout and the metrics. ``GET /v1/models`` relays the upstream's list.

**Errors** are OpenAI's: ``{"error": {"message", "type", "param", "code"}}``; an invalid
request (malformed JSON, a bad ``ragzip`` field) is 400 ``invalid_request_error``; limits are
413/429; upstream 4xx answers are relayed as they are; 5xx answers and connection failures
become 502 and timeouts 504. Messages name the upstream without its credentials.

**Credentials.** Only ``upstream_api_key`` is sent upstream; a client's ``Authorization``
header (the sidecar's own key, or anything else) is never forwarded.

**Lifecycle.** The proxy shares one lazily created ``httpx.AsyncClient``
(:class:`~ragzip.adapters.upstream.Upstream`). The router's lifespan closes it on shutdown:
FastAPI merges router lifespans on ``app.include_router(router)``, so nothing else is needed.
Code that drives :class:`ChatProxy` itself calls :meth:`ChatProxy.aclose`.

Example:
    >>> from ragzip.adapters.rest import ServerSettings
    >>> from fastapi import FastAPI
    >>> from ragzip.adapters.proxy import create_proxy_router
    >>> settings = ServerSettings(upstream_url="http://127.0.0.1:8000/v1", compressor="extractive")
    >>> app = FastAPI()
    >>> app.include_router(create_proxy_router(settings))
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ragzip.adapters.chat_context import (
    APPENDED_CONTEXT,
    SYSTEM_CONTEXT,
    USER_CONTEXT,
    ChatPlan,
    InvalidChatRequest,
    plan_request,
)
from ragzip.compressors.base import BudgetLike, Compressor
from ragzip.errors import ConfigError, MissingDependencyError
from ragzip.types import CompressionResult
from ragzip.wire import openai as wire

if TYPE_CHECKING:
    import httpx

try:
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    from ragzip.adapters.proxy_settings import server_settings
    from ragzip.adapters.rest.errors import openai_error
    from ragzip.adapters.rest.hardening import Limiter, Slot, check_input_size, json_depth
    from ragzip.adapters.rest.metrics import Metrics
    from ragzip.adapters.rest.service import Services
    from ragzip.adapters.upstream import Upstream
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        f"the OpenAI-compatible proxy needs FastAPI ({exc}). Install it: pip install "
        "'ragzip[server]'"
    ) from exc

__all__ = [
    "APPENDED_CONTEXT",
    "SYSTEM_CONTEXT",
    "USER_CONTEXT",
    "ChatProxy",
    "create_proxy_router",
]


class ChatProxy:
    """Compresses the context of chat completion requests and forwards them upstream.

    Args:
        settings: :class:`ServerSettings`, or any object with ``upstream_url`` (a base URL
            ending in ``/v1``) and optionally other settings fields (``upstream_api_key``,
            ``request_timeout_s``, ``compressor``, ``budget``, limits...).
        compressor: A ready compressor, used as the default (and for its name).
        budget: Default budget, instead of the settings' one.
        services: The sidecar's components (compressor cache, request policy); built from
            ``settings`` when not given.
        limiter: The sidecar's concurrency and time limits; built from ``settings`` when not
            given.
        metrics: The sidecar's metrics (compression counters), if any.

    Raises:
        ConfigError: the upstream URL is missing or not http(s), or the compressor spec or
            budget is invalid.

    Example:
        >>> proxy = ChatProxy(ServerSettings(upstream_url="http://127.0.0.1:8000/v1"))
        >>> app.include_router(proxy.router)  # the router's lifespan closes the client
    """

    def __init__(
        self,
        settings: Any,
        *,
        compressor: Compressor | None = None,
        budget: BudgetLike | None = None,
        services: Services | None = None,
        limiter: Limiter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        settings = server_settings(settings, compressor, budget)
        url = settings.upstream_url
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            shown = wire.redact_url(url) if isinstance(url, str) else url
            raise ConfigError(
                f"the proxy needs upstream_url, an http(s) URL like http://host:8000/v1; "
                f"got {shown!r}"
            )
        self.settings = settings
        self.upstream = Upstream(url, settings.upstream_api_key, settings.request_timeout_s)
        overrides = {compressor.name: compressor} if compressor is not None else None
        self.services = services or Services(settings, compressor_overrides=overrides)
        self.services.compressor(None)  # a bad default spec fails here, not on a request
        self.limiter = limiter or Limiter(
            settings.max_concurrency,
            settings.max_queue,
            settings.request_timeout_s,
            settings.retry_after_s,
        )
        self.metrics = metrics
        self.router = self._make_router()

    # -- lifecycle -----------------------------------------------------------------------------
    def client(self) -> httpx.AsyncClient:
        """The shared upstream client, created on first use (per event loop)."""
        return self.upstream.client()

    async def aclose(self) -> None:
        """Closes the upstream client; the next request opens a new one."""
        await self.upstream.aclose()

    def _make_router(self) -> APIRouter:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            try:
                yield
            finally:
                await self.aclose()

        router = APIRouter(lifespan=lifespan, tags=["proxy"])
        router.add_api_route(
            "/v1/chat/completions",
            self.chat_completions,
            methods=["POST"],
            summary="Compress the request's context and forward it to the upstream",
            openapi_extra=_CHAT_OPENAPI,
            responses=_ERROR_RESPONSES,
        )
        router.add_api_route(
            "/v1/models",
            self.models,
            methods=["GET"],
            summary="The upstream's models",
            responses=_ERROR_RESPONSES,
        )
        return router

    # -- the routes ----------------------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        """Compresses, forwards, relays; see the module docstring."""
        stack = AsyncExitStack()
        try:
            raw = await request.body()
            plan = self._plan(raw)
            held = await stack.enter_async_context(self.limiter.slot())
            result = await self._compress(plan, held) if plan.has_context else None
            if plan.options is None and not plan.has_context:
                content = raw  # nothing of ours in it: forwarded byte for byte
            else:
                forwarded = plan.apply(result or _EMPTY)
                content = json.dumps(forwarded).encode()  # ASCII: lone surrogates stay escaped
            savings = _savings_headers(result)
        except Exception as exc:
            await stack.aclose()
            return self._error_of(exc, request)
        try:
            return await self.upstream.forward(content, request, held.left(), stack, savings)
        except Exception as exc:
            await stack.aclose()
            response = self._error_of(exc, request)
            response.headers.update(savings)
            return response

    async def models(self, request: Request) -> Response:
        """Relays the upstream's ``GET /models``."""
        try:
            async with self.limiter.slot() as held:
                return await self.upstream.models(request, held.left())
        except Exception as exc:
            return self._error_of(exc, request)

    # -- steps ---------------------------------------------------------------------------------
    def _plan(self, raw: bytes) -> ChatPlan:
        if json_depth(raw) > self.settings.max_json_depth:
            raise InvalidChatRequest(
                f"the JSON body is nested deeper than {self.settings.max_json_depth} levels "
                "(max_json_depth)"
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidChatRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidChatRequest("the request body must be a JSON object")
        return plan_request(body, self.services.default_budget)

    async def _compress(self, plan: ChatPlan, held: Slot) -> CompressionResult:
        spec = plan.options.compressor if plan.options is not None else None
        compressor = self.services.compressor(spec)
        budget = self.services.budget(plan.budget)
        texts = [d.text for d in plan.documents]
        check_input_size(
            plan.query,
            texts,
            max_documents=self.settings.max_documents,
            max_tokens=self.settings.max_tokens_per_request,
            count=self.services.count(compressor),
        )
        result = await self.limiter.in_thread(
            held, compressor.compress, plan.query, plan.documents, budget
        )
        if self.metrics is not None:
            self.metrics.observe_compression(
                result.compressor, result.tokens_before, result.tokens_after
            )
        return result

    def _error_of(self, exc: BaseException, request: Request) -> JSONResponse:
        """An OpenAI-style error answer for anything that went wrong (logged, never leaked)."""
        param = exc.param if isinstance(exc, InvalidChatRequest) else None
        return openai_error(
            exc, request.url.path, log_documents=self.settings.log_documents, param=param
        )


_EMPTY = CompressionResult((), 0, 0, "", "none")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": "an OpenAI-style error: {error: {message, type, param, code}}"}
    for code in (400, 401, 408, 413, 429, 502, 503, 504)
}
_CHAT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {
                        "model": {"type": "string"},
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": "boolean"},
                        "ragzip": {
                            "type": "object",
                            "description": "context to compress: documents, query, budget, "
                            "compressor, inject (see the proxy's documentation)",
                        },
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}


def create_proxy_router(
    settings: Any,
    *,
    compressor: Compressor | None = None,
    budget: BudgetLike | None = None,
) -> APIRouter:
    """The proxy's router (``POST /v1/chat/completions``, ``GET /v1/models``).

    Including it with ``app.include_router`` also installs its lifespan, which closes the
    shared upstream client on shutdown. See :class:`ChatProxy`.

    Raises:
        ConfigError: ``settings.upstream_url`` is missing or not http(s), or the compressor
            spec or budget in ``settings`` is invalid.
    """
    return ChatProxy(settings, compressor=compressor, budget=budget).router


def _savings_headers(result: CompressionResult | None) -> dict[str, str]:
    before = result.tokens_before if result is not None else 0
    after = result.tokens_after if result is not None else 0
    ratio = result.ratio if result is not None else 1.0
    return {
        "X-Ragzip-Tokens-Before": str(before),
        "X-Ragzip-Tokens-After": str(after),
        "X-Ragzip-Ratio": f"{ratio:.4f}" if math.isfinite(ratio) else "inf",
        "X-Ragzip-Tokens-Saved": str(before - after),
    }
