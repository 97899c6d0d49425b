"""MicroBatcher (ragzip.batching) with real threads: coalescing, routing of results and errors,
weights, close()."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from ragzip.batching import BatcherClosedError, MicroBatcher
from ragzip.errors import ConfigError, GenerationError


class Recorder:
    """A batch function that records the batches it was called with."""

    def __init__(self, fn: Callable[[int], object] = lambda x: x * 10, delay: float = 0.0) -> None:
        self.fn = fn
        self.delay = delay
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[object]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return [self.fn(x) for x in items]


def submit_all(batcher: MicroBatcher[int, object], items: list[int]) -> list[object]:
    """Submits every item from its own thread, all released at once."""
    barrier = threading.Barrier(len(items))

    def one(x: int) -> object:
        barrier.wait()
        return batcher.submit(x)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_concurrent_submits_are_coalesced_and_each_caller_gets_its_own_result():
    recorder = Recorder(delay=0.02)
    batcher = MicroBatcher(recorder, max_batch_size=4, max_wait_s=0.2)
    items = list(range(12))
    assert submit_all(batcher, items) == [x * 10 for x in items]
    assert sorted(x for batch in recorder.batches for x in batch) == items
    assert max(len(b) for b in recorder.batches) > 1  # requests were merged
    assert all(len(b) <= 4 for b in recorder.batches)
    assert len(recorder.batches) < len(items)
    assert len(recorder.threads) == 1  # one worker per batcher
    batcher.close()


def test_a_lone_item_runs_alone_once_the_wait_is_over():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_s=0.05)
    assert batcher.submit(7) == 70  # returns: the lone item did not wait for company forever
    assert recorder.batches == [[7]]
    batcher.close()


def test_an_error_in_batch_fn_reaches_every_caller_of_that_batch():
    def boom(items: list[int]) -> list[int]:
        if 3 in items:
            raise ValueError("batch exploded")
        return items

    batcher = MicroBatcher(boom, max_batch_size=4, max_wait_s=0.5)
    barrier = threading.Barrier(4)
    outcomes: dict[int, object] = {}

    def one(x: int) -> None:
        barrier.wait()
        try:
            outcomes[x] = batcher.submit(x)
        except ValueError as exc:
            outcomes[x] = exc

    threads = [threading.Thread(target=one, args=(x,)) for x in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcomes[3].__class__ is ValueError
    # Whoever shared the failing batch failed too; whoever ran in another batch succeeded.
    for x in (0, 1, 2):
        assert isinstance(outcomes[x], ValueError) or outcomes[x] == x
    assert sum(isinstance(o, ValueError) for o in outcomes.values()) >= 2  # merged with 3
    assert batcher.submit(5) == 5  # the worker survived the failure
    batcher.close()


def test_a_wrong_number_of_results_is_an_error_for_every_caller():
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [], max_wait_s=0.0)
    with pytest.raises(GenerationError, match="one result per item"):
        batcher.submit(1)
    batcher.close()


def test_close_stops_the_worker_after_pending_items_and_refuses_new_ones():
    recorder = Recorder(delay=0.05)
    batcher = MicroBatcher(recorder, max_batch_size=2, max_wait_s=0.0, name="test-batcher")
    assert batcher.submit(1) == 10
    worker = next(t for t in threading.enumerate() if t.name == "test-batcher")
    batcher.close(timeout=5)
    assert not worker.is_alive()
    assert batcher.closed
    with pytest.raises(BatcherClosedError, match="closed"):
        batcher.submit(2)
    batcher.close()  # idempotent


def test_close_runs_items_submitted_before_it():
    recorder = Recorder(delay=0.1)
    batcher = MicroBatcher(recorder, max_batch_size=1, max_wait_s=0.0)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.submit, x) for x in range(3)]
        time.sleep(0.05)  # all three are queued or running
        batcher.close(timeout=10)
        assert [f.result(timeout=10) for f in futures] == [0, 10, 20]


def test_construction_starts_no_thread_and_an_idle_worker_exits():
    before = threading.active_count()
    batcher = MicroBatcher(Recorder(), max_wait_s=0.0, idle_exit_s=0.05, name="idle-batcher")
    assert threading.active_count() == before
    assert batcher.submit(2) == 20
    deadline = time.monotonic() + 5
    while any(t.name == "idle-batcher" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the idle worker did not exit"
        time.sleep(0.02)
    assert batcher.submit(3) == 30  # a new worker starts on demand
    batcher.close()


@pytest.mark.parametrize(
    "kwargs",
    [{"max_batch_size": 0}, {"max_batch_size": 2.5}, {"max_wait_s": -1}, {"idle_exit_s": 0}],
)
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        MicroBatcher(Recorder(), **kwargs)


def test_weights_bound_a_batch_by_the_size_of_its_items():
    gate = threading.Event()
    batches: list[list[list[int]]] = []

    def run(items: list[list[int]]) -> list[int]:
        gate.wait(5)  # the first batch holds the worker until every caller has queued
        batches.append(items)
        return [sum(item) for item in items]

    batcher = MicroBatcher(run, max_batch_size=4, max_wait_s=0.0, weight=len)
    items = [[1, 2, 3], [1], [2, 2], [3, 3], [5]]
    with ThreadPoolExecutor(len(items)) as pool:
        futures = [pool.submit(batcher.submit, items[0])]
        while batcher.calls < 1:
            time.sleep(0.001)
        futures += [pool.submit(batcher.submit, item) for item in items[1:]]
        while batcher.calls < len(items):
            time.sleep(0.001)
        gate.set()
        assert [f.result(timeout=10) for f in futures] == [6, 1, 4, 6, 5]
    # A batch takes items while their lengths add up to less than 4, in arrival order.
    for batch in batches:
        assert sum(len(item) for item in batch[:-1]) < 4
    assert sorted(map(tuple, (i for b in batches for i in b))) == sorted(map(tuple, items))
    assert batcher.batches == len(batches) and batcher.batched == sum(map(len, items))
    batcher.close()
