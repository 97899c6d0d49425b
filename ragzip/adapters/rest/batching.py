"""Micro-batching of concurrent bi-encoder forwards.

Compression runs in worker threads, one request per thread. Without batching, two requests
that both need sentence embeddings run two forwards of the same model side by side, each
with a small batch. :class:`EmbeddingBatcher` gathers the texts of all calls that arrive while a
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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ragzip.batching import MicroBatcher

__all__ = ["EmbeddingBatcher", "attach", "batcher_of", "detach"]


class EmbeddingBatcher:
    """Runs ``fn`` once for the texts of all concurrent callers: a
    :class:`~ragzip.batching.MicroBatcher` whose items are lists of texts.

    A worker takes the first waiting call, waits ``window_s`` for company (if any), runs ``fn``
    on the concatenated texts of the calls in hand and gives each caller its rows. Calls that
    queue while a forward runs make up the next one.

    Args:
        fn: Embeds a list of texts into an array with one row per text.
        window_s: Extra seconds to wait for company (0: batch only what queued up while the
            previous forward ran, so an idle server adds no latency).
        max_texts: A forward stops taking calls past this many texts; the rest make up the
            next one.
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
        self._batcher: MicroBatcher[list[str], np.ndarray] = MicroBatcher(
            self._forward,
            max_batch_size=max_texts,
            max_wait_s=window_s,
            name="ragzip-encode",
            weight=len,
        )

    @property
    def calls(self) -> int:
        """Calls submitted so far."""
        return self._batcher.calls

    @property
    def forwards(self) -> int:
        """Batched forwards run so far."""
        return self._batcher.batches

    @property
    def batched_texts(self) -> int:
        return self._batcher.batched

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self._batcher.submit(list(texts))

    def _forward(self, calls: list[list[str]]) -> list[np.ndarray]:
        texts = [t for call in calls for t in call]
        vectors = self.fn(texts)
        if len(vectors) != len(texts):
            raise RuntimeError(f"batched encode returned {len(vectors)} rows for {len(texts)}")
        rows, start = [], 0
        for call in calls:
            rows.append(vectors[start : start + len(call)])
            start += len(call)
        return rows

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "forwards": self.forwards, "texts": self.batched_texts}


_ATTR = "_ragzip_batcher"
_users: dict[int, int] = {}
_registry_lock = threading.Lock()


def attach(encoder: Any, window_s: float = 0.001) -> EmbeddingBatcher | None:
    """Routes ``encoder._encode`` through a shared batcher; returns it (``None`` if the
    encoder has no ``_encode`` to batch). Call :func:`detach` once per :func:`attach`."""
    original = getattr(type(encoder), "_encode", None)
    if original is None:
        return None
    with _registry_lock:
        batcher: EmbeddingBatcher | None = getattr(encoder, _ATTR, None)
        if batcher is None:
            batcher = EmbeddingBatcher(lambda texts: original(encoder, texts), window_s=window_s)
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


def batcher_of(encoder: Any) -> EmbeddingBatcher | None:
    """The batcher attached to ``encoder``, if any."""
    batcher: EmbeddingBatcher | None = getattr(encoder, _ATTR, None)
    return batcher
