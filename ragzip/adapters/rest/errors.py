"""The one place where errors become HTTP answers.

Every error body is ``{"error": {"type": ..., "message": ...}}``.

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
:class:`NotConfigured` (no index / generator)           501     says which setting enables it
:class:`MissingDependencyError`, ModelNotFoundError     503
:class:`GenerationError`                                502
:class:`RequestTimeout`                                 504
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

__all__ = [
    "CatchAllMiddleware",
    "NotConfigured",
    "Overloaded",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServerError",
    "Unauthorized",
    "error_response",
    "install_error_handlers",
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
    status, kind = 501, "not_configured"


class RequestTimeout(ServerError):
    status, kind = 504, "timeout"


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


def error_response(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


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
        return error_response(status, kind, message, headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message = _validation_message(exc)
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type.lower():
            got = content_type or "none"
            message += f"; send JSON with 'Content-Type: application/json' (got {got!r})"
        return error_response(422, "invalid_request", message)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kinds = {404: "not_found", 405: "method_not_allowed"}
        return error_response(
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
            response = error_response(status, kind, message, headers)
            await response(scope, receive, send)
