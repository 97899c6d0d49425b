"""TransformersGenerator with batching, on the packaged SmolLM2-135M-Instruct.

Model calls are counted with a forward pre-hook that only observes: each ``model.generate``
call starts with one prefill forward pass over the whole prompt (later steps read one token).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ragzip.generators import Generation, TransformersGenerator

pytestmark = pytest.mark.integration

# Short prompts of different lengths (so rows are left-padded) and few tokens: the CPU is slow.
PROMPTS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "Who wrote Hamlet? Answer briefly please.",
    "What is 2 + 2?",
]
MAX_TOKENS = [12, 4, 8, 12]


class PrefillCounter:
    """Counts ``model.generate`` calls (prefill passes) and the rows each one carried."""

    def __init__(self, model: Any) -> None:
        self.rows: list[int] = []
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            self.rows.append(int(ids.shape[0]))

    def close(self) -> None:
        self._handle.remove()


@pytest.fixture(scope="module")
def generators() -> Iterator[tuple[TransformersGenerator, TransformersGenerator]]:
    # One intra-op thread, as in test_generators_local.py (shared CI runners). Restored after.
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    plain = TransformersGenerator("smollm2-135m", device="cpu")
    # A long wait so that requests from threads started together surely share a batch.
    batched = TransformersGenerator("smollm2-135m", device="cpu", batch_size=4, batch_wait_ms=500)
    plain.warm_up()
    batched.warm_up()
    yield plain, batched
    batched.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(generators) -> list[Generation]:
    """Unbatched greedy generations of PROMPTS with their own max_tokens."""
    plain, _ = generators
    return [plain.generate(p, max_tokens=m) for p, m in zip(PROMPTS, MAX_TOKENS, strict=True)]


@pytest.fixture
def counter(generators) -> Iterator[PrefillCounter]:
    _, batched = generators
    count = PrefillCounter(batched._load()[0])
    yield count
    count.close()


def same(a: Generation, b: Generation) -> bool:
    fields = ("text", "finish_reason", "prompt_tokens", "completion_tokens", "model")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def test_concurrent_requests_share_model_calls_and_match_unbatched_output(
    generators, reference, counter
):
    _, batched = generators
    barrier = threading.Barrier(len(PROMPTS))

    def ask(i: int) -> Generation:
        barrier.wait()
        return batched.generate(PROMPTS[i], max_tokens=MAX_TOKENS[i])

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        out = list(pool.map(ask, range(len(PROMPTS))))
    assert len(counter.rows) < len(PROMPTS)  # fewer model calls than requests
    assert max(counter.rows) > 1
    for got, want, limit in zip(out, reference, MAX_TOKENS, strict=True):
        assert got.completion_tokens is not None and got.completion_tokens <= limit
        # Greedy decoding of a left-padded row equals decoding it alone (checked exactly: the
        # padding is masked and these prompts are short; a mismatch here means a real bug).
        assert same(got, want), (got, want)


def test_generate_batch_is_one_model_call_in_order(generators, reference, counter):
    _, batched = generators
    out = batched.generate_batch(PROMPTS, max_tokens=12)
    assert counter.rows == [len(PROMPTS)]
    assert len(out) == len(PROMPTS)
    for got, want in zip(out, reference, strict=True):
        # Same prompt, a limit as long or longer: the unbatched answer is a prefix of it.
        assert got.text.startswith(want.text)
        assert got.completion_tokens is not None and got.completion_tokens <= 12
    assert out[0].text == reference[0].text  # max_tokens 12 in both


def test_stop_strings_cut_each_row_like_an_unbatched_call(generators):
    plain, batched = generators
    prompts = [*PROMPTS[:2], "Say hello. Then say goodbye."]
    want = [plain.generate(p, max_tokens=10, stop=["."]) for p in prompts]
    got = batched.generate_batch(prompts, max_tokens=10, stop=["."])
    for g, w in zip(got, want, strict=True):
        assert same(g, w), (g, w)
        assert "." not in g.text


def test_greedy_and_sampled_requests_run_as_separate_sub_batches(generators, counter):
    _, batched = generators
    barrier = threading.Barrier(4)

    def ask(i: int) -> Generation:
        barrier.wait()
        return batched.generate(PROMPTS[i], max_tokens=4, temperature=0.0 if i % 2 else 0.8)

    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(ask, range(4)))
    assert all(g.completion_tokens is not None and g.completion_tokens <= 4 for g in out)
    assert sorted(counter.rows) == [2, 2]  # one call per sampling setting
