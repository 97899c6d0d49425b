"""The HTTP routes. Handlers translate wire schemas to ragzip calls and back; errors go to
:mod:`ragzip.adapters.rest.errors`, limits to :mod:`ragzip.adapters.rest.hardening`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragzip.adapters.rest.errors import NotConfigured, describe, log_unexpected
from ragzip.adapters.rest.hardening import Limiter, check_input_size
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
from ragzip.middleware.base import Compressor
from ragzip.middleware.pipeline import Pipeline
from ragzip.middleware.registry import compressors
from ragzip.types import Budget, CompressionResult

__all__ = ["api_router", "probe_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 413, 422, 429, 500, 501, 502, 503, 504)
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


def _budget(budget: BudgetIn | float | None, default: Budget) -> Budget:
    if budget is None:
        return default
    if isinstance(budget, BudgetIn):
        return Budget(
            ratio=budget.ratio,
            tokens=budget.tokens,
            keep=tuple(budget.keep),
            keep_patterns=tuple(budget.keep_patterns),
        )
    return Budget.of(budget)


def _documents(items: Sequence[DocumentIn | str]) -> list[str | dict[str, Any]]:
    out: list[str | dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        else:
            doc: dict[str, Any] = {"text": item.text, "metadata": item.metadata or {}}
            if item.id is not None:
                doc["id"] = item.id
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
    budget = _budget(body.budget, state.services.default_budget)
    documents = _documents(body.documents)
    if len(documents) > state.services.settings.max_documents:  # refuse before taking a slot
        _checked(state, compressor, "", _texts(documents))

    def work() -> CompressionResult:
        _checked(state, compressor, body.query, _texts(documents))
        return compressor.compress(body.query, documents, budget)

    result = await state.limiter.run(work)
    state.metrics.observe_compression(result.compressor, result.tokens_before, result.tokens_after)
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
    hits = await state.limiter.run(retriever.retrieve, body.query, k)
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
        budget=_budget(body.budget, services.default_budget),
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
    ``event: error`` with ``{"error": {"type", "message"}}``).
    """
    state = _state(request)
    pipeline, compressor = _pipeline(state, body)
    documents = _documents(body.documents) if body.documents is not None else None
    if body.stream and pipeline.generator is None:
        raise NotConfigured("this server has no generator to stream from (generator setting)")
    deadline = state.limiter.deadline()

    def prepare() -> Any:
        _checked(state, compressor, body.query, _texts(documents or []))
        retrieved, compression, messages, timings = pipeline.prepare(body.query, documents)
        _checked(state, compressor, body.query, [h.document.text for h in retrieved])
        return retrieved, compression, messages, timings

    if body.stream:
        prepared = await state.limiter.run(prepare, deadline=deadline)
        _observe(state, prepared[1])
        return StreamingResponse(
            _stream(state, pipeline, prepared, deadline),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def run() -> Any:
        prepare()  # limits; Pipeline.run repeats the cheap steps
        return pipeline.run(body.query, documents)

    result = await state.limiter.run(run, deadline=deadline)
    _observe(state, result.compression)
    return {
        "query": body.query,
        "answer": result.answer,
        "context": result.context,
        "documents": [d.to_dict() for d in result.compression.documents],
        "retrieved_ids": [h.document.id for h in result.retrieved],
        "stats": _stats(result.compression, result.timings),
    }


def _observe(state: State, result: CompressionResult) -> None:
    state.metrics.observe_compression(result.compressor, result.tokens_before, result.tokens_after)


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(
    state: State, pipeline: Pipeline, prepared: Any, deadline: float
) -> AsyncIterator[bytes]:
    retrieved, compression, messages, timings = prepared
    generator = pipeline.generator
    answer: list[str] = []
    try:
        async with state.limiter.slot(deadline):
            start = time.perf_counter()
            deltas = generator.astream(messages, max_tokens=pipeline.max_tokens)
            try:
                while True:
                    left = deadline - time.monotonic()
                    try:
                        delta = await asyncio.wait_for(deltas.__anext__(), max(0.0, left))
                    except StopAsyncIteration:
                        break
                    answer.append(delta)
                    yield _event("delta", {"text": delta})
            finally:
                await deltas.aclose()
            timings = {**timings, "generate": time.perf_counter() - start}
    except Exception as exc:
        status, kind, message, _ = describe(exc)
        if status == 500:
            log_unexpected(exc, "/v1/query", state.services.settings.log_documents)
        yield _event("error", {"error": {"type": kind, "message": message}})
        return
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    yield _event(
        "stats",
        {
            "answer": "".join(answer).strip(),
            "retrieved_ids": [h.document.id for h in retrieved],
            "stats": _stats(compression, timings),
        },
    )


@api_router.get("/v1/compressors", response_model=CompressorsResponse, tags=["compression"])
async def list_compressors(request: Request) -> dict[str, Any]:
    """Registered compressors with their parameters and defaults."""
    state = _state(request)
    listed = []
    for name in compressors.names():
        try:
            listed.append(compressors.describe(name))
        except (RagzipError, ImportError):  # a dependency or module is missing: not offered
            continue
    default = state.services.default_spec
    return {
        "default": {"type": default} if isinstance(default, str) else dict(default),
        "compressors": listed,
    }


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
    status = "ready" if services.ready else "starting"
    return JSONResponse(
        {"status": status, "components": components}, status_code=200 if services.ready else 503
    )


def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (text format)."""
    registry = _state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


api_router.add_api_route(
    "/metrics", metrics_endpoint, methods=["GET"], tags=["operations"], include_in_schema=True
)
