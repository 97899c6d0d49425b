"""The compressing proxy, served by uvicorn on loopback, in front of real upstreams.

Two upstreams: SmolLM2-135M behind ragzip's stdlib OpenAI-compatible server, and a scripted
stdlib server that answers with the exact bytes it received, so the tests see what the proxy
forwarded. Compression runs on the packaged MiniLM (ExtractiveCompressor).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI

from ragzip.adapters.proxy import SYSTEM_CONTEXT, ChatProxy, create_proxy_router
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.errors import ConfigError
from ragzip.generators import TransformersGenerator, running_server
from ragzip.testing.fixtures import DOCUMENTS, QUESTIONS

pytestmark = pytest.mark.integration

QUESTION = QUESTIONS[0]  # "Who discovered penicillin?" -> "Alexander Fleming"
DOCS = [{"text": d.text, "id": d.id, "title": d.title} for d in DOCUMENTS]
ALL_TEXT = " ".join(d.text for d in DOCUMENTS)
UPSTREAM_400 = b'{"error": {"message": "model status-400 does not exist", "type": "invalid_request_error", "code": "model_not_found"}}'  # noqa: E501
STREAM_GATE = threading.Event()  # the scripted upstream's second event waits for it


# -- a scripted upstream that echoes what it received -------------------------------------------
class EchoUpstream(BaseHTTPRequestHandler):
    """Answers ``choices[0].message.content`` = the request body it received, verbatim.

    ``model`` scripts failures: ``status-400``, ``status-503``, ``slow`` (answers after 3 s).
    A ``stream: true`` request gets three events; the second waits for ``STREAM_GATE``.
    """

    protocol_version = "HTTP/1.1"
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        model = body.get("model") if isinstance(body, dict) else None
        if model == "status-400":
            self._send(400, UPSTREAM_400)
        elif model == "status-503":
            self._send(503, b'{"error": {"message": "overloaded, try later"}}')
        elif model == "slow":
            time.sleep(3)
            self._send(200, b"{}")
        elif isinstance(body, dict) and body.get("stream"):
            self._stream(raw)
        else:
            answer = {
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": raw.decode()}}
                ],
            }
            self._send(200, json.dumps(answer).encode())

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, raw: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event({"choices": [{"index": 0, "delta": {"content": "first"}}]})
        gate_opened = STREAM_GATE.wait(10)
        self._event({"choices": [{"index": 0, "delta": {"content": raw.decode()}}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self._event({"gate_opened": gate_opened})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _event(self, payload: Any) -> None:
        self._chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def echo_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoUpstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def settings(url: str, **kwargs: Any) -> SimpleNamespace:
    return SimpleNamespace(
        upstream_url=url, request_timeout_s=kwargs.pop("timeout", 30.0), **kwargs
    )


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extractive() -> ExtractiveCompressor:
    compressor = ExtractiveCompressor()
    compressor.warm_up()
    return compressor


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = TransformersGenerator("smollm2-135m", device="cpu")
    generator.warm_up()
    with running_server(generator) as url:
        yield url
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def proxy(extractive: ExtractiveCompressor, llm_url: str, serve_app: Any) -> Iterator[str]:
    """One app, four proxies: /echo, /keyed (API key, settings spec), /slow, /down, /llm."""
    with contextlib.ExitStack() as stack:
        echo = stack.enter_context(echo_upstream())
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        closed.close()  # nothing listens there any more
        app = FastAPI()
        app.include_router(
            create_proxy_router(settings(echo), compressor=extractive), prefix="/echo"
        )
        keyed = settings(echo, upstream_api_key="sk-upstream", compressor={"type": "truncate"})
        app.include_router(create_proxy_router(keyed), prefix="/keyed")
        app.include_router(create_proxy_router(settings(echo, timeout=1.0)), prefix="/slow")
        app.include_router(create_proxy_router(settings(down)), prefix="/down")
        app.include_router(
            create_proxy_router(settings(llm_url), compressor=extractive), prefix="/llm"
        )
        yield stack.enter_context(serve_app(app))


@pytest.fixture
def client(proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy, timeout=120) as c:
        yield c


def chat(**fields: Any) -> dict[str, Any]:
    return {
        "model": "echo",
        "temperature": 0,
        "messages": [{"role": "user", "content": QUESTION.question}],
        **fields,
    }


def forwarded(response: httpx.Response) -> dict[str, Any]:
    """The request body the echo upstream received."""
    assert response.status_code == 200, response.text
    return json.loads(response.json()["choices"][0]["message"]["content"])


def savings(response: httpx.Response) -> tuple[int, int, float, int]:
    h = response.headers
    return (
        int(h["x-ragzip-tokens-before"]),
        int(h["x-ragzip-tokens-after"]),
        float(h["x-ragzip-ratio"]),
        int(h["x-ragzip-tokens-saved"]),
    )


# -- compression ---------------------------------------------------------------------------------
def test_extension_field_is_compressed_into_a_system_message(client):
    r = client.post("/echo/v1/chat/completions", json=chat(ragzip={"documents": DOCS, "budget": 4}))
    body = forwarded(r)
    assert "ragzip" not in body
    assert (body["model"], body["temperature"]) == ("echo", 0)
    system, user = body["messages"]
    assert user == {"role": "user", "content": QUESTION.question}
    assert system["role"] == "system"
    assert system["content"].startswith(SYSTEM_CONTEXT.split("{context}")[0] + "[1] ")
    assert QUESTION.answer in system["content"]
    assert len(system["content"]) < len(ALL_TEXT) / 2
    before, after, ratio, saved = savings(r)
    assert 0 < after <= before / 4
    assert saved == before - after
    assert ratio == pytest.approx(before / after, abs=1e-3)


@pytest.mark.parametrize("inject", ["system", "user"])
def test_context_joins_an_existing_system_message_or_the_user_message(client, inject):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! Ask me anything."},
        {"role": "user", "content": QUESTION.question},
    ]
    options = {"documents": DOCS, "budget": {"tokens": 60}, "inject": inject}
    r = client.post("/echo/v1/chat/completions", json=chat(messages=messages, ragzip=options))
    out = forwarded(r)["messages"]
    assert len(out) == 4 and out[1:3] == messages[1:3]
    if inject == "system":
        assert out[0]["content"].startswith("Be brief.\n\nContext:\n[1] ")
        assert QUESTION.answer in out[0]["content"]
        assert out[3] == messages[3]
    else:
        assert out[0] == messages[0]
        assert out[3]["content"].startswith("Context:\n[1] ")
        assert out[3]["content"].endswith("\n\n" + QUESTION.question)
        assert QUESTION.answer in out[3]["content"]
    assert savings(r)[1] <= 60


def test_marked_section_is_compressed_in_place(client):
    section = "\n---\n".join(d.text for d in DOCUMENTS)
    content = f"{QUESTION.question}\n\n<ragzip:context>\n{section}\n</ragzip:context>\n\nBe brief."
    r = client.post(
        "/echo/v1/chat/completions",
        json=chat(messages=[{"role": "user", "content": content}], ragzip={"budget": {"ratio": 5}}),
    )
    body = forwarded(r)
    assert "ragzip" not in body
    text = body["messages"][0]["content"]
    assert "ragzip:context" not in text and "---" not in text
    assert text.startswith(QUESTION.question + "\n\n")
    assert text.endswith("\n\nBe brief.")
    assert QUESTION.answer in text
    before, after, _, saved = savings(r)
    assert 0 < after <= before / 5 and saved == before - after
    assert len(text) < len(content) / 3


def test_doc_tags_in_text_parts_with_the_default_budget(client):
    docs = "".join(f'<doc id="{d.id}">{d.text}</doc>\n' for d in DOCUMENTS)
    parts = [
        {"type": "text", "text": f"Sources:\n<ragzip:context>\n{docs}</ragzip:context>"},
        {"type": "text", "text": QUESTION.question},
    ]
    r = client.post(
        "/echo/v1/chat/completions", json=chat(messages=[{"role": "user", "content": parts}])
    )
    out = forwarded(r)["messages"][0]["content"]
    assert out[1] == parts[1]
    assert out[0]["text"].startswith("Sources:\n")
    assert "<doc" not in out[0]["text"] and "ragzip:context" not in out[0]["text"]
    assert QUESTION.answer in out[0]["text"]
    before, after, _, _ = savings(r)
    assert 0 < after <= before / 4  # the proxy's default budget is ratio 4


def test_request_may_name_another_compressor(client):
    options = {"documents": DOCS, "budget": {"tokens": 20}, "compressor": "truncate"}
    r = client.post("/echo/v1/chat/completions", json=chat(ragzip=options))
    system = forwarded(r)["messages"][0]["content"]
    first_words = " ".join(DOCUMENTS[0].text.split()[:5])
    assert "[1] " + first_words in system  # truncation keeps the start, not the answer
    assert savings(r)[1] <= 20


def test_unmarked_request_is_forwarded_byte_for_byte(client):
    raw = b'{"model": "echo",  "messages": [{"role": "user", "content": "Hi \\u00e9"}], "n": 1}'
    r = client.post(
        "/echo/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"].encode() == raw
    assert savings(r) == (0, 0, 1.0, 0)


def test_client_credentials_never_go_upstream_only_the_upstream_key(client):
    auth = {"Authorization": "Bearer from-client"}
    client.post("/echo/v1/chat/completions", json=chat(), headers=auth)
    sent = {k.lower() for k in EchoUpstream.received[-1]["headers"]}
    assert "authorization" not in sent
    r = client.post(
        "/keyed/v1/chat/completions",
        json=chat(ragzip={"documents": DOCS, "budget": {"tokens": 30}}),
        headers=auth,
    )
    assert EchoUpstream.received[-1]["headers"]["authorization"] == "Bearer sk-upstream"
    assert EchoUpstream.received[-1]["path"] == "/v1/chat/completions"
    before, after, _, _ = savings(r)  # the settings' spec (truncate) did the work
    assert after <= 30 < before


# -- streaming -----------------------------------------------------------------------------------
def test_stream_is_relayed_as_it_arrives(client):
    STREAM_GATE.clear()
    payloads = []
    body = chat(stream=True, ragzip={"documents": DOCS})
    with client.stream("POST", "/echo/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        before, after, _, saved = savings(r)
        for line in r.iter_lines():
            if line.startswith("data: "):
                payloads.append(line[6:])
                STREAM_GATE.set()  # the first event arrived while the upstream still waits
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    assert events[-1] == {"gate_opened": True}
    assert events[0]["choices"][0]["delta"]["content"] == "first"
    sent = json.loads(events[1]["choices"][0]["delta"]["content"])
    assert sent["stream"] is True and "ragzip" not in sent
    assert QUESTION.answer in sent["messages"][0]["content"]
    assert 0 < after < before and saved == before - after


# -- errors --------------------------------------------------------------------------------------
def test_upstream_4xx_is_relayed(client):
    r = client.post("/echo/v1/chat/completions", json=chat(model="status-400"))
    assert r.status_code == 400
    assert r.content == UPSTREAM_400


def test_upstream_5xx_becomes_502(client):
    r = client.post("/echo/v1/chat/completions", json=chat(model="status-503"))
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "upstream_error"
    assert "503" in error["message"] and "overloaded, try later" in error["message"]


def test_upstream_down_is_502(client):
    r = client.post("/down/v1/chat/completions", json=chat())
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "upstream_error"
    assert "cannot reach upstream" in error["message"]
    assert savings(r) == (0, 0, 1.0, 0)


def test_upstream_timeout_is_504(client):
    r = client.post("/slow/v1/chat/completions", json=chat(model="slow"))
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_error"
    assert "did not answer within" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ("documents", "'ragzip' must be an object"),
        ({"documents": "one string"}, "ragzip.documents"),
        ({"documents": [{"title": "no text"}]}, "no 'text' field"),
        ({"documents": DOCS, "budget": {"ratio": 0.5}}, "ratio"),
        ({"documents": DOCS, "budget": "half"}, "ragzip.budget"),
        ({"documents": DOCS, "inject": "assistant"}, "ragzip.inject"),
        ({"documents": DOCS, "extra": 1}, "ragzip.extra"),
        ({"documents": DOCS, "compressor": "nope"}, "compressor 'nope' is not offered"),
        ({"documents": DOCS, "compressor": {"type": "truncate", "params": {"x": 1}}}, "'x'"),
    ],
)
def test_invalid_ragzip_field_is_400_and_nothing_is_forwarded(client, options, names):
    sent = len(EchoUpstream.received)
    r = client.post("/echo/v1/chat/completions", json=chat(ragzip=options))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert names in error["message"]
    assert len(EchoUpstream.received) == sent


def test_unbalanced_section_tag_is_400(client):
    content = "<ragzip:context>Paris is in France. " + QUESTION.question
    r = client.post(
        "/echo/v1/chat/completions", json=chat(messages=[{"role": "user", "content": content}])
    )
    assert r.status_code == 400
    assert "</ragzip:context>" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"upstream_url": None}, "upstream_url"),
        ({"upstream_url": "localhost:8000"}, "upstream_url"),
        ({"upstream_url": "http://127.0.0.1:9/v1", "compressor": "nope"}, "nope"),
        ({"upstream_url": "http://127.0.0.1:9/v1", "budget": {"ratio": 0}}, "budget"),
    ],
)
def test_bad_settings_fail_when_the_router_is_made(fields, match):
    with pytest.raises(ConfigError, match=match):
        create_proxy_router(SimpleNamespace(**fields))


# -- a real model upstream -----------------------------------------------------------------------
def test_real_model_answers_from_compressed_context(client):
    body = chat(model="smollm2-135m", max_tokens=16, ragzip={"documents": DOCS, "budget": 4})
    r = client.post("/llm/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["object"] == "chat.completion"
    assert "Fleming" in answer["choices"][0]["message"]["content"]
    assert 0 < answer["usage"]["completion_tokens"] <= 16
    before, after, _, saved = savings(r)
    assert 0 < after <= before / 4 and saved > 0


def test_real_model_stream_passes_through(client):
    body = chat(model="smollm2-135m", max_tokens=16, stream=True, ragzip={"documents": DOCS})
    with client.stream("POST", "/llm/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert int(r.headers["x-ragzip-tokens-saved"]) > 0
        payloads = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Fleming" in text
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")  # 16 tokens may cut it


def test_real_model_400_is_relayed(client):
    r = client.post("/llm/v1/chat/completions", json=chat(model="smollm2-135m", max_tokens=0))
    assert r.status_code == 400
    assert "max_tokens" in r.json()["error"]["message"]


# -- lifecycle -----------------------------------------------------------------------------------
def test_shutdown_closes_the_shared_client(serve_app):
    with echo_upstream() as echo:
        proxy = ChatProxy(settings(echo, compressor="truncate"))
        app = FastAPI()
        app.include_router(proxy.router)
        with serve_app(app) as url:
            r = httpx.post(f"{url}/v1/chat/completions", json=chat(), timeout=30)
            assert r.status_code == 200
            client = proxy.upstream._client  # the lazily created shared client
            assert client is not None and not client.is_closed
        assert client.is_closed and proxy.upstream._client is None
