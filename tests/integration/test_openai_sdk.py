"""The official ``openai`` SDK against ``ragzip serve`` on loopback.

The front server is the compressing proxy (with an API key); its upstream is a second sidecar
serving SmolLM2-135M as an OpenAI-compatible API. The SDK talks to the front.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ragzip.adapters.rest import ServerSettings, create_app
from ragzip.generators.base import BaseGenerator, Generation, GenerationRequest
from ragzip.testing.fixtures import DOCUMENTS

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.integration

KEY = "front-key"
DOCS = [d.text for d in DOCUMENTS]
QUESTION = [{"role": "user", "content": "Who discovered penicillin?"}]
SMOLLM = {"type": "transformers", "params": {"model": "smollm2-135m", "device": "cpu"}}


@pytest.fixture(scope="module")
def front(serve_app: Callable[..., Any]) -> Iterator[str]:
    upstream = create_app(ServerSettings(generator=SMOLLM, serve_local_generator=True))
    with serve_app(upstream) as upstream_url:
        settings = ServerSettings(
            compressor="extractive", upstream_url=f"{upstream_url}/v1", api_key=KEY
        )
        with serve_app(create_app(settings)) as url:
            yield f"{url}/v1"


@pytest.fixture
def client(front: str) -> Any:
    return openai.OpenAI(base_url=front, api_key=KEY, max_retries=0, timeout=300)


def test_chat_completion_with_compressed_context(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m",
        messages=QUESTION,
        max_tokens=12,
        temperature=0,
        extra_body={"ragzip": {"documents": DOCS, "budget": 4}},
    )
    before = int(raw.headers["x-ragzip-tokens-before"])
    after = int(raw.headers["x-ragzip-tokens-after"])
    assert 0 < after < before
    completion = raw.parse()
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 12


def test_stream_with_usage_and_length_finish(client: Any) -> None:
    stream = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_tokens=5,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ragzip": {"documents": DOCS}},
    )
    chunks = list(stream)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"  # cut by max_tokens, not ended by the model
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert chunks[-1].usage.prompt_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()


def test_models_list(client: Any) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["smollm2-135m"]


def test_errors_map_to_the_sdk_exception_classes(client: Any, front: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="smollm2-135m",
            messages=QUESTION,
            extra_body={"ragzip": {"documents": DOCS, "inject": "assistant"}},
        )
    assert bad.value.body["type"] == "invalid_request_error"
    assert bad.value.body["param"] == "ragzip"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="smollm2-135m",
            messages=QUESTION,
            extra_body={"ragzip": {"documents": DOCS, "compressor": {"type": "abstractive",
                        "params": {"cache_path": "/tmp/x"}}}},
        )  # fmt: skip
    wrong = openai.OpenAI(base_url=front, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="smollm2-135m", messages=QUESTION)
    with pytest.raises(openai.APIStatusError) as big:
        client.chat.completions.create(
            model="smollm2-135m",
            messages=QUESTION,
            extra_body={"ragzip": {"documents": ["a"] * 5000}},
        )
    assert big.value.status_code == 413


class GatedGenerator(BaseGenerator):
    """Answers "ok" once its gate opens: holds a request in flight for as long as a test needs."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.model = "gated"

    def _generate(self, request: GenerationRequest) -> Generation:
        self.gate.wait(60)
        return Generation("ok", "gated", 1, 1, "stop", 0.0)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        self.gate.wait(60)
        yield "ok"


def test_overload_is_a_rate_limit_error(serve_app: Callable[..., Any]) -> None:
    generator = GatedGenerator()
    settings = ServerSettings(
        compressor="truncate",
        serve_local_generator=True,
        warm_up=False,
        max_concurrency=1,
        max_queue=0,
    )
    app = create_app(settings, generator=generator)
    with serve_app(app) as url, ThreadPoolExecutor(1) as pool:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
        first = pool.submit(sdk.chat.completions.create, model="gated", messages=QUESTION)
        try:
            while app.state.ragzip.limiter.busy == 0:
                threading.Event().wait(0.01)
            with pytest.raises(openai.RateLimitError):
                sdk.chat.completions.create(model="gated", messages=QUESTION)
        finally:
            generator.gate.set()
        assert first.result().choices[0].message.content == "ok"
