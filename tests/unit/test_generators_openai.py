"""OpenAICompatibleGenerator against a real loopback HTTP server that plays a script.

Each test queues the answers the server gives, one per request, and then checks what the
client did with them and what it sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ragzip.errors import ConfigError, GenerationError, InvalidInputError
from ragzip.generators import OpenAICompatibleGenerator, generators
from ragzip.generators.openai_compat import SSEDecoder, iter_sse_data
from ragzip.generators.retry import retry_after


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    sse: list[str] | None = None  # raw SSE lines to send instead of a JSON body


def completion(text: str, finish: str = "stop", model: str = "served-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def chunk(content: str | None = None, role: str | None = None) -> str:
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    event = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    return f"data: {json.dumps(event)}"


class ScriptedServer:
    """A stdlib HTTP server that answers requests from a queue of :class:`Reply`."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        script, requests = self.script, self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(raw) if raw else None,
                    }
                )
                reply = script.popleft() if script else Reply(500, {"error": "script is empty"})
                try:
                    time.sleep(reply.delay)
                    if reply.sse is not None:
                        self.send_response(reply.status)
                        self.send_header("Content-Type", "text/event-stream")
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for line in reply.sse:
                            self.wfile.write((line + "\n").encode())
                            self.wfile.flush()
                        self.close_connection = True
                        return
                    data = (
                        reply.body.encode()
                        if isinstance(reply.body, str)
                        else json.dumps(reply.body).encode()
                    )
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def play(self, *replies: Reply) -> None:
        self.script.clear()
        self.requests.clear()
        self.script.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture
def gen(server: ScriptedServer) -> Iterator[OpenAICompatibleGenerator]:
    g = OpenAICompatibleGenerator(
        server.base_url, "test-model", api_key="sk-test", timeout=2.0, max_retries=2, backoff=0.01
    )
    yield g
    g.close()


# -- non-streaming -----------------------------------------------------------------------------
def test_generate_parses_the_completion_and_sends_an_openai_request(server, gen):
    server.play(Reply(200, completion("Paris.")))
    out = gen.generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"}],
        max_tokens=16,
        temperature=0.2,
    )
    assert out.text == "Paris."
    assert out.model == "served-model"
    assert (out.prompt_tokens, out.completion_tokens, out.finish_reason) == (11, 3, "stop")
    assert out.seconds > 0
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital?"},
        ],
        "max_tokens": 16,
        "temperature": 0.2,
        "stream": False,
    }


def test_a_plain_string_is_one_user_message(server, gen):
    server.play(Reply(200, completion("hi")))
    gen.generate("hello")
    assert server.requests[0]["body"]["messages"] == [{"role": "user", "content": "hello"}]


def test_500_then_200_is_retried(server, gen):
    server.play(Reply(500, {"error": {"message": "overloaded"}}), Reply(200, completion("ok")))
    assert gen.generate("q").text == "ok"
    assert len(server.requests) == 2


def test_400_raises_with_the_server_message_and_is_not_retried(server, gen):
    server.play(
        Reply(400, {"error": {"message": "max_tokens is too large: 99999", "type": "invalid"}}),
        Reply(200, completion("never sent")),
    )
    with pytest.raises(GenerationError, match="HTTP 400: max_tokens is too large: 99999"):
        gen.generate("q")
    assert len(server.requests) == 1


def test_non_json_error_body_is_quoted(server, gen):
    server.play(Reply(404, "no such route"))
    with pytest.raises(GenerationError, match="HTTP 404: no such route"):
        gen.generate("q")


def test_retries_exhausted_raise_with_the_last_error(server, gen):
    server.play(*[Reply(503, {"error": {"message": "warming up"}})] * 3)
    with pytest.raises(GenerationError, match=r"after 3 attempts: HTTP 503: warming up"):
        gen.generate("q")
    assert len(server.requests) == 3


def test_slow_response_times_out_into_generation_error(server):
    g = OpenAICompatibleGenerator(server.base_url, "m", timeout=0.2, max_retries=1, backoff=0)
    server.play(
        Reply(200, completion("late"), delay=1.0), Reply(200, completion("late"), delay=1.0)
    )
    start = time.perf_counter()
    with pytest.raises(GenerationError, match=r"after 2 attempts: timed out after 0.2 s"):
        g.generate("q")
    assert time.perf_counter() - start < 0.9  # two 0.2 s timeouts, not the server's 2 s
    assert len(server.requests) == 2
    g.close()


def test_429_honours_retry_after(server, gen):
    server.play(
        Reply(429, {"error": {"message": "rate limited"}}, headers={"Retry-After": "0.4"}),
        Reply(200, completion("after the wait")),
    )
    start = time.perf_counter()
    assert gen.generate("q").text == "after the wait"
    assert time.perf_counter() - start >= 0.4  # backoff alone would be 0.01 s
    assert len(server.requests) == 2


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after("2") == 2.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert 8 < (retry_after(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10
    assert retry_after(formatdate(time.time() - 10, usegmt=True)) == 0.0


def test_connection_refused_raises_after_retries():
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0)
    with pytest.raises(GenerationError, match=r"after 2 attempts: ConnectError"):
        g.generate("q")


def test_stop_strings_are_sent_and_applied_client_side(server, gen):
    server.play(Reply(200, completion("one, two\n\nthree", finish="length")))
    out = gen.generate("count", stop=["\n\n"])
    assert out.text == "one, two"
    assert out.finish_reason == "stop"
    assert server.requests[0]["body"]["stop"] == ["\n\n"]


def test_extra_body_is_merged_and_api_key_comes_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    g = OpenAICompatibleGenerator(server.base_url, "m", extra_body={"seed": 7, "top_p": 0.9})
    server.play(Reply(200, completion("x")))
    g.generate("q")
    request = server.requests[0]
    assert request["headers"]["Authorization"] == "Bearer sk-env"
    assert request["body"]["seed"] == 7 and request["body"]["top_p"] == 0.9
    g.close()


def test_no_authorization_header_without_a_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAICompatibleGenerator(server.base_url, "m") as g:
        server.play(Reply(200, completion("x")))
        g.generate("q")
    assert "Authorization" not in server.requests[0]["headers"]


def test_a_200_without_choices_is_a_generation_error(server, gen):
    server.play(Reply(200, {"object": "list", "data": []}))
    with pytest.raises(GenerationError, match="no chat completion"):
        gen.generate("q")


def test_invalid_arguments_fail_before_any_request(server, gen):
    server.play()
    for kwargs in ({"max_tokens": 0}, {"temperature": -1.0}, {"stop": [""]}):
        with pytest.raises(InvalidInputError):
            gen.generate("q", **kwargs)
    with pytest.raises(InvalidInputError):
        gen.generate([])
    with pytest.raises(InvalidInputError):
        gen.stream([{"role": "user"}])  # checked at call time, not on next()
    assert server.requests == []


# -- streaming ---------------------------------------------------------------------------------
SSE_LINES = [
    ": keep-alive comment",
    chunk(role="assistant", content=""),
    "",
    chunk("The capital"),
    "",
    chunk(" of France"),
    "",
    chunk(" is Paris."),
    "",
    'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}',
    "",
    "data: [DONE]",
    "",
]


def test_stream_yields_content_deltas_until_done(server, gen):
    server.play(Reply(sse=SSE_LINES))
    assert list(gen.stream("q")) == ["The capital", " of France", " is Paris."]
    assert server.requests[0]["body"]["stream"] is True


def test_stream_retries_a_5xx_before_streaming(server, gen):
    server.play(Reply(502, {"error": "bad gateway"}), Reply(sse=SSE_LINES))
    assert "".join(gen.stream("q")) == "The capital of France is Paris."
    assert len(server.requests) == 2


def test_stream_applies_stop_strings_across_deltas(server, gen):
    server.play(Reply(sse=SSE_LINES))
    assert "".join(gen.stream("q", stop=["of Fr"])) == "The capital "


def test_stream_error_event_raises(server, gen):
    lines = [chunk("partial"), "", 'data: {"error": {"message": "model crashed"}}', ""]
    server.play(Reply(sse=lines))
    deltas = gen.stream("q")
    assert next(deltas) == "partial"
    with pytest.raises(GenerationError, match="model crashed"):
        next(deltas)


def test_stream_4xx_raises_with_the_server_message(server, gen):
    server.play(Reply(401, {"error": {"message": "invalid api key"}}))
    with pytest.raises(GenerationError, match="HTTP 401: invalid api key"):
        list(gen.stream("q"))


def test_sse_decoder_joins_multiline_data_and_skips_other_fields():
    lines = ["event: message", "id: 3", "data: line one", "data: line two", "", "data:x"]
    assert list(iter_sse_data(lines)) == ["line one\nline two", "x"]
    decoder = SSEDecoder()
    assert decoder.feed("data: {}\r") is None
    assert decoder.feed("") == "{}"
    assert decoder.flush() is None


# -- async -------------------------------------------------------------------------------------
async def test_agenerate_retries_and_parses(server, gen):
    server.play(Reply(500, {"error": "boom"}), Reply(200, completion("async ok")))
    out = await gen.agenerate("q", max_tokens=8)
    assert out.text == "async ok" and out.prompt_tokens == 11
    assert len(server.requests) == 2
    await gen.aclose()


async def test_astream_matches_stream(server, gen):
    server.play(Reply(sse=SSE_LINES))
    deltas = [d async for d in gen.astream("q")]
    assert deltas == ["The capital", " of France", " is Paris."]
    server.play(Reply(sse=SSE_LINES))
    assert "".join([d async for d in gen.astream("q", stop=[" is"])]) == "The capital of France"
    await gen.aclose()


async def test_agenerate_timeout_raises(server):
    async with OpenAICompatibleGenerator(server.base_url, "m", timeout=0.2, max_retries=0) as g:
        server.play(Reply(200, completion("late"), delay=1.0))
        with pytest.raises(GenerationError, match="after 1 attempt: timed out"):
            await g.agenerate("q")


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "localhost:8000/v1"},
        {"model": ""},
        {"timeout": 0},
        {"max_retries": -1},
        {"backoff": -0.1},
    ],
)
def test_bad_config_raises_config_error(kwargs):
    args = {"base_url": "http://localhost:8000/v1", "model": "m", **kwargs}
    with pytest.raises(ConfigError):
        OpenAICompatibleGenerator(**args)


def test_registry_builds_and_round_trips_without_the_key():
    spec = {
        "type": "openai",
        "params": {"base_url": "http://localhost:8000/v1/", "model": "m", "max_retries": 5},
    }
    g = generators.build(spec)
    assert isinstance(g, OpenAICompatibleGenerator)
    assert g.url == "http://localhost:8000/v1/chat/completions"
    again = generators.build(g.to_dict())
    assert again.to_dict() == g.to_dict()
    assert "api_key" not in g.to_dict()["params"]
    with pytest.raises(ConfigError, match="timeout"):
        generators.build({"type": "openai", "params": {"base_url": "http://x", "model": "m",
                                                       "timeout": "fast"}})  # fmt: skip
