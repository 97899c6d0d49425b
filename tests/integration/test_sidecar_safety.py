"""What a request cannot make the sidecar do, each a reproduction from a security review.

Every server here is real (uvicorn on loopback); an "attacker" URL is a real loopback server
that records whether anything reached it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from ragzip.adapters.rest import ServerSettings, create_app
from ragzip.adapters.rest.server import header_timeout_protocol
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.types import CompressedDocument

pytestmark = pytest.mark.integration

KEY = "server-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOCS = [
    "The Eiffel Tower was designed by the company of Gustave Eiffel. It opened in 1889.",
    "Paris is the capital of France. It has about two million inhabitants.",
]


class Recorder(BaseHTTPRequestHandler):
    """A loopback server that records every request; stands in for an attacker's URL."""

    seen: ClassVar[list[dict[str, Any]]] = []
    gate: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        self.seen.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
        try:
            model = json.loads(raw).get("model") if raw else None
        except (ValueError, AttributeError):
            model = None
        if model == "gated":
            self.gate.wait(30)
        if model == "fail":
            self._send(503, b'{"error": {"message": "upstream is down"}}')
            return
        answer = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        self._send(200, json.dumps(answer).encode())

    do_GET = do_POST

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        Recorder.gate.set()
        server.shutdown()
        server.server_close()


class CountingCompressor(BaseCompressor):
    """Keeps every document and counts its calls (does retrieval/compression run once?)."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _compress(self, request: Request) -> MethodOutput:
        self.calls += 1
        return MethodOutput([CompressedDocument(d.text, d.id) for d in request.documents])


@pytest.fixture(scope="module")
def counting() -> CountingCompressor:
    return CountingCompressor()


@pytest.fixture(scope="module")
def server(
    serve_app: Callable[..., Any], recorder: str, counting: CountingCompressor
) -> Iterator[str]:
    settings = ServerSettings(
        compressor="truncate",
        api_key=KEY,
        warm_up=False,
        upstream_url=f"http://user:hunter2@{recorder.removeprefix('http://')}/v1",
        max_documents=100,
        max_body_bytes=1_000_000,
        body_timeout_s=1.0,
    )
    app = create_app(settings, compressor_overrides={"counting": counting})
    with serve_app(app, http=header_timeout_protocol(1.0)) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=AUTH, timeout=60) as c:
        yield c


# -- request settings never reach files, URLs or models ------------------------------------------
def test_abstractive_cache_path_and_generator_url_are_refused(
    client: httpx.Client, recorder: str, tmp_path: Path
) -> None:
    target = tmp_path / "x" / "y.jsonl"
    spec = {
        "type": "abstractive",
        "params": {
            "cache_path": str(target),
            "generator": {"type": "openai", "params": {"base_url": f"{recorder}/v1", "model": "m"}},
        },
    }
    seen = len(Recorder.seen)
    for route in ("/v1/compress", "/v1/query"):
        body = {"query": "Who designed it?", "documents": DOCS, "compressor": spec}
        r = client.post(route, json=body)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_config"
        assert "cache_path" in error["message"] and "server's configuration" in error["message"]
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": "Who designed it?"}],
            "ragzip": {"documents": DOCS, "compressor": spec},
        },
    )
    assert r.status_code == 400, r.text
    assert not target.exists() and not target.parent.exists()
    assert len(Recorder.seen) == seen  # nothing reached the "attacker"


@pytest.mark.parametrize("name", ["/etc/passwd", "../../", "~/.ssh", "MINILM", "minilm "])
def test_model_names_in_params_are_refused(client: httpx.Client, name: str) -> None:
    for compressor in ("extractive", "token-prune", "document-rank"):
        spec = {"type": compressor, "params": {"encoder": name}}
        r = client.post("/v1/compress", json={"query": "q", "documents": DOCS, "compressor": spec})
        assert r.status_code == 422, r.text
        assert "encoder" in r.json()["error"]["message"]


def test_allowed_params_still_work(client: httpx.Client) -> None:
    spec = {"type": "extractive", "params": {"context_window": 1, "doc_stage": False}}
    r = client.post(
        "/v1/compress", json={"query": "Who designed it?", "documents": DOCS, "compressor": spec}
    )
    assert r.status_code == 200, r.text
    listed = client.get("/v1/compressors").json()["compressors"]
    extractive = next(c for c in listed if c["type"] == "extractive")
    assert "context_window" in extractive["request_params"]
    assert "encoder" not in extractive["params"] and "encoder" not in extractive["request_params"]


def test_unknown_or_unoffered_compressor_is_422(client: httpx.Client) -> None:
    r = client.post("/v1/compress", json={"documents": DOCS, "compressor": "nope"})
    assert r.status_code == 422
    assert "not offered" in r.json()["error"]["message"]


def test_bad_compressor_option_is_422_not_500(client: httpx.Client) -> None:
    spec = {"type": "code", "params": {"elision": "bogus"}}
    r = client.post("/v1/compress", json={"query": "q", "documents": DOCS, "compressor": spec})
    assert r.status_code == 422, r.text


# -- regular expressions -------------------------------------------------------------------------
def test_keep_patterns_are_literal_by_default(client: httpx.Client) -> None:
    evil = {"ratio": 2, "keep_patterns": ["(a+)+$"]}
    r = client.post(
        "/v1/compress",
        json={
            "query": "x",
            "documents": ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa! x."],
            "budget": evil,
        },
    )
    assert r.status_code == 200, r.text
    assert client.get("/healthz").status_code == 200


def test_regexes_when_enabled_run_with_a_time_limit(serve_app: Callable[..., Any]) -> None:
    settings = ServerSettings(
        compressor="truncate", warm_up=False, allow_regex=True, regex_timeout_s=0.05
    )
    with serve_app(create_app(settings)) as url:
        evil = {"ratio": 2, "keep_patterns": ["(a|aa)+$"]}
        text = "a" * 64 + "! x. Another sentence here."
        body = {"query": "x", "documents": [text], "budget": evil, "compressor": "extractive"}
        r = httpx.post(f"{url}/v1/compress", json=body, timeout=120)
        assert r.status_code == 422, r.text
        assert "simplify the pattern" in r.json()["error"]["message"]
        good = {"ratio": 1, "keep_patterns": [r"\d+"]}
        body = {"query": "x", "documents": ["It opened in 1889."], "budget": good}
        assert httpx.post(f"{url}/v1/compress", json=body, timeout=60).status_code == 200
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


# -- credentials ---------------------------------------------------------------------------------
def test_client_key_is_not_forwarded_and_errors_hide_upstream_credentials(
    client: httpx.Client,
) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200, r.text
    sent = {k.lower(): v for k, v in Recorder.seen[-1]["headers"].items()}
    assert KEY not in sent.get("authorization", "")
    r = client.post(
        "/v1/chat/completions",
        json={"model": "fail", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 502
    assert "hunter2" not in r.text and "user:" not in r.text


def test_unreachable_upstream_error_names_it_without_credentials(
    serve_app: Callable[..., Any],
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    settings = ServerSettings(
        compressor="truncate",
        warm_up=False,
        upstream_url=f"http://user:hunter2@127.0.0.1:{port}/v1",
    )
    with serve_app(create_app(settings)) as url:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 502
    assert f"127.0.0.1:{port}" in r.json()["error"]["message"]
    assert "hunter2" not in r.text and "user" not in r.text


# -- auth before the body, slow clients ----------------------------------------------------------
def _raw(url: str, data: bytes, read: bool = True) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_unauthenticated_upload_is_refused_before_its_body(server: str) -> None:
    head = (
        b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 900000\r\n\r\n"
    )
    answer = _raw(server, head)  # the body never comes: the answer must not wait for it
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"unauthorized" in answer


def test_an_oversized_upload_reads_its_413(server: str) -> None:
    body = b'{"documents": ["' + b"x" * 5_000_000 + b'"]}'
    head = (
        b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer server-key\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    # the server drains the refused body before closing, so the upload is not reset and the
    # client reads the answer
    answer = _raw(server, head + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"max_body_bytes" in answer


def test_slow_headers_are_cut_off(server: str) -> None:
    answer = _raw(server, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\n")  # never finished
    assert answer == b""  # the server closed the connection (recv returned EOF)


def test_slow_body_is_408(server: str) -> None:
    head = (
        b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer server-key\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"docu'
    )
    answer = _raw(server, head)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body_timeout_s" in answer


# -- one request path for every route ------------------------------------------------------------
def test_query_prepares_once(client: httpx.Client, counting: CountingCompressor) -> None:
    before = counting.calls
    r = client.post(
        "/v1/query", json={"query": "Who designed it?", "documents": DOCS, "compressor": "counting"}
    )
    assert r.status_code == 200, r.text
    assert counting.calls == before + 1


def test_proxy_honours_document_limit(client: httpx.Client) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "ragzip": {"documents": ["a"] * 10_000},
    }
    r = client.post("/v1/chat/completions", content=json.dumps(body).encode())
    assert r.status_code == 413
    assert "max_documents" in r.json()["error"]["message"]


def test_proxy_models_route(client: httpx.Client) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200


def test_proxy_concurrency_limit(serve_app: Callable[..., Any], recorder: str) -> None:
    settings = ServerSettings(
        compressor="truncate",
        warm_up=False,
        upstream_url=f"{recorder}/v1",
        max_concurrency=1,
        max_queue=0,
    )
    Recorder.gate.clear()
    gated = {"model": "gated", "messages": [{"role": "user", "content": "q"}]}
    with serve_app(create_app(settings)) as url, ThreadPoolExecutor(12) as pool:
        seen = len(Recorder.seen)
        first = pool.submit(httpx.post, f"{url}/v1/chat/completions", json=gated, timeout=60)
        while len(Recorder.seen) == seen:  # the first request holds the only slot upstream
            threading.Event().wait(0.01)
        rest = [
            pool.submit(httpx.post, f"{url}/v1/chat/completions", json=gated, timeout=60)
            for _ in range(11)
        ]
        statuses = [f.result().status_code for f in rest]
        Recorder.gate.set()
        assert first.result().status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
    assert statuses == [429] * 11
    assert 'route="/v1/chat/completions"' in metrics


# -- malformed input -----------------------------------------------------------------------------
def test_lone_surrogate_in_a_kept_document_is_fine(client: httpx.Client) -> None:
    raw = b'{"query": "q", "documents": ["caf\\ud800 au lait"], "budget": 1}'
    r = client.post("/v1/compress", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert "\ufffd" in r.json()["documents"][0]["text"]


@pytest.mark.parametrize(
    ("route", "status"), [("/v1/compress", 422), ("/v1/chat/completions", 400)]
)
def test_deep_nesting_is_a_4xx(client: httpx.Client, route: str, status: int) -> None:
    raw = b'{"messages": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    r = client.post(route, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert "max_json_depth" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"documents": DOCS, "budget": {"tokens": "5"}},
        {"documents": DOCS, "budget": "2"},
        {"query": 5, "documents": DOCS},
    ],
)
def test_strings_are_not_numbers(client: httpx.Client, body: dict[str, Any]) -> None:
    assert client.post("/v1/compress", json=body).status_code == 422


def test_stream_flag_must_be_a_boolean(client: httpx.Client) -> None:
    r = client.post("/v1/query", json={"query": "q", "documents": DOCS, "stream": 0})
    assert r.status_code == 422


# -- the shared cache ----------------------------------------------------------------------------
def test_rest_routes_use_the_configured_cache(
    serve_app: Callable[..., Any], redis_url: str
) -> None:
    redis = pytest.importorskip("redis")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    settings = ServerSettings(compressor="extractive", warm_up=False, cache=f"memory+{redis_url}")
    with serve_app(create_app(settings)) as url:
        body = {"query": "Who designed the Eiffel Tower?", "documents": DOCS, "budget": 2}
        assert httpx.post(f"{url}/v1/compress", json=body, timeout=120).status_code == 200
    keys = [k.decode() for k in store.scan_iter(count=1000)]
    assert any("emb:" in k for k in keys), keys


# -- the abuse matrix: every route, every kind of bad input ---------------------------------------
ROUTES = ("/v1/compress", "/v1/query", "/v1/retrieve", "/v1/chat/completions")


def _body(route: str, documents: list[Any], compressor: Any = None, budget: Any = None) -> Any:
    if route == "/v1/chat/completions":
        options: dict[str, Any] = {"documents": documents}
        if compressor is not None:
            options["compressor"] = compressor
        if budget is not None:
            options["budget"] = budget
        return {"model": "m", "messages": [{"role": "user", "content": "q"}], "ragzip": options}
    body: dict[str, Any] = {"query": "q", "documents": documents}
    if route == "/v1/retrieve":
        return {"query": "q", "top_k": 2, "documents": documents}  # an unknown field: 422
    if compressor is not None:
        body["compressor"] = compressor
    if budget is not None:
        body["budget"] = budget
    return body


URL_SPEC = {
    "type": "abstractive",
    "params": {
        "generator": {
            "type": "openai",
            "params": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        }
    },
}
ABUSE: dict[str, Callable[[str], bytes]] = {
    "model path in params": lambda r: json.dumps(
        _body(r, DOCS, {"type": "extractive", "params": {"encoder": "/etc/passwd"}})
    ).encode(),
    "home path in params": lambda r: json.dumps(
        _body(r, DOCS, {"type": "token-prune", "params": {"model": "~/.ssh"}})
    ).encode(),
    "URL in params": lambda r: json.dumps(_body(r, DOCS, URL_SPEC)).encode(),
    "file in params": lambda r: json.dumps(
        _body(r, DOCS, {"type": "abstractive", "params": {"cache_path": "/tmp/ragzip-x/y"}})
    ).encode(),
    "10,000 documents": lambda r: json.dumps(_body(r, ["a"] * 10_000)).encode(),
    "5 MB body": lambda r: json.dumps(_body(r, ["x " * 2_500_000])).encode(),
    "invalid UTF-8": lambda r: b'{"query": "q", "documents": ["\xff\xfe\xfa"]}',
    "deep nesting": lambda r: b'{"documents": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "not JSON": lambda r: b"{'documents': ",
}
HARMLESS: dict[str, Callable[[str], bytes]] = {
    "ReDoS pattern": lambda r: json.dumps(
        _body(r, ["a" * 40 + "! x."], budget={"ratio": 2, "keep_patterns": ["(a+)+$"]})
    ).encode(),
    "lone surrogate": lambda r: (
        b'{"query": "q", "documents": ["caf\\ud800"], "budget": 1}'
        if r != "/v1/chat/completions"
        else b'{"model": "m", "messages": [{"role": "user", "content": "q\\udfff"}],'
        b' "ragzip": {"documents": ["caf\\ud800"]}}'
    ),
}


@pytest.fixture(scope="module")
def health_watch(server: str) -> Iterator[list[int | str]]:
    """Polls /healthz all through the matrix; every answer (or failure) is recorded."""
    seen: list[int | str] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                try:
                    seen.append(c.get(f"{server}/healthz").status_code)
                except httpx.HTTPError as exc:
                    seen.append(type(exc).__name__)
                stop.wait(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(timeout=15)
    assert seen and all(s == 200 for s in seen), [s for s in seen if s != 200][:5]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", sorted(ABUSE))
def test_abuse_gets_a_typed_4xx(
    client: httpx.Client, health_watch: list[int | str], route: str, case: str
) -> None:
    r = client.post(route, content=ABUSE[case](route), headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    error = r.json()["error"]
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    assert "Traceback" not in r.text


@pytest.mark.parametrize("route", ("/v1/compress", "/v1/query", "/v1/chat/completions"))
@pytest.mark.parametrize("case", sorted(HARMLESS))
def test_odd_but_valid_input_is_served(
    client: httpx.Client, health_watch: list[int | str], route: str, case: str
) -> None:
    r = client.post(
        route, content=HARMLESS[case](route), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200, (r.status_code, r.text[:300])


# -- shutdown: drain, then finish in-flight requests, then exit 0 ---------------------------------
def test_sigterm_drains_then_exits_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragzip.cli.main", "serve", "--port", str(port),
         "--compressor", "truncate", "--no-warm-up", "--shutdown-drain", "3",
         "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RAGZIP_CACHE": ""},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("/v1/compress", json={"documents": DOCS, "budget": 2}).status_code == 200
            proc.send_signal(signal.SIGTERM)
            ready = c.get("/readyz")  # still served while draining, but no longer ready
            assert ready.status_code == 503 and ready.json()["status"] == "draining"
            r = c.post("/v1/compress", json={"documents": DOCS, "budget": 2})
            assert r.status_code == 200 and r.headers["connection"] == "close"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
