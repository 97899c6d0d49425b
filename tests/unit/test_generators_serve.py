"""serve_openai's HTTP plumbing, with a deterministic fake generator behind it.

The real model behind the same server is exercised in
``tests/integration/test_generators_local.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from ragzip.errors import GenerationError
from ragzip.generators import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    OpenAICompatibleGenerator,
    make_server,
    running_server,
)


class Scripted(BaseGenerator):
    """Echoes the last message word by word; ``fail`` in the prompt makes it fail."""

    name = "scripted"
    model = "fake-model"

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.requests: list[GenerationRequest] = []

    def _words(self, request: GenerationRequest) -> list[str]:
        words = request.messages[-1]["content"].split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)][: request.max_tokens]

    def _generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if "fail" in request.messages[-1]["content"]:
            raise GenerationError("backend exploded")
        words = self._words(request)
        reason = "length" if len(words) == request.max_tokens else "stop"
        return Generation("".join(words), self.model, 5, len(words), reason, 0.0)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        self.requests.append(request)
        try:
            for word in self._words(request):
                if word.strip() == "fail":
                    raise GenerationError("backend exploded mid-stream")
                if word.strip() == "slow":
                    time.sleep(0.05)
                yield word
        finally:
            self.closed.set()


@pytest.fixture(scope="module")
def backend() -> Scripted:
    return Scripted()


@pytest.fixture(scope="module")
def base_url(backend: Scripted) -> Iterator[str]:
    with running_server(backend) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[OpenAICompatibleGenerator]:
    with OpenAICompatibleGenerator(base_url, "fake-model", max_retries=0, timeout=5) as gen:
        yield gen


def test_make_server_binds_a_free_port_and_reports_its_url(backend):
    server, url = make_server(backend)
    try:
        assert url == f"http://127.0.0.1:{server.server_address[1]}/v1"
        assert server.server_address[1] > 0
    finally:
        server.server_close()


def test_models_lists_the_served_model(base_url):
    data = httpx.get(f"{base_url}/models").json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["fake-model"]


def test_chat_completion_round_trip(client, backend):
    out = client.generate(
        [{"role": "system", "content": "ignored"}, {"role": "user", "content": "a b c d"}],
        max_tokens=3,
        temperature=0.5,
        stop=["zz"],
    )
    assert out.text == "a b c"
    assert (out.model, out.prompt_tokens, out.completion_tokens) == ("fake-model", 5, 3)
    assert out.finish_reason == "length"
    request = backend.requests[-1]
    assert (request.max_tokens, request.temperature, request.stop) == (3, 0.5, ("zz",))
    assert request.messages[0] == {"role": "system", "content": "ignored"}


def test_streaming_round_trip_uses_chunked_sse(client, base_url):
    assert list(client.stream("one two three")) == ["one", " two", " three"]
    body = {"model": "m", "messages": [{"role": "user", "content": "x y"}], "stream": True}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["transfer-encoding"] == "chunked"
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert '"role": "assistant"' in lines[0] and '"finish_reason": "stop"' in lines[-2]


def test_keep_alive_serves_several_requests_on_one_connection(base_url):
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client() as http:
        answers = [http.post(f"{base_url}/chat/completions", json=body) for _ in range(3)]
        streamed = http.post(f"{base_url}/chat/completions", json={**body, "stream": True})
        after = http.post(f"{base_url}/chat/completions", json=body)
    assert all(a.json()["choices"][0]["message"]["content"] == "hi" for a in answers)
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert after.json()["usage"]["total_tokens"] == 6


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"model": "m"}', 400, "'messages' is required"),
        (b'{"messages": []}', 400, "messages is empty"),
        (b'{"messages": "hi"}', 400, "'messages' must be a list"),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}',
            400,
            "max_tokens must be >= 1",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
            400,
            "'stream' must be",
        ),
        (b'{"messages": [{"role": "user", "content": "hi"}], "n": 2}', 400, "n=1"),
        (b'{"messages": [{"role": "user", "content": "please fail"}]}', 502, "backend exploded"),
    ],
)
def test_errors_are_openai_shaped(base_url, body, status, message):
    r = httpx.post(
        f"{base_url}/chat/completions", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status
    assert message in r.json()["error"]["message"]


def test_unknown_routes_are_404(base_url):
    assert httpx.get(f"{base_url}/nothing").status_code == 404
    assert httpx.post(f"{base_url}/embeddings", json={}).status_code == 404


def test_completions_need_prompt_embeds_and_a_generator_that_reads_them(base_url):
    response = httpx.post(f"{base_url}/completions", json={"prompt": "hi"})
    assert response.status_code == 400
    assert "prompt_embeds" in response.json()["error"]["message"]


def test_backend_failure_reaches_the_client_as_generation_error(client):
    with pytest.raises(GenerationError, match="HTTP 502: generation failed: backend exploded"):
        client.generate("please fail")


def test_mid_stream_failure_is_reported_in_band(client):
    deltas = client.stream("ok then fail")
    assert next(deltas) == "ok"
    assert next(deltas) == " then"
    with pytest.raises(GenerationError, match="backend exploded mid-stream"):
        next(deltas)


def test_client_leaving_a_stream_closes_the_backend_stream():
    backend = Scripted()
    with running_server(backend) as url:
        body = {"messages": [{"role": "user", "content": " ".join(["slow"] * 400)}],
                "max_tokens": 400, "stream": True}  # fmt: skip
        with httpx.stream("POST", f"{url}/chat/completions", json=body) as r:
            next(r.iter_lines())
        assert backend.closed.wait(5)  # the server saw the broken pipe and closed the stream


async def test_async_client_against_the_server(base_url):
    async with OpenAICompatibleGenerator(base_url, "fake-model", max_retries=0) as gen:
        out = await gen.agenerate("async hello")
        deltas = [d async for d in gen.astream("async hello")]
    assert out.text == "".join(deltas) == "async hello"
