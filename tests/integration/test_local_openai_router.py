"""A ragzip generator served as an OpenAI-compatible upstream by FastAPI and uvicorn.

SmolLM2-135M behind :func:`create_local_openai_router`, called over loopback HTTP with ragzip's
own OpenAI-compatible client and with raw httpx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ragzip.adapters.local_openai import create_local_openai_router
from ragzip.errors import GenerationError
from ragzip.generators import OpenAICompatibleGenerator, TransformersGenerator

pytestmark = pytest.mark.integration

QUESTION = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def gen() -> Iterator[TransformersGenerator]:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = TransformersGenerator("smollm2-135m", device="cpu")
    generator.warm_up()
    yield generator
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_url(gen: TransformersGenerator, serve_app: Any) -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_local_openai_router(gen))
    with serve_app(app) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def answer(gen: TransformersGenerator):
    return gen.generate(QUESTION, max_tokens=16)


@pytest.fixture
def remote(base_url: str) -> Iterator[OpenAICompatibleGenerator]:
    with OpenAICompatibleGenerator(base_url, "smollm2-135m", max_retries=0, timeout=60) as r:
        yield r


def test_models(base_url):
    models = httpx.get(f"{base_url}/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["smollm2-135m"]


def test_json_completion_matches_the_local_model(remote, answer):
    out = remote.generate(QUESTION, max_tokens=16)
    assert "Paris" in out.text
    assert out.text == answer.text
    assert (out.prompt_tokens, out.completion_tokens) == (
        answer.prompt_tokens,
        answer.completion_tokens,
    )
    assert out.finish_reason == answer.finish_reason
    assert out.model == "smollm2-135m"


def test_stream_matches_the_local_model(remote, answer):
    deltas = list(remote.stream(QUESTION, max_tokens=16))
    assert len(deltas) > 1
    assert "".join(deltas) == answer.text


async def test_async_twins(base_url, answer):
    async with OpenAICompatibleGenerator(base_url, "smollm2-135m", max_retries=0) as remote:
        out = await remote.agenerate(QUESTION, max_tokens=16)
        deltas = [d async for d in remote.astream(QUESTION, max_tokens=16)]
    assert out.text == "".join(deltas) == answer.text


def test_stop_strings_are_applied_by_the_server(remote, answer):
    stop = answer.text.split()[2]
    out = remote.generate(QUESTION, max_tokens=16, stop=[stop])
    assert out.text == answer.text[: answer.text.index(stop)]
    assert out.finish_reason == "stop"


def test_raw_sse_is_openai_shaped(base_url, answer):
    body = {"model": "smollm2-135m", "messages": QUESTION, "max_tokens": 16, "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        payloads = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == answer.text


def test_text_parts_are_joined(remote, base_url, answer):
    parts = [{"type": "text", "text": "What is the capital of France?"}]
    body = {"model": "x", "messages": [QUESTION[0], {"role": "user", "content": parts}]}
    r = httpx.post(f"{base_url}/chat/completions", json={**body, "max_tokens": 16}, timeout=60)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == answer.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": QUESTION, "max_tokens": 0}, "max_tokens"),
        ({"messages": "not a list"}, "messages"),
        ({"messages": []}, "messages is empty"),
        ({"messages": QUESTION, "n": 2}, "n=1"),
        ({"messages": QUESTION, "stream": True, "temperature": -1}, "temperature"),
    ],
)
def test_invalid_requests_are_400(base_url, body, message):
    r = httpx.post(f"{base_url}/chat/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert message in r.json()["error"]["message"]


def test_client_sees_400_as_a_generation_error(remote):
    with pytest.raises(GenerationError, match="HTTP 400"):
        remote.generate("word " * 9000, max_tokens=4)  # longer than the model's context
