"""The streamed answer of ``/v1/query`` as server-sent events.

``event: delta`` with ``{"text": ...}`` per piece, then one ``event: stats`` with the full
answer and stats, or ``event: error`` with ``{"error": {"type", "message"}}`` once the headers
are gone. The stream runs within the compute slot and deadline the route took for the request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from ragzip.adapters.rest.convert import stats_of
from ragzip.adapters.rest.errors import describe, log_unexpected
from ragzip.adapters.rest.hardening import Slot
from ragzip.middleware.pipeline import Prepared

__all__ = ["answer_events", "event"]


def event(name: str, data: Any) -> bytes:
    """One server-sent event with a JSON payload."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def answer_events(
    held: Slot,
    stack: AsyncExitStack,
    deltas: AsyncIterator[str],
    prepared: Prepared,
    *,
    log_documents: bool,
) -> AsyncIterator[bytes]:
    """The answer as server-sent events, within the slot and deadline ``held``.

    ``stack`` holds the slot: it is closed when the stream ends, however it ends.
    """
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
                yield event("delta", {"text": delta})
        finally:
            await _aclose(deltas)
        timings["generate"] = time.perf_counter() - start
    except Exception as exc:
        status, kind, message, _ = describe(exc)
        if status == 500:
            log_unexpected(exc, "/v1/query", log_documents)
        yield event("error", {"error": {"type": kind, "message": message}})
        return
    finally:
        await stack.aclose()
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    yield event(
        "stats",
        {
            "answer": "".join(answer).strip(),
            "retrieved_ids": [h.document.id for h in prepared.retrieved],
            "stats": stats_of(prepared.compression, timings),
        },
    )


async def _aclose(iterator: AsyncIterator[str]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
