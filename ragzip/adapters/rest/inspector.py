"""The inspector: a page at ``/ui`` that shows what each compressor kept, and its API.

``GET /ui`` serves the page and ``GET /ui/{inspector.js,inspector.css}`` its packaged
assets (no CDN, no build step); ``GET /ui/config.json`` tells the page what this server
offers; ``POST /v1/inspect`` runs one to :data:`MAX_COMPRESSORS` compressors on the same
question and documents (or on what the server's index retrieves) and answers with the view
model of :mod:`ragzip.inspector.view`, plus answers from full and compressed context when a
generator is configured and asked for.

Everything here is behind the API's bearer auth (the page also accepts HTTP Basic with the
key as password, so a browser can open it), and ``/v1/inspect`` goes through the same request
policy, size limits, compute slots and timeout as ``/v1/compress``. ``ui: false`` in the
server settings turns the page and its API off.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ragzip.adapters.rest.convert import budget_of, documents_of, spec_of, texts_of
from ragzip.adapters.rest.errors import NotConfigured
from ragzip.adapters.rest.routes import State, check_sizes, state_of
from ragzip.adapters.rest.schemas import MAX_COMPRESSORS, InspectRequest
from ragzip.compressors.base import Compressor
from ragzip.errors import InvalidInputError
from ragzip.inspector import answer_full, build_view, render_page, run_compressors
from ragzip.inspector.report import ASSETS, asset
from ragzip.text import scrub
from ragzip.types import Document, as_documents

__all__ = ["MAX_COMPRESSORS", "api_router", "page_router"]

# The page loads only its own script and style, and talks only to this server.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

page_router = APIRouter(tags=["inspector"], include_in_schema=False)
api_router = APIRouter(tags=["inspector"])


@page_router.get("/ui", response_class=HTMLResponse)
async def page() -> Response:
    """The inspector page."""
    return HTMLResponse(render_page(), headers=_PAGE_HEADERS)


@page_router.get("/ui/config.json")
async def config(request: Request) -> dict[str, Any]:
    """What the page may offer: compressors, limits, index and generator."""
    services = state_of(request).services
    settings = services.settings
    return {
        "compressors": services.policy.offered(),
        "default": services.policy.default["type"],
        "has_index": services.retriever is not None,
        "has_generator": services.generator is not None,
        "max_body_bytes": settings.max_body_bytes,
        "max_documents": settings.max_documents,
        "max_compressors": MAX_COMPRESSORS,
    }


@page_router.get("/ui/{name}")
async def static_asset(name: str) -> Response:
    """The page's script and style (only the packaged files are served)."""
    media = ASSETS.get(name)
    if media is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(asset(name), media_type=media, headers=_PAGE_HEADERS)


def _documents(
    state: State, body: InspectRequest, given: list[Any] | None, query: str
) -> list[Document]:
    if given is not None:
        return as_documents(given)
    retriever = state.services.retriever
    if retriever is None:
        raise NotConfigured("this server has no index: paste documents, or start it with --index")
    k = body.top_k or state.services.settings.top_k
    return [hit.document for hit in retriever.retrieve(query, k)]


@api_router.post("/v1/inspect")
async def inspect(body: InspectRequest, request: Request) -> dict[str, Any]:
    """Compares compressors on one question: what each kept, per document, with timings."""
    state = state_of(request)
    services = state.services
    query = scrub(body.query)
    if not query.strip():
        raise InvalidInputError("query must not be blank")
    named: list[tuple[str, Compressor]] = []
    for choice in body.compressors:
        label = choice if isinstance(choice, str) else choice.type
        named.append((label, services.compressor(spec_of(choice))))
    budget = budget_of(services, body.budget)
    generator = services.generator if body.answer else None
    if body.answer and generator is None:
        raise NotConfigured("this server has no generator to answer with (generator setting)")
    max_tokens = services.settings.max_answer_tokens
    given = documents_of(body.documents) if body.documents is not None else None
    if given is not None and len(given) > services.settings.max_documents:
        check_sizes(state, named[0][1], "", texts_of(given))  # refuse before taking a slot

    def work() -> dict[str, Any]:
        documents = _documents(state, body, given, query)
        for _, compressor in named:
            check_sizes(state, compressor, query, [d.text for d in documents])
        runs = run_compressors(
            query, documents, named, budget, generator=generator, max_tokens=max_tokens
        )
        full, full_seconds = (
            answer_full(query, documents, generator, max_tokens=max_tokens)
            if generator is not None
            else (None, None)
        )
        return build_view(
            query,
            documents,
            runs,
            budget=budget.to_dict(),
            full_answer=full,
            full_answer_seconds=full_seconds,
        )

    view: dict[str, Any] = await state.limiter.run(work)
    for run in view["runs"]:
        state.metrics.observe_compression(
            run["compressor"], run["tokens_before"], run["tokens_after"]
        )
    return view
