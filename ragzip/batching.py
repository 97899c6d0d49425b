"""Micro-batching: merge concurrent calls into one batched call.

Callers in many threads :meth:`MicroBatcher.submit` one item each and block; a worker thread
collects what arrives within a short window and runs one ``batch_fn`` over the lot, then hands
every caller its own result. A local model serves several requests in one forward pass this
way without its callers knowing about each other: the local generator batches generation
requests with it, the REST sidecar batches bi-encoder forwards.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ragzip.errors import ConfigError, GenerationError

__all__ = ["BatcherClosedError", "MicroBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosedError(GenerationError):
    """:meth:`MicroBatcher.submit` was called after :meth:`MicroBatcher.close`."""


class _Pending(Generic[T, R]):
    """One submitted item and the slot its result (or error) is delivered to."""

    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


_STOP = object()  # queued by close(): the worker finishes what came before it and exits


class MicroBatcher(Generic[T, R]):
    """Runs ``batch_fn`` over items submitted concurrently, up to ``max_batch_size`` at once.

    The worker thread starts on the first :meth:`submit` (constructing a batcher is cheap and
    starts nothing). It takes the first waiting item, then keeps collecting for at most
    ``max_wait_s`` or until ``max_batch_size`` items are in hand (with ``weight``, until their
    weights add up to ``max_batch_size``: a batch of lists can be bounded by their total
    length), and calls ``batch_fn`` once with them in arrival order. Items that queue while a
    batch runs make up the next one, so with ``max_wait_s=0`` an idle batcher adds no wait.
    ``batch_fn`` must return one result per item, in the same order. If it raises, every
    caller of that batch gets the exception. After ``idle_exit_s`` without
    work the worker exits (a later :meth:`submit` starts a new one), so a forgotten batcher
    does not pin a thread, or the objects ``batch_fn`` references, for the life of the process.

    Do not call :meth:`submit` from inside ``batch_fn``: the worker would wait for itself.

    Args:
        batch_fn: Maps a list of items to a list of results of the same length.
        max_batch_size: Most items per ``batch_fn`` call (>= 1).
        max_wait_s: Longest time to wait for more items after the first one (>= 0).
        idle_exit_s: Seconds the worker waits for work before it exits (> 0).
        name: Name of the worker thread (shows up in thread dumps).
        weight: Size of one item against ``max_batch_size`` (1 each by default).

    Attributes:
        calls: Items submitted so far.
        batches: ``batch_fn`` calls that returned a result per item.
        batched: Total weight of the items of those calls.

    Raises:
        ConfigError: a parameter out of range.

    Example:
        >>> batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=8)
        >>> batcher.submit(21)  # from any number of threads at once
        42
        >>> batcher.close()
    """

    def __init__(
        self,
        batch_fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 8,
        max_wait_s: float = 0.01,
        idle_exit_s: float = 30.0,
        name: str = "ragzip-batcher",
        weight: Callable[[T], int] | None = None,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
            raise ConfigError(f"max_batch_size must be an int, got {max_batch_size!r}")
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if not max_wait_s >= 0:
            raise ConfigError(f"max_wait_s must be >= 0 seconds, got {max_wait_s}")
        if not idle_exit_s > 0:
            raise ConfigError(f"idle_exit_s must be > 0 seconds, got {idle_exit_s}")
        self.batch_fn = batch_fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = float(max_wait_s)
        self.idle_exit_s = float(idle_exit_s)
        self.name = name
        self.weight = weight
        self.calls = 0
        self.batches = 0
        self.batched = 0
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()  # guards _worker and _closed against submit/close races
        self._worker: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, item: T) -> R:
        """Queues ``item``, blocks until its batch has run, and returns its result.

        Raises:
            BatcherClosedError: the batcher was closed.
            Exception: whatever ``batch_fn`` raised for this item's batch.
        """
        pending: _Pending[T, R] = _Pending(item)
        with self._lock:
            if self._closed:
                raise BatcherClosedError(
                    f"{self.name} is closed: create a new batcher (or generator) to submit more"
                )
            self.calls += 1
            self._queue.put(pending)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._worker.start()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]  # set with done, never None-typed R

    def close(self, timeout: float | None = None) -> None:
        """Stops the worker once the items submitted before this call have run.

        Later :meth:`submit` calls raise :class:`BatcherClosedError`. Idempotent.

        Args:
            timeout: Most seconds to wait for the worker to finish (``None``: as long as it
                takes).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
            if worker is not None:
                self._queue.put(_STOP)
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_exit_s)
            except queue.Empty:
                with self._lock:  # submit puts under this lock: nothing can slip in unseen
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            if first is _STOP:
                return
            batch, stop = self._collect(first)  # type: ignore[arg-type]
            self._run_batch(batch)
            if stop:
                return

    def _collect(self, first: _Pending[T, R]) -> tuple[list[_Pending[T, R]], bool]:
        """The first item plus what arrives within ``max_wait_s``; says whether close() came."""
        batch = [first]
        size = self._weigh(first)
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)  # type: ignore[arg-type]
            size += self._weigh(item)  # type: ignore[arg-type]
        return batch, False

    def _weigh(self, pending: _Pending[T, R]) -> int:
        return 1 if self.weight is None else self.weight(pending.item)

    def _run_batch(self, batch: list[_Pending[T, R]]) -> None:
        try:
            results = list(self.batch_fn([p.item for p in batch]))
            if len(results) != len(batch):
                raise GenerationError(
                    f"{self.name}: batch_fn returned {len(results)} results for {len(batch)} "
                    "items; it must return exactly one result per item, in order"
                )
        except BaseException as exc:  # every caller of the batch sees the failure
            for pending in batch:
                pending.error = exc
                pending.done.set()
            return
        self.batches += 1
        self.batched += sum(self._weigh(p) for p in batch)
        for pending, result in zip(batch, results, strict=True):
            pending.result = result
            pending.done.set()
