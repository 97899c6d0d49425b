"""The HTTP routes. Handlers translate wire schemas to ragzip calls and back; errors go to
:mod:`ragzip.adapters.rest.errors`, limits to :mod:`ragzip.adapters.rest.hardening`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragzip.adapters.rest.errors import NotConfigured, describe, log_unexpected
from ragzip.adapters.rest.hardening import Limiter, Slot, check_input_size
from ragzip.adapters.rest.metrics import Metrics
from ragzip.adapters.rest.schemas import (
    BudgetIn,
    CompressorSpec,
    CompressorsResponse,
    CompressRequest,
    CompressResponse,
    DocumentIn,
    ErrorBody,
    HealthResponse,
    QueryRequest,
    QueryResponse,
    RetrieveRequest,
    RetrieveResponse,
)
from ragzip.adapters.rest.service import Services
from ragzip.errors import RagzipError
from ragzip.compressors.base import Compressor
from ragzip.middleware.pipeline import Pipeline, PipelineResult, Prepared
from ragzip.compressors.registry import compressors
from ragzip.text import scrub
from ragzip.types import Budget, CompressionResult

__all__ = ["api_router", "probe_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 408, 413, 422, 429, 500, 502, 503, 504)
}

api_router = APIRouter(responses=_ERRORS)
probe_router = APIRouter(tags=["operations"])


@dataclass(frozen=True)
class State:
    services: Services
    limiter: Limiter
    metrics: Metrics


def _state(request: Request) -> State:
    state: State = request.app.state.ragzip
    return state


# -- conversions ---------------------------------------------------------------------------------
def _spec(spec: CompressorSpec | str | None) -> str | dict[str, Any] | None:
    if isinstance(spec, CompressorSpec):
        return {"type": spec.type, "params": spec.params}
    return spec


def _budget(services: Services, budget: BudgetIn | float | None) -> Budget:
    if budget is None:
        return services.budget(None)
    if isinstance(budget, BudgetIn):
        asked = Budget(
            ratio=budget.ratio,
            tokens=budget.tokens,
            keep=tuple(scrub(k) for k in budget.keep),
            keep_patterns=tuple(scrub(p) for p in budget.keep_patterns),
        )
    else:
        asked = Budget.of(budget)
    return services.budget(asked)


def _documents(items: Sequence[DocumentIn | str]) -> list[str | dict[str, Any]]:
    """Plain documents; lone surrogates (valid JSON, invalid UTF-8) become U+FFFD."""
    out: list[str | dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append(scrub(item))
        else:
            doc: dict[str, Any] = {"text": scrub(item.text), "metadata": item.metadata or {}}
            if item.id is not None:
                doc["id"] = scrub(item.id)
            out.append(doc)
    return out


def _texts(documents: Sequence[str | Mapping[str, Any]]) -> list[str]:
    return [d if isinstance(d, str) else str(d["text"]) for d in documents]


def _stats(result: CompressionResult, timings: Mapping[str, float] | None = None) -> dict[str, Any]:
    data = result.to_dict()
    return {
        "tokens_before": data["tokens_before"],
        "tokens_after": data["tokens_after"],
        "ratio": data["ratio"],
        "timings": {k: round(v, 6) for k, v in (timings or result.timings).items()},
        "compressor": data["compressor"],
        "tokenizer": data["tokenizer"],
        "dropped_ids": data["dropped_ids"],
    }


def _checked(state: State, compressor: Compressor, query: str, texts: list[str]) -> None:
    s = state.services.settings
    check_input_size(
        query,
        texts,
        max_documents=s.max_documents,
        max_tokens=s.max_tokens_per_request,
        count=state.services.count(compressor),
    )


# -- /v1 -----------------------------------------------------------------------------------------
@api_router.post("/v1/compress", response_model=CompressResponse, tags=["compression"])
async def compress(body: CompressRequest, request: Request) -> dict[str, Any]:
    """Compresses documents for a query within a budget."""
    state = _state(request)
    compressor = state.services.compressor(_spec(body.compressor))
    budget = _budget(state.services, body.budget)
    documents = _documents(body.documents)
    query = scrub(body.query)
    if len(documents) > state.services.settings.max_documents:  # refuse before taking a slot
        _checked(state, compressor, "", _texts(documents))

    def work() -> CompressionResult:
        _checked(state, compressor, query, _texts(documents))
        return compressor.compress(query, documents, budget)

    result = await state.limiter.run(work)
    _observe(state, result)
    return {
        "documents": [d.to_dict() for d in result.documents],
        "stats": _stats(result),
    }


@api_router.post("/v1/retrieve", response_model=RetrieveResponse, tags=["retrieval"])
async def retrieve(body: RetrieveRequest, request: Request) -> dict[str, Any]:
    """The best documents of the server's index for a query."""
    state = _state(request)
    retriever = state.services.retriever
    if retriever is None:
        raise NotConfigured("this server has no index: start it with --index (index_dir)")
    k = body.top_k or state.services.settings.top_k
    start = time.perf_counter()
    hits = await state.limiter.run(retriever.retrieve, scrub(body.query), k)
    return {
        "documents": [
            {
                "id": h.document.id,
                "text": h.document.text,
                "score": h.score,
                "rank": h.rank,
                "metadata": dict(h.document.metadata),
            }
            for h in hits
        ],
        "timings": {"retrieve": round(time.perf_counter() - start, 6)},
    }


def _pipeline(state: State, body: QueryRequest) -> tuple[Pipeline, Compressor]:
    services = state.services
    settings = services.settings
    if body.documents is None and services.retriever is None:
        raise NotConfigured(
            "this server has no index to retrieve from: pass documents, or start it with "
            "--index (index_dir)"
        )
    compressor = services.compressor(_spec(body.compressor))
    max_tokens = min(body.max_tokens or settings.max_answer_tokens, settings.max_answer_tokens)
    pipeline = Pipeline(
        compressor,
        services.retriever,
        services.generator,
        budget=_budget(services, body.budget),
        top_k=body.top_k or settings.top_k,
        max_tokens=max_tokens,
    )
    return pipeline, compressor


@api_router.post(
    "/v1/query",
    response_model=QueryResponse,
    tags=["generation"],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def query(body: QueryRequest, request: Request) -> Any:
    """Retrieves (unless documents are given), compresses and answers.

    With ``"stream": true`` the answer comes as server-sent events: ``event: delta`` with
    ``{"text": ...}`` per piece, then one ``event: stats`` with the full answer and stats (or
    ``event: error`` with ``{"error": {"type", "message"}}``). One compute slot is held for
    the whole request, the stream included; retrieval and compression run once.
    """
    state = _state(request)
    pipeline, compressor = _pipeline(state, body)
    documents = _documents(body.documents) if body.documents is not None else None
    question = scrub(body.query)
    if body.stream and pipeline.generator is None:
        raise NotConfigured("this server has no generator to stream from (generator setting)")
    if documents is not None and len(documents) > state.services.settings.max_documents:
        _checked(state, compressor, "", _texts(documents))

    def prepare() -> Prepared:
        _checked(state, compressor, question, _texts(documents or []))
        prepared = pipeline.prepare(question, documents)
        _checked(state, compressor, question, [h.document.text for h in prepared.retrieved])
        return prepared

    if not body.stream:

        def run() -> PipelineResult:
            return pipeline.answer(prepare())

        result = await state.limiter.run(run)
        _observe(state, result.compression)
        return {
            "query": body.query,
            "answer": result.answer,
            "context": result.context,
            "documents": [d.to_dict() for d in result.compression.documents],
            "retrieved_ids": [h.document.id for h in result.retrieved],
            "stats": _stats(result.compression, result.timings),
        }
    stack = AsyncExitStack()
    held = await stack.enter_async_context(state.limiter.slot())
    try:
        prepared = await state.limiter.in_thread(held, prepare)
        deltas = pipeline.astream_prepared(prepared)  # checked before the first byte
    except BaseException:
        await stack.aclose()
        raise
    _observe(state, prepared.compression)
    return StreamingResponse(
        _stream(state, held, stack, deltas, prepared),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _observe(state: State, result: CompressionResult) -> None:
    state.metrics.observe_compression(result.compressor, result.tokens_before, result.tokens_after)


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(
    state: State,
    held: Slot,
    stack: AsyncExitStack,
    deltas: AsyncIterator[str],
    prepared: Prepared,
) -> AsyncIterator[bytes]:
    """The answer as server-sent events, within the slot and deadline ``held``."""
    answer: list[str] = []
    timings = dict(prepared.timings)
    try:
        start = time.perf_counter()
        try:
            while True:
                try:
                    delta = await asyncio.wait_for(deltas.__anext__(), held.left())
                except StopAsyncIteration:
                    break
                answer.append(delta)
                yield _event("delta", {"text": delta})
        finally:
            await _aclose(deltas)
        timings["generate"] = time.perf_counter() - start
    except Exception as exc:
        status, kind, message, _ = describe(exc)
        if status == 500:
            log_unexpected(exc, "/v1/query", state.services.settings.log_documents)
        yield _event("error", {"error": {"type": kind, "message": message}})
        return
    finally:
        await stack.aclose()
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    yield _event(
        "stats",
        {
            "answer": "".join(answer).strip(),
            "retrieved_ids": [h.document.id for h in prepared.retrieved],
            "stats": _stats(prepared.compression, timings),
        },
    )


async def _aclose(iterator: AsyncIterator[str]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


@api_router.get("/v1/compressors", response_model=CompressorsResponse, tags=["compression"])
async def list_compressors(request: Request) -> dict[str, Any]:
    """The compressors a request may choose, their defaults and what a request may set.

    Server-configured parameters (models, files, URLs) are not shown.
    """
    policy = _state(request).services.policy
    listed = []
    for name in policy.offered():
        kind = str((policy.presets.get(name) or {"type": name})["type"])
        try:
            info = compressors.describe(kind)
            allowed: frozenset[str] = getattr(compressors.get(kind), "request_params", frozenset())
        except (RagzipError, ImportError):  # unregistered, or a dependency is missing
            continue
        params = {k: v for k, v in info["params"].items() if k in allowed}
        listed.append({**info, "type": name, "params": params, "request_params": sorted(allowed)})
    return {"default": {"type": policy.default["type"]}, "compressors": listed}


# -- operations ------------------------------------------------------------------------------
@probe_router.get("/healthz", response_model=HealthResponse)
async def healthz() -> dict[str, Any]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@probe_router.get("/readyz", response_model=HealthResponse, responses={503: {}})
async def readyz(request: Request) -> Response:
    """Readiness: components are built and (with ``warm_up``) their models are loaded."""
    services = _state(request).services
    components = {
        "compressor": services.default_spec,
        "retriever": type(services.retriever).__name__ if services.retriever else None,
        "generator": type(services.generator).__name__ if services.generator else None,
        "warm_up_error": services.warm_error,
    }
    ready = services.ready and not services.draining
    status = "draining" if services.draining else "ready" if services.ready else "starting"
    return JSONResponse(
        {"status": status, "components": components}, status_code=200 if ready else 503
    )


def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (text format)."""
    registry = _state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


api_router.add_api_route(
    "/metrics",
    metrics_endpoint,
    methods=["GET"],
    tags=["operations"],
    include_in_schema=True,
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
