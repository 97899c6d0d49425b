"""A ragzip generator served as an OpenAI-compatible upstream.

Used by ``ragzip serve --serve-local-generator``.

:func:`create_local_openai_router` answers ``POST /v1/chat/completions`` (JSON, or
``chat.completion.chunk`` server-sent events ending in ``data: [DONE]``) and ``GET /v1/models``,
so the compressing proxy of :mod:`ragzip.adapters.proxy`, the OpenAI SDKs and ragzip's own
``openai`` generator can use the local model (the demo and the tests do).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ragzip.errors import GenerationError, InvalidInputError, MissingDependencyError, RagzipError
from ragzip.generators.base import Generator

try:
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from pydantic import BaseModel, ConfigDict, ValidationError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError(
        f"serving a generator over HTTP needs FastAPI ({exc}). Install it: pip install "
        "'ragzip[server]'"
    ) from exc

from ragzip.adapters.proxy import _error, _texts

__all__ = ["create_local_openai_router"]

logger = logging.getLogger(__name__)


class _ChatRequest(BaseModel):
    """The part of an OpenAI chat completions request a local generator honours."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = 1


def create_local_openai_router(generator: Generator, *, model_name: str | None = None) -> APIRouter:
    """Serves ``generator`` as an OpenAI-compatible chat completions API.

    Routes: ``POST /v1/chat/completions`` (JSON, or with ``"stream": true`` server-sent
    ``chat.completion.chunk`` events ending in ``data: [DONE]``) and ``GET /v1/models``.
    Errors are OpenAI-style: 400 for invalid requests, 502 when the generator fails.

    Args:
        generator: Any ragzip generator (local transformers, or a remote one).
        model_name: The model id reported; defaults to the generator's ``model``.

    Example:
        >>> app.include_router(create_local_openai_router(TransformersGenerator("smollm2-135m")))
    """
    name = model_name or str(getattr(generator, "model", None) or type(generator).__name__)
    router = APIRouter(tags=["openai"])

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "ragzip"}],
        }

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            chat = _ChatRequest.model_validate_json(await request.body())
            if chat.n != 1:
                raise InvalidInputError("only n=1 is supported")
            messages = [_plain_message(m) for m in chat.messages]
            options: dict[str, Any] = {}
            max_tokens = chat.max_completion_tokens or chat.max_tokens
            if max_tokens is not None:
                options["max_tokens"] = max_tokens
            if chat.temperature is not None:
                options["temperature"] = chat.temperature
            if chat.stop is not None:
                options["stop"] = [chat.stop] if isinstance(chat.stop, str) else chat.stop
            if chat.stream:
                deltas = generator.astream(messages, **options)  # validates before any byte
                return StreamingResponse(
                    _chunks(deltas, name),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"},
                )
            result = await generator.agenerate(messages, **options)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            return _error(400, f"invalid request: {details}", "invalid_request_error")
        except InvalidInputError as exc:
            return _error(400, str(exc), "invalid_request_error")
        except GenerationError as exc:
            logger.warning("generation failed: %s", exc)
            return _error(502, f"generation failed: {exc}", "server_error")
        prompt, completion = result.prompt_tokens or 0, result.completion_tokens or 0
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason or "stop",
            }],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })  # fmt: skip

    return router


def _plain_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message whose content is a string (text parts are joined)."""
    content = message.get("content")
    if isinstance(content, list):
        return {**message, "content": "\n".join(_texts(message))}
    if content is None:
        return {**message, "content": ""}
    return dict(message)


async def _chunks(deltas: AsyncIterator[str], model: str) -> AsyncIterator[bytes]:
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(delta: dict[str, str], finish: str | None = None) -> bytes:
        chunk = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    try:
        async for text in deltas:
            yield event({"content": text})
    except RagzipError as exc:  # headers are gone: report in-band, as OpenAI does
        logger.warning("generation failed mid-stream: %s", exc)
        error = {"error": {"message": f"generation failed: {exc}", "type": "server_error"}}
        yield f"data: {json.dumps(error)}\n\n".encode()
    else:
        yield event({}, "stop")
    finally:
        close = getattr(deltas, "aclose", None)
        if close is not None:
            await close()
    yield b"data: [DONE]\n\n"
