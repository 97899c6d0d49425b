"""Micro-batching of concurrent bi-encoder forwards.

Compression runs in worker threads, one request per thread. Without batching, two requests
that both need sentence embeddings run two forwards of the same model side by side, each
with a small batch. :class:`MicroBatcher` gathers the texts of all calls that arrive while a
forward is running (plus an optional short window) and embeds them in one call of the
model; each caller gets back exactly its own rows.

What is batched: :meth:`BiEncoder._encode`, i.e. the texts that missed the embedding cache,
of every shared encoder the server's compressors and retriever use (queries, sentences and
documents alike). Results are the same as without batching up to float rounding of padded
batches; cache handling, validation and everything else stay per request.

:func:`attach` installs a batcher on an encoder instance (reference-counted, so several apps
in one process share it) and :func:`detach` removes it when the last user is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MicroBatcher", "attach", "batcher_of", "detach"]


@dataclass
class _Job:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Runs ``fn`` once for the texts of all concurrent callers.

    The first caller of a round becomes its leader: it waits ``window_s`` (if any), then for
    the previous forward to finish, takes every job waiting by then, runs ``fn`` on their
    concatenated texts and hands each job its rows. Later callers of the round just wait.

    Args:
        fn: Embeds a list of texts into an array with one row per text.
        window_s: Extra seconds a leader waits for company (0: batch only what queued up
            while the previous forward ran, so an idle server adds no latency).
        max_texts: A round stops taking jobs past this many texts; the rest lead the next.
    """

    def __init__(
        self,
        fn: Callable[[list[str]], np.ndarray],
        *,
        window_s: float = 0.001,
        max_texts: int = 512,
    ) -> None:
        self.fn = fn
        self.window_s = window_s
        self.max_texts = max_texts
        self._lock = threading.Lock()
        self._forward = threading.Lock()
        self._pending: list[_Job] = []
        self._leader = False
        self.calls = 0  # jobs submitted
        self.forwards = 0  # forwards run
        self.batched_texts = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        job = _Job(list(texts))
        with self._lock:
            self.calls += 1
            self._pending.append(job)
            lead = not self._leader
            if lead:
                self._leader = True
        if lead:
            self._lead()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _lead(self) -> None:
        if self.window_s > 0:
            time.sleep(self.window_s)
        with self._forward:
            with self._lock:
                batch: list[_Job] = []
                size = 0
                while self._pending and (not batch or size < self.max_texts):
                    job = self._pending.pop(0)
                    batch.append(job)
                    size += len(job.texts)
                self._leader = False
                if self._pending:  # leftovers: the next round needs a leader
                    self._leader = True
                    threading.Thread(target=self._lead, daemon=True).start()
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        texts = [t for job in batch for t in job.texts]
        try:
            vectors = self.fn(texts)
            if len(vectors) != len(texts):
                raise RuntimeError(f"batched encode returned {len(vectors)} rows for {len(texts)}")
        except BaseException as exc:
            for job in batch:
                job.error = exc
                job.done.set()
            return
        self.forwards += 1
        self.batched_texts += len(texts)
        start = 0
        for job in batch:
            job.result = vectors[start : start + len(job.texts)]
            start += len(job.texts)
            job.done.set()

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "forwards": self.forwards, "texts": self.batched_texts}


_ATTR = "_ragzip_batcher"
_users: dict[int, int] = {}
_registry_lock = threading.Lock()


def attach(encoder: Any, window_s: float = 0.001) -> MicroBatcher | None:
    """Routes ``encoder._encode`` through a shared batcher; returns it (``None`` if the
    encoder has no ``_encode`` to batch). Call :func:`detach` once per :func:`attach`."""
    original = getattr(type(encoder), "_encode", None)
    if original is None:
        return None
    with _registry_lock:
        batcher: MicroBatcher | None = getattr(encoder, _ATTR, None)
        if batcher is None:
            batcher = MicroBatcher(lambda texts: original(encoder, texts), window_s=window_s)
            setattr(encoder, _ATTR, batcher)
            encoder._encode = batcher  # instance attribute shadows the method
        _users[id(encoder)] = _users.get(id(encoder), 0) + 1
        return batcher


def detach(encoder: Any) -> None:
    """Undoes one :func:`attach`; the last one restores the plain method."""
    with _registry_lock:
        left = _users.get(id(encoder), 0) - 1
        if left > 0:
            _users[id(encoder)] = left
            return
        _users.pop(id(encoder), None)
        if getattr(encoder, _ATTR, None) is not None:
            delattr(encoder, _ATTR)
            if "_encode" in vars(encoder):
                delattr(encoder, "_encode")


def batcher_of(encoder: Any) -> MicroBatcher | None:
    """The batcher attached to ``encoder``, if any."""
    batcher: MicroBatcher | None = getattr(encoder, _ATTR, None)
    return batcher
