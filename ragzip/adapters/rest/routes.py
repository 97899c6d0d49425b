"""The HTTP routes. Handlers translate wire schemas to ragzip calls and back
(:mod:`ragzip.adapters.rest.convert`); errors go to :mod:`ragzip.adapters.rest.errors`, limits
to :mod:`ragzip.adapters.rest.hardening`, streamed answers to
:mod:`ragzip.adapters.rest.events`."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragzip.adapters.rest.convert import budget_of, documents_of, spec_of, stats_of, texts_of
from ragzip.adapters.rest.errors import NotConfigured
from ragzip.adapters.rest.events import answer_events
from ragzip.adapters.rest.hardening import Limiter, check_input_size
from ragzip.adapters.rest.metrics import Metrics
from ragzip.adapters.rest.schemas import (
    CompressorsResponse,
    CompressRequest,
    CompressResponse,
    ErrorBody,
    HealthResponse,
    QueryRequest,
    QueryResponse,
    RetrieveRequest,
    RetrieveResponse,
)
from ragzip.adapters.rest.service import Services
from ragzip.compressors.base import Compressor
from ragzip.compressors.registry import compressors
from ragzip.errors import RagzipError
from ragzip.middleware.pipeline import Pipeline, PipelineResult, Prepared
from ragzip.text import scrub
from ragzip.types import CompressionResult

__all__ = ["State", "api_router", "check_sizes", "probe_router", "state_of"]

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


def state_of(request: Request) -> State:
    state: State = request.app.state.ragzip
    return state


def check_sizes(state: State, compressor: Compressor, query: str, texts: list[str]) -> None:
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
    state = state_of(request)
    compressor = state.services.compressor(spec_of(body.compressor))
    budget = budget_of(state.services, body.budget)
    documents = documents_of(body.documents)
    query = scrub(body.query)
    if len(documents) > state.services.settings.max_documents:  # refuse before taking a slot
        check_sizes(state, compressor, "", texts_of(documents))

    def work() -> CompressionResult:
        check_sizes(state, compressor, query, texts_of(documents))
        return compressor.compress(query, documents, budget)

    result = await state.limiter.run(work)
    _observe(state, result)
    return {
        "documents": [d.to_dict() for d in result.documents],
        "stats": stats_of(result),
    }


@api_router.post("/v1/retrieve", response_model=RetrieveResponse, tags=["retrieval"])
async def retrieve(body: RetrieveRequest, request: Request) -> dict[str, Any]:
    """The best documents of the server's index for a query."""
    state = state_of(request)
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
    compressor = services.compressor(spec_of(body.compressor))
    max_tokens = min(body.max_tokens or settings.max_answer_tokens, settings.max_answer_tokens)
    pipeline = Pipeline(
        compressor,
        services.retriever,
        services.generator,
        budget=budget_of(services, body.budget),
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
    state = state_of(request)
    pipeline, compressor = _pipeline(state, body)
    documents = documents_of(body.documents) if body.documents is not None else None
    question = scrub(body.query)
    if body.stream and pipeline.generator is None:
        raise NotConfigured("this server has no generator to stream from (generator setting)")
    if documents is not None and len(documents) > state.services.settings.max_documents:
        check_sizes(state, compressor, "", texts_of(documents))

    def prepare() -> Prepared:
        check_sizes(state, compressor, question, texts_of(documents or []))
        prepared = pipeline.prepare(question, documents)
        check_sizes(state, compressor, question, [h.document.text for h in prepared.retrieved])
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
            "stats": stats_of(result.compression, result.timings),
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
        answer_events(
            held, stack, deltas, prepared, log_documents=state.services.settings.log_documents
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _observe(state: State, result: CompressionResult) -> None:
    state.metrics.observe_compression(result.compressor, result.tokens_before, result.tokens_after)


@api_router.get("/v1/compressors", response_model=CompressorsResponse, tags=["compression"])
async def list_compressors(request: Request) -> dict[str, Any]:
    """The compressors a request may choose, their defaults and what a request may set.

    Server-configured parameters (models, files, URLs) are not shown.
    """
    policy = state_of(request).services.policy
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
    services = state_of(request).services
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
    registry = state_of(request).metrics.registry
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
