"""A generator for any OpenAI-compatible chat completions server (vLLM, llama.cpp, TGI, OpenAI).

Requests go to ``POST {base_url}/chat/completions`` with httpx. Connection errors, timeouts,
HTTP 408/409/429 and 5xx are retried with exponential backoff (``Retry-After`` is honoured);
other 4xx answers raise :class:`~ragzip.errors.GenerationError` carrying the server's message.
The sync and async clients share one retry plan (:mod:`ragzip.generators.retry`) and one
reading of answers (:mod:`ragzip.generators.openai_answers`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ragzip._optional import require
from ragzip.errors import ConfigError, GenerationError
from ragzip.generators.base import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    MessagesLike,
    StopFilter,
)
from ragzip.generators.openai_answers import Failures, parse_completion, parse_delta
from ragzip.generators.registry import generators
from ragzip.generators.retry import MAX_RETRY_AFTER, Plan, RetryPolicy, adrive, drive
from ragzip.wire.openai import SSEDecoder, iter_sse_data, redact_url

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_RETRY_AFTER", "OpenAICompatibleGenerator", "SSEDecoder", "iter_sse_data"]

BATCH_CONCURRENCY = 8  # requests generate_batch keeps in flight at once


@generators.register("openai")
class OpenAICompatibleGenerator(BaseGenerator):
    """Chat completions from an OpenAI-compatible HTTP server.

    The HTTP clients are created on first use; :meth:`close` (or ``with``) releases them.

    Args:
        base_url: The API root, e.g. ``http://localhost:8000/v1``.
        model: Model name the server expects.
        api_key: Bearer token; defaults to ``$OPENAI_API_KEY`` (none is sent if unset).
        timeout: Seconds allowed for connecting and between bytes of the answer.
        max_retries: Retries after the first attempt on transient failures.
        backoff: First retry delay in seconds; doubles on every retry.
        extra_body: Extra JSON fields merged into every request (``top_p``, ``seed``...).

    Example:
        >>> gen = OpenAICompatibleGenerator("http://localhost:8000/v1", "smollm2-135m")
        >>> gen.generate("What is the capital of France?", max_tokens=16).text
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must be an http(s) URL like http://host:8000/v1, got {base_url!r}"
            )
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        if not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not backoff >= 0:
            raise ConfigError(f"backoff must be >= 0 seconds, got {backoff}")
        if extra_body is not None and not isinstance(extra_body, Mapping):
            raise ConfigError(f"extra_body must be a dict, got {type(extra_body).__name__}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.extra_body = dict(extra_body or {})
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def shown_url(self) -> str:
        """The endpoint as error messages name it: without credentials or query."""
        return redact_url(self.url)

    def params(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "extra_body": dict(self.extra_body) or None,
        }

    # -- clients -------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                hx = require("httpx", "the OpenAI-compatible generator")
                self._client = hx.Client(timeout=self.timeout, headers=self._headers())
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        # An AsyncClient's connections belong to the loop that opened them.
        if self._aclient is None or self._aclient_loop is not loop:
            hx = require("httpx", "the OpenAI-compatible generator")
            self._aclient = hx.AsyncClient(timeout=self.timeout, headers=self._headers())
            self._aclient_loop = loop
        return self._aclient

    def close(self) -> None:
        """Closes the sync client (the async one is closed by :meth:`aclose`)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Closes both clients."""
        self.close()
        client, self._aclient, self._aclient_loop = self._aclient, None, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> OpenAICompatibleGenerator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- request building and answer parsing ---------------------------------------------------
    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        body.update(self.extra_body)
        return body

    def _retry_plan(self, stream: bool) -> Plan:
        """The retry loop of one request (from the current settings), for either client."""
        policy = RetryPolicy(max_retries=self.max_retries, backoff=self.backoff)
        return policy.plan(Failures(self.shown_url, self.timeout), stream=stream)

    def _parse(self, response: httpx.Response, chat: bool = True) -> Generation:
        return parse_completion(response, self.model, self.shown_url, chat)

    def _delta(self, payload: str) -> str:
        return parse_delta(payload, self.shown_url)

    # -- sync ----------------------------------------------------------------------------------
    def _send(self, body: dict[str, Any], stream: bool, url: str | None = None) -> httpx.Response:
        """Sends with retries; returns a 2xx response (streamed responses are left open)."""
        client = self._sync_client()

        def send() -> httpx.Response:
            return client.send(
                client.build_request("POST", url or self.url, json=body), stream=stream
            )

        def drain(response: httpx.Response) -> None:
            response.read()
            response.close()

        plan = self._retry_plan(stream)
        response: httpx.Response = drive(plan, send=send, drain=drain, sleep=time.sleep)
        return response

    def _generate(self, request: GenerationRequest) -> Generation:
        response = self._send(self._body(request, stream=False), stream=False)
        return self._parse(response)

    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Sends every request at once from a small thread pool (at most
        ``BATCH_CONCURRENCY`` in flight): the server batches them. Results come back in
        order; a request that fails after retries raises (the first failure, in order)."""
        if len(requests) <= 1:
            return [self._timed(r) for r in requests]
        workers = min(BATCH_CONCURRENCY, len(requests))
        with ThreadPoolExecutor(workers, thread_name_prefix="ragzip-openai") as pool:
            return list(pool.map(self._timed, requests))

    def complete_embeds(
        self, embeds: Any, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Generation:
        """Generates from prompt embeddings on a vLLM server (``--enable-prompt-embeds``).

        ``embeds`` is the whole prompt as a ``(positions, hidden)`` array for the server's
        model, e.g. from :meth:`ragzip.generators.soft.SoftGenerator.prompt_embeds`. It goes to
        ``POST {base_url}/completions`` as ``prompt_embeds`` (base64 of a saved tensor).
        """
        from ragzip.generators.embeds import encode_prompt_embeds

        request = GenerationRequest.of("embeddings", max_tokens, temperature, None)
        body = {
            "model": self.model,
            "prompt_embeds": encode_prompt_embeds(embeds),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        start = time.perf_counter()
        response = self._send(body, stream=False, url=f"{self.base_url}/completions")
        return replace(self._parse(response, chat=False), seconds=time.perf_counter() - start)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        hx = require("httpx", "the OpenAI-compatible generator")
        response = self._send(self._body(request, stream=True), stream=True)
        try:
            for payload in iter_sse_data(response.iter_lines()):
                if payload.strip() == "[DONE]":
                    return
                delta = self._delta(payload)
                if delta:
                    yield delta
        except hx.HTTPError as exc:
            raise GenerationError(
                f"{self.shown_url} stream broke off: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            response.close()

    # -- async ---------------------------------------------------------------------------------
    async def _asend(self, body: dict[str, Any], stream: bool) -> httpx.Response:
        """:meth:`_send` on the async client: the same retry plan, its steps awaited."""
        client = self._async_client()

        async def send() -> httpx.Response:
            return await client.send(
                client.build_request("POST", self.url, json=body), stream=stream
            )

        async def drain(response: httpx.Response) -> None:
            await response.aread()
            await response.aclose()

        plan = self._retry_plan(stream)
        response: httpx.Response = await adrive(plan, send=send, drain=drain, sleep=asyncio.sleep)
        return response

    async def agenerate(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Generation:
        """Async twin of :meth:`generate`, on httpx's AsyncClient."""
        request = GenerationRequest.of(messages, max_tokens, temperature, stop)
        start = time.perf_counter()
        response = await self._asend(self._body(request, stream=False), stream=False)
        return self._finish(self._parse(response), request, time.perf_counter() - start)

    def astream(
        self,
        messages: MessagesLike,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]:
        """Async twin of :meth:`stream`, on httpx's AsyncClient; arguments are checked at once."""
        request = GenerationRequest.of(messages, max_tokens, temperature, stop)
        return self._astream(request)

    async def _astream(self, request: GenerationRequest) -> AsyncIterator[str]:
        hx = require("httpx", "the OpenAI-compatible generator")
        stops = StopFilter(request.stop)
        decoder = SSEDecoder()
        response = await self._asend(self._body(request, stream=True), stream=True)
        try:
            async for line in response.aiter_lines():
                payload = decoder.feed(line)
                if payload is None:
                    continue
                if payload.strip() == "[DONE]":
                    break
                text = stops.feed(self._delta(payload))
                if text:
                    yield text
                if stops.stopped:
                    return
            else:
                payload = decoder.flush()
                if payload is not None and payload.strip() != "[DONE]":
                    text = stops.feed(self._delta(payload))
                    if text:
                        yield text
        except hx.HTTPError as exc:
            raise GenerationError(
                f"{self.shown_url} stream broke off: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            await response.aclose()
        rest = stops.flush()
        if rest:
            yield rest
