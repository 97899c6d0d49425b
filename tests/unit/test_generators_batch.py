"""generate_batch on the generator contract, and the batching options as config (no model).

The batched local model is exercised in ``tests/integration/test_generators_batched.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ragzip.compressors.abstractive import AbstractiveCompressor
from ragzip.compressors.abstractive.compressor import _cache_identity
from ragzip.errors import ConfigError, GenerationError, InvalidInputError
from ragzip.generators import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    OpenAICompatibleGenerator,
    TransformersGenerator,
    generators,
    running_server,
)


class SlowEcho(BaseGenerator):
    """Echoes the last message after ``delay`` seconds; counts calls running at once."""

    name = "slow-echo"
    model = "echo"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _generate(self, request: GenerationRequest) -> Generation:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.delay)
            text = request.messages[-1]["content"]
            if "fail" in text:
                raise GenerationError("backend exploded")
            return Generation(text, self.model, 1, len(text.split()), "stop", 0.0)
        finally:
            with self._lock:
                self.running -= 1

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        yield self._generate(request).text


def test_the_default_generate_batch_runs_each_request_in_order_with_stop_strings():
    gen = SlowEcho()
    out = gen.generate_batch(["one. two", "three", [{"role": "user", "content": "four. five"}]],
                             stop=["."])  # fmt: skip
    assert [g.text for g in out] == ["one", "three", "four"]
    assert [g.finish_reason for g in out] == ["stop"] * 3
    assert all(g.seconds >= 0 for g in out)
    assert gen.generate_batch([]) == []


@pytest.mark.parametrize("bad", ["a single prompt", {"role": "user", "content": "x"}, 3])
def test_generate_batch_wants_a_list(bad):
    with pytest.raises(InvalidInputError, match="list of prompts"):
        SlowEcho().generate_batch(bad)


def test_generate_batch_checks_every_request_before_running_any():
    gen = SlowEcho()
    with pytest.raises(InvalidInputError, match="empty"):
        gen.generate_batch(["fine", ""])
    assert gen.peak == 0


def test_openai_generate_batch_sends_requests_concurrently_and_keeps_order():
    backend = SlowEcho(delay=0.3)
    prompts = [f"prompt number {i}" for i in range(6)]
    with (
        running_server(backend) as url,
        OpenAICompatibleGenerator(url, "echo", max_retries=0, timeout=10) as remote,
    ):
        start = time.perf_counter()
        out = remote.generate_batch(prompts, max_tokens=8)
        elapsed = time.perf_counter() - start
        assert [g.text for g in out] == prompts
        assert backend.peak > 1  # the server saw several requests at once
        assert elapsed < 6 * 0.3
        with pytest.raises(GenerationError):
            remote.generate_batch(["ok", "please fail"])


def test_batching_options_are_validated_and_round_trip_through_the_registry():
    gen = generators.build(
        {"type": "transformers", "params": {"model": "smollm2-135m", "batch_size": 8}}
    )
    assert isinstance(gen, TransformersGenerator)
    assert gen.batch_size == 8 and gen.batch_wait_ms == 10.0
    assert gen.params()["batch_size"] == 8
    assert generators.build(gen.to_dict()).params() == gen.params()
    assert gen._model is None  # cheap constructor: nothing loaded
    for bad in ({"batch_size": 0}, {"batch_size": 2.0}, {"batch_wait_ms": -1.0}):
        with pytest.raises(ConfigError):
            TransformersGenerator("smollm2-135m", **bad)


def test_a_flat_generator_spec_says_where_the_parameters_go():
    with pytest.raises(ConfigError, match="under 'params'"):
        generators.build({"type": "transformers", "model": "smollm2-135m", "batch_size": 8})


def test_the_abstractive_compressor_builds_the_batched_generator_and_shares_the_cache_key():
    spec = {"type": "transformers", "params": {"model": "smollm2-135m", "batch_size": 8}}
    batched = AbstractiveCompressor(spec, tokenizer="words")._generator()
    assert isinstance(batched, TransformersGenerator) and batched.batch_size == 8
    plain = TransformersGenerator("smollm2-135m")
    # Batching changes scheduling, not the summary: both share cached summaries.
    assert _cache_identity(batched) == _cache_identity(plain)
    assert "batch_size" not in _cache_identity(plain)["params"]
