"""TransformersGenerator on the packaged SmolLM2-135M-Instruct, directly and served over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ragzip.errors import InvalidInputError
from ragzip.generators import OpenAICompatibleGenerator, TransformersGenerator, running_server

pytestmark = pytest.mark.integration

QUESTION = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def gen() -> Iterator[TransformersGenerator]:
    # One intra-op thread: on small shared CI runners, torch's thread pool spinning against
    # other busy processes makes decoding 10x slower. Restored afterwards.
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = TransformersGenerator("smollm2-135m", device="cpu")
    generator.warm_up()
    yield generator
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def answer(gen: TransformersGenerator):
    return gen.generate(QUESTION, max_tokens=16)


@pytest.fixture(scope="module")
def served(gen: TransformersGenerator) -> Iterator[str]:
    with running_server(gen) as base_url:
        yield base_url


def test_generate_answers_with_the_chat_template(gen, answer):
    assert "Paris" in answer.text
    assert answer.model == "smollm2-135m"
    assert 0 < answer.completion_tokens <= 16
    assert answer.finish_reason in ("stop", "length")
    assert answer.seconds > 0
    rendered = gen.tokenizer.apply_chat_template(
        QUESTION, tokenize=False, add_generation_prompt=True
    )
    assert rendered.endswith("<|im_start|>assistant\n")
    assert answer.prompt_tokens == gen.count_tokens(rendered)


def test_greedy_stream_concatenates_to_generate(gen, answer):
    deltas = list(gen.stream(QUESTION, max_tokens=16))
    assert len(deltas) > 1
    assert "".join(deltas) == answer.text


def test_stop_strings_cut_generate_and_stream_alike(gen, answer):
    stop = answer.text.split()[2]  # a word from inside the greedy answer
    cut = gen.generate(QUESTION, max_tokens=16, stop=[stop])
    assert cut.text == answer.text[: answer.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert "".join(gen.stream(QUESTION, max_tokens=16, stop=[stop])) == cut.text


def test_leaving_a_stream_early_stops_generation(gen):
    model = gen._load()[0]
    forwards = []
    hook = model.register_forward_hook(lambda *args: forwards.append(1))
    try:
        deltas = gen.stream("Write a very long story about a dragon.", max_tokens=400)
        assert next(deltas)
        deltas.close()
        gen.generate("Hi", max_tokens=1)  # waits for the lock the cancelled generation held
    finally:
        hook.remove()
    assert len(forwards) < 100  # the cancelled stream stopped: 400 tokens need 400 forwards


def test_max_tokens_bounds_the_completion(gen):
    out = gen.generate("Write a long story about a dragon.", max_tokens=4)
    assert out.completion_tokens == 4
    assert out.finish_reason == "length"


def test_sampling_produces_text(gen):
    out = gen.generate("Say something about cats.", max_tokens=8, temperature=0.9)
    assert out.text.strip()
    assert out.completion_tokens <= 8


def test_concurrent_calls_are_serialized_and_deterministic(gen, answer):
    with ThreadPoolExecutor(3) as pool:
        texts = list(pool.map(lambda _: gen.generate(QUESTION, max_tokens=16).text, range(3)))
    assert texts == [answer.text] * 3


async def test_async_twins(gen, answer):
    out, deltas = await asyncio.gather(
        gen.agenerate(QUESTION, max_tokens=16),
        _collect(gen.astream(QUESTION, max_tokens=16)),
    )
    assert out.text == "".join(deltas) == answer.text


async def _collect(deltas) -> list[str]:
    return [d async for d in deltas]


def test_prompt_longer_than_the_context_is_rejected(gen):
    with pytest.raises(InvalidInputError, match="compress the context"):
        gen.generate("word " * 9000, max_tokens=4)


def test_served_over_openai_compatible_http(served, answer):
    models = httpx.get(f"{served}/models").json()
    assert models["data"][0]["id"] == "smollm2-135m"
    with OpenAICompatibleGenerator(served, "smollm2-135m", max_retries=0, timeout=60) as remote:
        out = remote.generate(QUESTION, max_tokens=16)
        streamed = "".join(remote.stream(QUESTION, max_tokens=16))
    assert out.text == streamed == answer.text
    assert (out.prompt_tokens, out.completion_tokens) == (
        answer.prompt_tokens,
        answer.completion_tokens,
    )
    assert out.finish_reason == answer.finish_reason
