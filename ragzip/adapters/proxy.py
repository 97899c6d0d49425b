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
Requests with neither marking are forwarded byte for byte (the headers say 0 saved). Upstream
4xx answers are relayed as they are; 5xx answers and connection failures become 502,
timeouts 504, invalid ``ragzip`` fields 422, all as ``{"error": {"message", "type"}}``.

**Lifecycle.** The proxy shares one lazily created ``httpx.AsyncClient``. The router's lifespan
closes it on shutdown: FastAPI merges router lifespans on ``app.include_router(router)``, so
nothing else is needed. Code that drives :class:`ChatProxy` itself calls
:meth:`ChatProxy.aclose`.

Example:
    >>> from types import SimpleNamespace
    >>> from fastapi import FastAPI
    >>> from ragzip.adapters.proxy import create_proxy_router
    >>> settings = SimpleNamespace(upstream_url="http://127.0.0.1:8000/v1", compressor="extractive")
    >>> app = FastAPI()
    >>> app.include_router(create_proxy_router(settings))
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ragzip.errors import (
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    RagzipError,
)
from ragzip.middleware.base import BudgetLike, Compressor
from ragzip.middleware.prompt import PromptTemplate
from ragzip.middleware.registry import compressors
from ragzip.types import Budget, CompressedDocument, CompressionResult, Document

try:
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from pydantic import BaseModel, ConfigDict, ValidationError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        f"the OpenAI-compatible proxy needs FastAPI ({exc}). Install it: pip install "
        "'ragzip[server]'"
    ) from exc

__all__ = ["ChatProxy", "create_proxy_router"]

logger = logging.getLogger(__name__)

DEFAULT_BUDGET: Mapping[str, Any] = {"ratio": 4.0}
SYSTEM_CONTEXT = "Answer using the context below when it is relevant.\n\nContext:\n{context}"
APPENDED_CONTEXT = "\n\nContext:\n{context}"
USER_CONTEXT = "Context:\n{context}\n\n{content}"
_CACHED_COMPRESSORS = 8

_SECTION = re.compile(r"<ragzip:context>(.*?)</ragzip:context>", re.DOTALL)
_DOC = re.compile(r"<doc(?:\s+id=\"([^\"]*)\")?\s*>(.*?)</doc>", re.DOTALL)
_RULE = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.MULTILINE)
# Not relayed either way: hop-by-hop headers, and ones the relaying side sets itself.
_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
     "te", "trailer", "upgrade", "proxy-authenticate", "proxy-authorization", "date", "server"}
)  # fmt: skip
_FORWARDED = ("openai-organization", "openai-project", "x-request-id")


# -- wire schema of the extension field -------------------------------------------------------
class RagzipOptions(BaseModel):
    """The ``ragzip`` field of a chat completions request (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    documents: list[Any] = []
    query: str | None = None
    budget: Any = None
    compressor: str | dict[str, Any] | None = None
    inject: Literal["system", "user"] = "system"


class _Invalid(InvalidInputError):
    """A request the proxy refuses with 422; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# -- planning: what in a request is context, and how it goes back -------------------------------
@dataclass
class _Plan:
    """The context found in one request body, and how to write the compressed one back."""

    body: dict[str, Any]
    options: RagzipOptions | None
    query: str
    budget: Budget
    documents: list[Document] = field(default_factory=list)
    sections: list[list[str]] = field(default_factory=list)  # document ids per section

    @property
    def has_context(self) -> bool:
        return bool(self.documents)

    def apply(self, result: CompressionResult) -> dict[str, Any]:
        """The request body to forward: sections replaced, field context injected."""
        kept: dict[str, list[CompressedDocument]] = {}
        for doc in result.documents:
            kept.setdefault(doc.source_id, []).append(doc)
        body = {k: v for k, v in self.body.items() if k != "ragzip"}
        messages = [dict(m) if isinstance(m, Mapping) else m for m in body.get("messages", [])]
        replacements = iter(
            "\n\n".join(" ".join(d.text for d in kept.get(i, [])) for i in ids if i in kept)
            for ids in self.sections
        )
        for message in messages:
            if isinstance(message, dict):
                _map_text(message, lambda text: _SECTION.sub(lambda _: next(replacements), text))
        body["messages"] = messages
        field_docs = [d for d in result.documents if d.source_id.startswith("f")]
        if field_docs and self.options is not None:
            context = PromptTemplate().context(field_docs)
            _inject(messages, context, self.options.inject)
        return body


def _plan(body: dict[str, Any], default_budget: BudgetLike) -> _Plan:
    """Finds the context of a request; raises :class:`_Invalid` for malformed ragzip input."""
    options: RagzipOptions | None = None
    if "ragzip" in body:
        raw = body["ragzip"]
        if not isinstance(raw, Mapping):
            raise _Invalid("'ragzip' must be an object", "ragzip")
        try:
            options = RagzipOptions.model_validate(raw)
        except ValidationError as exc:
            details = "; ".join(
                f"ragzip.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise _Invalid(f"invalid 'ragzip' field: {details}", "ragzip") from None
    messages = body.get("messages")
    if not isinstance(messages, list):
        if options is None:
            return _Plan(body, None, "", Budget.of(default_budget))
        raise _Invalid("'messages' must be a list of messages", "messages")
    try:
        budget = Budget.of(
            options.budget if options is not None and options.budget is not None
            else default_budget
        )  # fmt: skip
    except (InvalidInputError, TypeError) as exc:
        raise _Invalid(f"invalid ragzip.budget: {exc}", "ragzip.budget") from None
    documents: list[Document] = []
    if options is not None:
        for i, item in enumerate(options.documents):
            try:
                doc = Document.from_any(item, i)
            except InvalidInputError as exc:
                raise _Invalid(f"invalid ragzip.documents: {exc}", "ragzip.documents") from None
            documents.append(Document(doc.text, id=f"f{i}", metadata=doc.metadata))
    sections: list[list[str]] = []
    for m, message in enumerate(messages):
        if not isinstance(message, Mapping):
            continue
        for text in _texts(message):
            opened, closed = text.count("<ragzip:context>"), text.count("</ragzip:context>")
            found = _SECTION.findall(text)
            if not (opened == closed == len(found)):
                raise _Invalid(
                    f"message {m} has an unbalanced <ragzip:context> tag: close every "
                    "<ragzip:context> with </ragzip:context> and do not nest them",
                    f"messages.{m}.content",
                )
            for section in found:
                ids = []
                for d, (text_id, doc_text) in enumerate(_split_section(section)):
                    doc_id = f"s{len(sections)}.{d}"
                    meta = {"id": text_id} if text_id else {}
                    documents.append(Document(doc_text, id=doc_id, metadata=meta))
                    ids.append(doc_id)
                sections.append(ids)
    query = options.query if options is not None and options.query is not None else None
    if query is None:
        query = _last_user_text(messages)
    return _Plan(body, options, query, budget, documents, sections)


def _split_section(section: str) -> list[tuple[str, str]]:
    """(id, text) of each document of a marked section."""
    if "<doc" in section:
        pieces = [(m.group(1) or "", m.group(2)) for m in _DOC.finditer(section)]
    else:
        pieces = [("", piece) for piece in _RULE.split(section)]
    return [(i, t.strip()) for i, t in pieces if t.strip()]


def _texts(message: Mapping[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            p["text"] for p in content
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        ]  # fmt: skip
    return []


def _map_text(message: dict[str, Any], fn: Any) -> None:
    """Rewrites the text of a message (string content or text parts), in order."""
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = fn(content)
    elif isinstance(content, list):
        parts = []
        for p in content:
            if (
                isinstance(p, Mapping)
                and p.get("type") == "text"
                and isinstance(p.get("text"), str)
            ):
                p = {**p, "text": fn(p["text"])}
            parts.append(p)
        message["content"] = parts


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _SECTION.sub(" ", "\n".join(_texts(message))).strip()
    return ""


def _inject(messages: list[Any], context: str, where: str) -> None:
    if where == "user":
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    message["content"] = [
                        {"type": "text", "text": f"Context:\n{context}"},
                        *content,
                    ]
                else:
                    message["content"] = USER_CONTEXT.format(context=context, content=content or "")
                return
        raise _Invalid("ragzip.inject is 'user' but there is no user message", "ragzip.inject")
    first = messages[0] if messages else None
    if (
        isinstance(first, dict)
        and first.get("role") in ("system", "developer")
        and isinstance(first.get("content"), str)
    ):
        first["content"] += APPENDED_CONTEXT.format(context=context)
    else:
        messages.insert(0, {"role": "system", "content": SYSTEM_CONTEXT.format(context=context)})


# -- the proxy ----------------------------------------------------------------------------------
class ChatProxy:
    """Compresses the context of chat completion requests and forwards them upstream.

    Args:
        settings: Any object with ``upstream_url`` (base URL ending in ``/v1``) and optionally
            ``upstream_api_key``, ``request_timeout_s`` (default 60), ``compressor`` (spec,
            default ``"extractive"``), ``budget`` or ``default_budget`` (default ratio 4) and
            ``allow_request_compressor`` (default true).
        compressor: A ready compressor, used instead of the settings' spec.
        budget: Default budget, instead of the settings' one.

    Raises:
        ConfigError: the upstream URL is missing or not http(s), or the compressor spec or
            budget is invalid.

    Example:
        >>> proxy = ChatProxy(settings)
        >>> app.include_router(proxy.router)  # the router's lifespan closes the client
    """

    def __init__(
        self,
        settings: Any,
        *,
        compressor: Compressor | None = None,
        budget: BudgetLike | None = None,
    ) -> None:
        url = getattr(settings, "upstream_url", None)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"the proxy needs upstream_url, an http(s) URL like http://host:8000/v1; "
                f"got {url!r}"
            )
        self.url = url.rstrip("/") + "/chat/completions"
        self.api_key: str | None = getattr(settings, "upstream_api_key", None) or None
        self.timeout = float(getattr(settings, "request_timeout_s", 60.0) or 60.0)
        spec = getattr(settings, "compressor", None) or "extractive"
        self.compressor_spec: str | dict[str, Any] = _plain_spec(spec)
        if budget is None:
            budget = getattr(settings, "budget", None) or getattr(settings, "default_budget", None)
        self.budget: BudgetLike = _plain_spec(budget) if budget is not None else DEFAULT_BUDGET
        try:
            Budget.of(self.budget)  # fail at startup, not on the first request
        except (InvalidInputError, TypeError) as exc:
            raise ConfigError(f"invalid proxy budget {self.budget!r}: {exc}") from exc
        self.allow_request_compressor = bool(getattr(settings, "allow_request_compressor", True))
        # Constructors are cheap (models load on first use): build now so a bad spec fails here.
        self._default: Compressor = compressor or compressors.build(self.compressor_spec)
        self._built: dict[str, Compressor] = {}
        self._lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.router = self._make_router()

    # -- lifecycle -----------------------------------------------------------------------------
    def client(self) -> httpx.AsyncClient:
        """The shared upstream client, created on first use (per event loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Closes the upstream client; the next request opens a new one."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()

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
        )
        return router

    # -- compression ---------------------------------------------------------------------------
    def compressor_for(self, spec: str | Mapping[str, Any] | None) -> Compressor:
        """The default compressor, or one built (and cached) from a request's spec."""
        if spec is None:
            return self._default
        key = json.dumps(spec, sort_keys=True, default=str)
        with self._lock:
            built = self._built.get(key)
            if built is None:
                built = compressors.build(spec)
                if len(self._built) >= _CACHED_COMPRESSORS:
                    self._built.pop(next(iter(self._built)))
                self._built[key] = built
            return built

    def _compress(self, plan: _Plan) -> CompressionResult:
        spec = plan.options.compressor if plan.options is not None else None
        compressor = self.compressor_for(spec)
        return compressor.compress(plan.query, plan.documents, plan.budget)

    # -- the route -----------------------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        """Compresses, forwards, relays; see the module docstring."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):  # not ours to judge: the upstream answers it
            return await self._forward(raw, request, None)
        try:
            plan = _plan(body, self.budget)
            asked = plan.options is not None and plan.options.compressor is not None
            if asked and not self.allow_request_compressor:
                raise _Invalid(
                    "this server does not accept per-request compressors; drop ragzip.compressor",
                    "ragzip.compressor",
                )
            if plan.options is None and not plan.has_context:
                return await self._forward(raw, request, None)
            result = await asyncio.to_thread(self._compress, plan) if plan.has_context else None
            forwarded = plan.apply(result) if result is not None else plan.apply(_EMPTY)
        except _Invalid as exc:
            return _error(422, str(exc), "invalid_request_error", exc.param)
        except (InvalidInputError, ConfigError) as exc:
            return _error(422, f"cannot compress this request: {exc}", "invalid_request_error")
        except RagzipError as exc:
            logger.warning("compression failed: %s", exc)
            return _error(500, f"compression failed: {exc}", "server_error")
        content = json.dumps(forwarded, ensure_ascii=False).encode()
        return await self._forward(content, request, result)

    async def _forward(
        self, content: bytes, request: Request, result: CompressionResult | None
    ) -> Response:
        headers = {
            "content-type": request.headers.get("content-type", "application/json"),
            "accept": request.headers.get("accept", "application/json"),
            "accept-encoding": "identity",  # relay bytes as they arrive, undecoded
        }
        auth = f"Bearer {self.api_key}" if self.api_key else request.headers.get("authorization")
        if auth:
            headers["authorization"] = auth
        for name in _FORWARDED:
            if name in request.headers:
                headers[name] = request.headers[name]
        savings = _savings_headers(result)
        client = self.client()
        upstream: httpx.Response | None = None
        try:
            req = client.build_request("POST", self.url, content=content, headers=headers)
            upstream = await client.send(req, stream=True)
            if upstream.status_code >= 500:
                await upstream.aread()
                return _error(
                    502,
                    f"upstream answered HTTP {upstream.status_code}: {_message_of(upstream)}",
                    "upstream_error",
                    headers=savings,
                )
            relayed = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            relayed.update(savings)
            content_type = upstream.headers.get("content-type", "")
            if content_type.startswith("text/event-stream"):
                status, stream = upstream.status_code, self._relay(upstream)
                upstream = None  # the relay closes it when the stream ends
                return StreamingResponse(stream, status_code=status, headers=relayed)
            data = await upstream.aread()
            return Response(data, status_code=upstream.status_code, headers=relayed)
        except httpx.TimeoutException as exc:
            return _error(
                504,
                f"upstream {self.url} did not answer within {self.timeout:g} s "
                f"({type(exc).__name__})",
                "upstream_timeout",
                headers=savings,
            )
        except httpx.HTTPError as exc:
            return _error(
                502,
                f"cannot reach upstream {self.url}: {type(exc).__name__}: {exc}",
                "upstream_error",
                headers=savings,
            )
        finally:
            if upstream is not None:
                await upstream.aclose()

    async def _relay(self, upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:  # headers are gone: report in-band, as OpenAI does
            logger.warning("upstream stream broke off: %s", exc)
            message = f"upstream stream broke off: {type(exc).__name__}: {exc}"
            error = {"error": {"message": message, "type": "upstream_error"}}
            yield f"\n\ndata: {json.dumps(error)}\n\n".encode()
        finally:
            await upstream.aclose()


_EMPTY = CompressionResult((), 0, 0, "", "none")


def create_proxy_router(
    settings: Any,
    *,
    compressor: Compressor | None = None,
    budget: BudgetLike | None = None,
) -> APIRouter:
    """The proxy's router (``POST /v1/chat/completions``); see :class:`ChatProxy`.

    Including it with ``app.include_router`` also installs its lifespan, which closes the
    shared upstream client on shutdown.

    Raises:
        ConfigError: ``settings.upstream_url`` is missing or not http(s), or the compressor
            spec or budget in ``settings`` is invalid.
    """
    return ChatProxy(settings, compressor=compressor, budget=budget).router


def _plain_spec(value: Any) -> Any:
    """A spec or budget from settings: pydantic models and mappings become plain dicts."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return dict(value)
    return value


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


def _message_of(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return json.dumps(error)[:500]


def _error(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": kind, "code": status}
    if param is not None:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status, headers=dict(headers or {}))
