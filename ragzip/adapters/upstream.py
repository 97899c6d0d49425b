"""The OpenAI-compatible server the proxy forwards to (:mod:`ragzip.adapters.proxy`).

:class:`Upstream` owns one lazily created ``httpx.AsyncClient``, sends the client's request
with only the upstream's own credentials, and relays the answer: server-sent events as they
arrive, anything else whole, hop-by-hop headers dropped. Failures become
:class:`~ragzip.adapters.rest.errors.UpstreamError` (502, or 504 on a timeout), naming the
upstream without its credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack

import httpx

from ragzip.errors import MissingDependencyError
from ragzip.wire import openai as wire

try:
    from fastapi import Request
    from fastapi.responses import Response, StreamingResponse

    from ragzip.adapters.rest.errors import UpstreamError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        f"the OpenAI-compatible proxy needs FastAPI ({exc}). Install it: pip install "
        "'ragzip[server]'"
    ) from exc

__all__ = ["Upstream", "message_of", "upstream_error"]

logger = logging.getLogger("ragzip.adapters.proxy")

# Not relayed either way: hop-by-hop headers, and ones the relaying side sets itself.
_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
     "te", "trailer", "upgrade", "proxy-authenticate", "proxy-authorization", "date", "server"}
)  # fmt: skip
_FORWARDED = ("openai-organization", "openai-project", "x-request-id")


class Upstream:
    """Sends to and relays from one OpenAI-compatible base URL.

    Args:
        base_url: The API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: Sent as the bearer token; the client's own ``Authorization`` never is.
        timeout: Seconds allowed for an answer (each call may pass a shorter deadline).
    """

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        self.base = base_url.rstrip("/")
        self.url = self.base + "/chat/completions"
        self.shown_url = wire.redact_url(self.url)
        self.api_key = api_key
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        """The shared client, created on first use (per event loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Closes the client; the next request opens a new one."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()

    def headers(self, request: Request) -> dict[str, str]:
        """Headers sent upstream: never the client's credentials, only the upstream key."""
        headers = {
            "content-type": request.headers.get("content-type", "application/json"),
            "accept": request.headers.get("accept", "application/json"),
            "accept-encoding": "identity",  # relay bytes as they arrive, undecoded
        }
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        for name in _FORWARDED:
            if name in request.headers:
                headers[name] = request.headers[name]
        return headers

    async def forward(
        self,
        content: bytes,
        request: Request,
        timeout: float,
        stack: AsyncExitStack,
        extra_headers: Mapping[str, str],
    ) -> Response:
        """Posts ``content`` to the chat completions endpoint and relays the answer.

        ``stack`` holds what the request holds (its compute slot): it is closed once the
        answer is relayed, at the end of a stream for a streamed one. ``extra_headers`` are
        added to the answer.

        Raises:
            UpstreamError: the upstream answered 5xx, failed or timed out (``stack`` is then
                left to the caller).
        """
        client = self.client()
        upstream: httpx.Response | None = None
        try:
            req = client.build_request(
                "POST", self.url, content=content, headers=self.headers(request), timeout=timeout
            )
            upstream = await client.send(req, stream=True)
            if upstream.status_code >= 500:
                await upstream.aread()
                raise UpstreamError(
                    f"upstream answered HTTP {upstream.status_code}: {message_of(upstream)}"
                )
            relayed = _relayed(upstream.headers)
            relayed.update(extra_headers)
            if upstream.headers.get("content-type", "").startswith("text/event-stream"):
                status, stream = upstream.status_code, self._relay(upstream, stack)
                upstream = None  # the relay closes it, and frees the slot, when it ends
                return StreamingResponse(stream, status_code=status, headers=relayed)
            data = await upstream.aread()
            await stack.aclose()
            return Response(data, status_code=upstream.status_code, headers=relayed)
        except Exception as exc:
            mapped = upstream_error(exc, self.url, self.timeout)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            if upstream is not None:
                await upstream.aclose()

    async def models(self, request: Request, timeout: float) -> Response:
        """Relays the upstream's ``GET /models``.

        Raises:
            UpstreamError: the upstream answered 5xx, failed or timed out.
        """
        url = self.base + "/models"
        try:
            response = await self.client().get(url, headers=self.headers(request), timeout=timeout)
            if response.status_code >= 500:
                raise UpstreamError(
                    f"upstream answered HTTP {response.status_code}: {message_of(response)}"
                )
            return Response(
                response.content, response.status_code, headers=_relayed(response.headers)
            )
        except Exception as exc:
            mapped = upstream_error(exc, url, self.timeout)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _relay(self, upstream: httpx.Response, stack: AsyncExitStack) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:  # headers are gone: report in-band, as OpenAI does
            logger.warning("upstream stream broke off: %s", type(exc).__name__)
            message = f"upstream stream broke off: {type(exc).__name__}"
            yield b"\n\n" + wire.sse(wire.error(message, "server_error", code="upstream_error"))
        finally:
            await upstream.aclose()
            await stack.aclose()


def _relayed(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP}


def upstream_error(exc: BaseException, url: str, timeout: float) -> BaseException:
    """Transport failures as :class:`UpstreamError`, naming the URL without credentials;
    anything else unchanged."""
    shown = wire.redact_url(url)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(
            f"upstream {shown} did not answer within {timeout:g} s ({type(exc).__name__}; "
            "request_timeout_s)",
            status=504,
        )
    if isinstance(exc, httpx.HTTPError):
        return UpstreamError(f"cannot reach upstream {shown}: {type(exc).__name__}")
    return exc


def message_of(response: httpx.Response) -> str:
    """The message of an upstream error answer (OpenAI's ``error.message``, else the body)."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:500]
    return json.dumps(error)[:500]
