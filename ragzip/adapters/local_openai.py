"""A ragzip generator served as an OpenAI-compatible upstream.

Used by ``ragzip serve --serve-local-generator``.

:func:`create_local_openai_router` answers ``POST /v1/chat/completions`` (JSON, or
``chat.completion.chunk`` server-sent events ending in ``data: [DONE]``, with a usage chunk
when ``stream_options.include_usage`` is set) and ``GET /v1/models``, so the compressing proxy
of :mod:`ragzip.adapters.proxy`, the OpenAI SDKs and ragzip's own ``openai`` generator can use
the local model (the demo and the tests do). The wire format is :mod:`ragzip.wire.openai`.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from ragzip.errors import GenerationError, InvalidInputError, MissingDependencyError, RagzipError
from ragzip.generators.base import Generator, count_usage
from ragzip.wire import openai as wire

try:
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse

    from ragzip.adapters.rest.errors import openai_error
    from ragzip.adapters.rest.hardening import Limiter
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        f"serving a generator over HTTP needs FastAPI ({exc}). Install it: pip install "
        "'ragzip[server]'"
    ) from exc

__all__ = ["create_local_openai_router"]

logger = logging.getLogger(__name__)


def create_local_openai_router(
    generator: Generator, *, model_name: str | None = None, limiter: Limiter | None = None
) -> APIRouter:
    """Serves ``generator`` as an OpenAI-compatible chat completions API.

    Routes: ``POST /v1/chat/completions`` (JSON, or with ``"stream": true`` server-sent
    ``chat.completion.chunk`` events ending in ``data: [DONE]``) and ``GET /v1/models``.
    Errors are OpenAI-style: 400 for invalid requests, 502 when the generator fails, and the
    limiter's 429/503/504.

    Args:
        generator: Any ragzip generator (local transformers, or a remote one).
        model_name: The model id reported; defaults to the generator's ``model``.
        limiter: The sidecar's concurrency and time limits: each request holds one slot for
            its whole answer, stream included. ``None``: unlimited.

    Example:
        >>> app.include_router(create_local_openai_router(TransformersGenerator("smollm2-135m")))
    """
    name = model_name or str(getattr(generator, "model", None) or type(generator).__name__)
    router = APIRouter(tags=["openai"])

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        return wire.models_list([name])

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        stack = AsyncExitStack()
        try:
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                raise InvalidInputError("the request body is not valid JSON") from None
            chat = wire.ChatOptions.of(body)
            kwargs = chat.generation_kwargs()
            messages = chat.messages
            held = await stack.enter_async_context(limiter.slot()) if limiter else None
            if chat.stream:
                deltas = generator.astream(messages, **kwargs)  # validates before any byte
                return StreamingResponse(
                    _chunks(generator, deltas, name, chat, stack),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            async with stack:
                if limiter is not None and held is not None:
                    result = await limiter.in_thread(
                        held, functools.partial(generator.generate, messages, **kwargs)
                    )
                else:
                    result = await generator.agenerate(messages, **kwargs)
        except Exception as exc:
            await stack.aclose()
            return _error_of(exc)
        return JSONResponse(
            wire.completion(
                name,
                result.text,
                finish_reason=result.finish_reason,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            )
        )

    return router


def _error_of(exc: Exception) -> JSONResponse:
    """OpenAI-style errors: 400 for invalid requests, 502 for generator failures, limits."""
    if isinstance(exc, GenerationError):
        logger.warning("generation failed: %s", exc)
        return JSONResponse(wire.error(f"generation failed: {exc}", "server_error"), 502)
    return openai_error(exc, "/v1/chat/completions")


async def _chunks(
    generator: Generator,
    deltas: AsyncIterator[str],
    model: str,
    chat: wire.ChatOptions,
    stack: AsyncExitStack,
) -> AsyncIterator[bytes]:
    writer = wire.ChunkWriter(model)
    yield writer.start()
    pieces: list[str] = []
    try:
        async for text in deltas:
            pieces.append(text)
            yield writer.delta(text)
    except RagzipError as exc:  # headers are gone: report in-band, as OpenAI does
        logger.warning("generation failed mid-stream: %s", exc)
        yield wire.sse(wire.error(f"generation failed: {exc}", "server_error"))
    else:
        answer = "".join(pieces)
        prompt, completion = count_usage(generator, chat.messages, answer)
        limit = chat.max_tokens or _default_max_tokens(generator)
        yield writer.finish(wire.finish_of(completion, limit))
        if chat.include_usage:
            yield writer.usage(prompt, completion)
    finally:
        close = getattr(deltas, "aclose", None)
        if close is not None:
            await close()
        await stack.aclose()  # the slot is free once the answer is done
    yield wire.SSE_DONE


def _default_max_tokens(generator: Generator) -> int | None:
    """The ``max_tokens`` a generator uses when a request gives none."""
    default = inspect.signature(generator.stream).parameters.get("max_tokens")
    value = getattr(default, "default", None)
    return value if isinstance(value, int) else None
