"""The one place where errors become HTTP answers.

Every error body is ``{"error": {"type": ..., "message": ...}}``; on the OpenAI-compatible
routes it is OpenAI's ``{"error": {"message", "type", "param", "code"}}`` and invalid requests
are 400 there (see :func:`error_response`).

=====================================================  ======  ==============================
Error                                                   Status  Notes
=====================================================  ======  ==============================
malformed JSON, schema violations                       422     ``invalid_request``
:class:`InvalidInputError`, :class:`ConfigError`        422     bad values in the request
:class:`UnknownComponentError`                          422     an unknown compressor name is
                                                                a bad field value, not a
                                                                missing URL resource
:class:`PayloadTooLarge` (body, documents, tokens)      413     the message names the limit
:class:`Unauthorized`                                   401     ``WWW-Authenticate: Bearer``
:class:`NotConfigured` (no index / generator)           422     says which setting enables it
:class:`MissingDependencyError`, ModelNotFoundError     503
:class:`GenerationError`                                502
:class:`RequestTimeout`                                 504
:class:`BodyTimeout` (body not sent in time)            408
:class:`UpstreamError` (proxy upstream failed)          502     504 when it timed out
:class:`Overloaded` (queue full / no slot in time)      429/503 with ``Retry-After``
anything else                                           500     generic message; the server
                                                                logs the type and traceback,
                                                                never the message (it may
                                                                quote documents) unless
                                                                ``log_documents`` is on
=====================================================  ======  ==============================
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragzip.errors import (
    ConfigError,
    GenerationError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    RagzipError,
    UnknownComponentError,
)
from ragzip.wire import openai as wire

__all__ = [
    "BodyTimeout",
    "CatchAllMiddleware",
    "NotConfigured",
    "Overloaded",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServerError",
    "Unauthorized",
    "UpstreamError",
    "error_response",
    "install_error_handlers",
    "invalid_response",
]

logger = logging.getLogger("ragzip.server")


class ServerError(RagzipError):
    """Errors of the server itself, each with its status, type and headers."""

    status = 500
    kind = "server_error"

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class PayloadTooLarge(ServerError):
    status, kind = 413, "payload_too_large"


class Unauthorized(ServerError):
    status, kind = 401, "unauthorized"


class NotConfigured(ServerError):
    """The request needs something this server was not configured with (an index...).

    422: the request is well formed, and this server cannot carry it out as asked.
    """

    status, kind = 422, "not_configured"


class RequestTimeout(ServerError):
    status, kind = 504, "timeout"


class BodyTimeout(ServerError):
    status, kind = 408, "body_timeout"


class UpstreamError(ServerError):
    """The proxy's upstream failed (502) or did not answer in time (504)."""

    kind = "upstream_error"

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class Overloaded(ServerError):
    """Too many requests: 429 when the queue is full, 503 when no slot freed up in time."""

    kind = "overloaded"

    def __init__(self, message: str, retry_after_s: int, status: int = 429) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})
        self.status = status


# Most specific first: UnknownComponentError is a ConfigError.
_MAP: tuple[tuple[type[BaseException], int, str], ...] = (
    (UnknownComponentError, 422, "unknown_component"),
    (InvalidInputError, 422, "invalid_input"),
    (ConfigError, 422, "invalid_config"),
    (MissingDependencyError, 503, "missing_dependency"),
    (ModelNotFoundError, 503, "model_not_found"),
    (GenerationError, 502, "generation_error"),
)


# Routes that speak the OpenAI wire format, errors included (400 for invalid requests).
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


def error_response(
    status: int,
    kind: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    openai: bool = False,
    param: str | None = None,
) -> JSONResponse:
    """The error answer: ``{"error": {"type", "message"}}``, or OpenAI's shape on its routes.

    On OpenAI routes an invalid request is 400 (the SDKs raise ``BadRequestError``) and the
    body is ``{"error": {"message", "type", "param", "code"}}`` with ragzip's type as ``code``
    and ``param`` naming the offending field when known.
    """
    if openai:
        status = 400 if status == 422 else status
        family = "invalid_request_error" if status < 500 else "server_error"
        family = {401: "authentication_error", 429: "rate_limit_error"}.get(status, family)
        body: dict[str, Any] = wire.error(message, family, param=param, code=kind)
    else:
        body = {"error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def openai_error(
    exc: BaseException, path: str, *, log_documents: bool = False, param: str | None = None
) -> JSONResponse:
    """An OpenAI-style answer for any exception of an OpenAI route (a 500 is logged, never
    leaked)."""
    status, kind, message, headers = describe(exc)
    if status == 500:
        log_unexpected(exc, path, log_documents)
    return error_response(status, kind, message, headers, openai=True, param=param)


def is_openai_path(path: str) -> bool:
    return path.rstrip("/") in OPENAI_PATHS


def invalid_response(
    scope: Scope, status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """:func:`error_response` in the dialect of the route ``scope`` addresses."""
    openai = is_openai_path(str(scope.get("path", "")))
    return error_response(status, kind, message, headers, openai=openai)


def describe(exc: BaseException) -> tuple[int, str, str, dict[str, str]]:
    """Status, error type, client message and headers for an exception."""
    if isinstance(exc, ServerError):
        return exc.status, exc.kind, str(exc), exc.headers
    for cls, status, kind in _MAP:
        if isinstance(exc, cls):
            return status, kind, str(exc), {}
    if isinstance(exc, TimeoutError):
        return 504, "timeout", "the request timed out", {}
    return 500, "internal_error", "internal server error", {}


def log_unexpected(exc: BaseException, path: str, log_documents: bool) -> None:
    """Logs an unexpected error: type and traceback, the message only if allowed."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    message = str(exc) if log_documents else "<message hidden: log_documents is off>"
    logger.error("unhandled %s on %s: %s\n%s", type(exc).__name__, path, message, frames.rstrip())


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        if err.get("type") == "json_invalid":
            return f"request body is not valid JSON ({err.get('ctx', {}).get('error', 'invalid')})"
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")  # never echo the input value
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, *, log_documents: bool = False) -> None:
    """Maps ragzip and framework errors to JSON error answers (see the module table)."""

    async def on_ragzip(request: Request, exc: Exception) -> JSONResponse:
        status, kind, message, headers = describe(exc)
        if status >= 500 and not isinstance(exc, ServerError):
            logger.warning("%s on %s: %s", type(exc).__name__, request.url.path, status)
        return invalid_response(request.scope, status, kind, message, headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message = _validation_message(exc)
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type.lower():
            got = content_type or "none"
            message += f"; send JSON with 'Content-Type: application/json' (got {got!r})"
        return invalid_response(request.scope, 422, "invalid_request", message)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kinds = {404: "not_found", 405: "method_not_allowed"}
        return invalid_response(
            request.scope,
            exc.status_code,
            kinds.get(exc.status_code, "http_error"),
            str(exc.detail),
            exc.headers,
        )

    app.add_exception_handler(RagzipError, on_ragzip)
    app.add_exception_handler(TimeoutError, on_ragzip)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class CatchAllMiddleware:
    """Turns any exception that escaped the handlers into a generic 500 (logged without text).

    Starlette's own last-resort handler re-raises, so the server would log the exception's
    message, which may quote documents; this middleware answers and logs it here instead.
    """

    def __init__(self, app: ASGIApp, log_documents: bool = False) -> None:
        self.app = app
        self.log_documents = log_documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log_unexpected(exc, scope.get("path", "?"), self.log_documents)
            if started:  # too late for an error answer: end the body so the client sees a cut
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            status, kind, message, headers = describe(exc)
            await invalid_response(scope, status, kind, message, headers)(scope, receive, send)
