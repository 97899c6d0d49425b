"""Async iteration over a blocking iterator, driven from a worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = ["iterate_in_thread"]


async def iterate_in_thread(iterator: Iterator[str]) -> AsyncIterator[str]:
    """Drives a blocking iterator from a worker thread and yields its items asynchronously.

    When the consumer stops early, the worker stops at the next item and closes the iterator,
    so backends can cancel work in their ``finally`` blocks.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancelled = threading.Event()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            cancelled.set()

    def produce() -> None:
        try:
            for item in iterator:
                if cancelled.is_set():
                    break
                put("item", item)
        except BaseException as exc:
            put("error", exc)
        else:
            put("done", None)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    threading.Thread(target=produce, name="ragzip-astream", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        cancelled.set()
