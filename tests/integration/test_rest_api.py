"""The REST sidecar served by uvicorn on loopback, called over HTTP, on the real models."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ragzip.adapters.rest import ServerSettings, create_app
from ragzip.adapters.rest.batching import batcher_of
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.types import CompressedDocument

pytestmark = pytest.mark.integration

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def corpus() -> list[dict[str, Any]]:
    text = resources.files("ragzip.data").joinpath("demo_corpus.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[tuple[str, uvicorn.Server]]:
    """Runs ``app`` with uvicorn on a free loopback port in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wait_ready(url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the server never became ready"
        time.sleep(0.1)


class SlowCompressor(BaseCompressor):
    """Sleeps, then keeps the first document: a stand-in for a slow model in limit tests."""

    name = "slow"

    def __init__(self, seconds: float = 1.0) -> None:
        super().__init__()
        self.seconds = seconds

    def _compress(self, request: Request) -> MethodOutput:
        time.sleep(self.seconds)
        doc = request.documents[0]
        return MethodOutput([CompressedDocument(doc.text, doc.id)])


class GatedCompressor(BaseCompressor):
    """Waits until the test opens its gate, then keeps the first document.

    Limit tests hold a request in flight with it for exactly as long as they need, whatever
    the machine's speed (no test depends on how long anything takes).
    """

    name = "gated"

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def _compress(self, request: Request) -> MethodOutput:
        self.gate.wait(60)
        doc = request.documents[0]
        return MethodOutput([CompressedDocument(doc.text, doc.id)])


class BrokenCompressor(BaseCompressor):
    """Fails with a message that quotes a document, like a buggy method might."""

    name = "broken"

    def _compress(self, request: Request) -> MethodOutput:
        raise RuntimeError(f"cannot handle {request.documents[0].text}")


# -- the main server: extractive compressor, FAISS index, local LLM ----------------------------
@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ragzip.retrievers.faiss_index import FaissRetriever

    path = tmp_path_factory.mktemp("index") / "demo"
    FaissRetriever.from_documents(corpus(), encoder="minilm", use_gpu=False).save(path)
    return path


@pytest.fixture(scope="module")
def server(index_dir: Path) -> Iterator[str]:
    settings = ServerSettings(
        compressor="extractive",
        index_dir=index_dir,
        generator={"type": "transformers", "params": {"model": "smollm2-135m", "device": "cpu"}},
        api_key=KEY,
        max_documents=40,
        max_body_bytes=300_000,
        max_answer_tokens=12,
        warm_up=True,
    )
    with serve(create_app(settings)) as (url, _):
        wait_ready(url)
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=AUTH, timeout=120) as c:
        yield c


def test_health_is_open_and_ready_reports_components(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok", "components": {}}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200
    components = ready.json()["components"]
    assert components["retriever"] == "FaissRetriever"
    assert components["generator"] == "TransformersGenerator"


def test_compress_with_the_extractive_compressor(client: httpx.Client) -> None:
    docs = [{"id": d["id"], "text": d["text"], "metadata": {"title": d["title"]}} for d in corpus()]
    body = {"query": "How tall is the Eiffel Tower?", "documents": docs, "budget": {"ratio": 8}}
    response = client.post("/v1/compress", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    stats = data["stats"]
    assert stats["compressor"] == "extractive" and stats["tokenizer"] == "approx"
    assert stats["tokens_after"] <= stats["tokens_before"] / 8
    assert stats["ratio"] >= 8
    kept = {d["source_id"] for d in data["documents"]}
    assert "eiffel" in kept
    assert "330" in " ".join(d["text"] for d in data["documents"])
    assert set(stats["dropped_ids"]) == {d["id"] for d in docs} - kept
    for doc in data["documents"]:  # spans point into the source text
        source = next(d["text"] for d in docs if d["id"] == doc["source_id"])
        start, end = doc["spans"][0]
        assert source[start:end].split()[0] == doc["text"].split()[0]


def test_compress_equals_the_in_process_call(client: httpx.Client) -> None:
    docs = [d["text"] for d in corpus()]
    body = {"query": "What do plants need for photosynthesis?", "documents": docs, "budget": 6}
    remote = client.post("/v1/compress", json=body).json()
    local = ExtractiveCompressor().compress(body["query"], docs, 6)
    assert [d["text"] for d in remote["documents"]] == [d.text for d in local.documents]


def test_concurrent_requests_share_batched_forwards(client: httpx.Client, server: str) -> None:
    docs = [d["text"] for d in corpus()]
    queries = [f"question number {i} about towers, museums and plants?" for i in range(12)]
    expected = {
        q: [d.text for d in ExtractiveCompressor().compress(q, docs, 5).documents]
        for q in queries[:3]
    }
    from ragzip.encoders.bi_encoder import get_bi_encoder

    batcher = batcher_of(get_bi_encoder("minilm", quantize=None))
    assert batcher is not None, "the server attaches a batcher to the shared encoder"
    calls, forwards = batcher.calls, batcher.forwards
    with ThreadPoolExecutor(12) as pool:
        results = list(
            pool.map(
                lambda q: client.post(
                    "/v1/compress", json={"query": q, "documents": docs, "budget": 5}
                ),
                queries,
            )
        )
    assert all(r.status_code == 200 for r in results)
    for q, r in zip(queries, results, strict=True):
        if q in expected:  # batched results equal unbatched in-process ones
            assert [d["text"] for d in r.json()["documents"]] == expected[q]
    assert batcher.calls - calls >= 9  # 3 queries were embedded (and cached) above
    assert batcher.forwards - forwards < batcher.calls - calls  # some calls shared a forward


def test_retrieve_from_the_index(client: httpx.Client) -> None:
    response = client.post("/v1/retrieve", json={"query": "famous art museum in Paris", "top_k": 3})
    assert response.status_code == 200, response.text
    hits = response.json()["documents"]
    assert [h["rank"] for h in hits] == [0, 1, 2]
    assert hits[0]["id"] == "louvre"
    assert hits[0]["score"] >= hits[1]["score"]


def test_query_retrieves_compresses_and_answers(client: httpx.Client) -> None:
    body = {"query": "In which city is the Louvre?", "top_k": 4, "budget": 2, "max_tokens": 8}
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["retrieved_ids"][0] == "louvre"
    assert isinstance(data["answer"], str) and data["answer"]
    assert "Louvre" in data["context"]
    stats = data["stats"]
    assert stats["tokens_after"] <= stats["tokens_before"] / 2
    assert {"retrieve", "compress", "generate", "total"} <= set(stats["timings"])


def test_query_streams_deltas_then_stats(server: str) -> None:
    body = {"query": "What does chlorophyll absorb?", "stream": True, "max_tokens": 8}
    events: list[tuple[str, Any]] = []
    with httpx.stream("POST", f"{server}/v1/query", json=body, headers=AUTH, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    names = [n for n, _ in events]
    assert names[-1] == "stats" and set(names[:-1]) == {"delta"}, names
    streamed = "".join(d["text"] for n, d in events if n == "delta")
    final = events[-1][1]
    assert streamed.strip() == final["answer"] and final["answer"]
    assert final["retrieved_ids"][0] == "photosynthesis"
    assert final["stats"]["tokens_after"] <= final["stats"]["tokens_before"]


def test_compressors_list(client: httpx.Client) -> None:
    data = client.get("/v1/compressors").json()
    assert data["default"] == {"type": "extractive"}
    names = {c["type"] for c in data["compressors"]}
    assert {"extractive", "truncate", "document-rank"} <= names


def test_request_may_pick_a_compressor(client: httpx.Client) -> None:
    body = {"documents": ["one two three four five six"], "budget": {"tokens": 3}}
    for spec in ("truncate", {"type": "truncate", "params": {}}):
        data = client.post("/v1/compress", json={**body, "compressor": spec}).json()
        assert data["stats"]["compressor"] == "truncate"
        assert data["documents"][0]["text"] == "one two three"
    bad = client.post("/v1/compress", json={**body, "compressor": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "unknown_component"
    bad = client.post(
        "/v1/compress", json={**body, "compressor": {"type": "truncate", "params": {"x": 1}}}
    )
    assert bad.status_code == 422 and "x" in bad.json()["error"]["message"]


def test_auth(server: str) -> None:
    body = {"documents": ["a b c"], "budget": 2}
    missing = httpx.post(f"{server}/v1/compress", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"]["type"] == "unauthorized"
    wrong = httpx.post(f"{server}/v1/compress", json=body, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401
    assert httpx.get(f"{server}/metrics").status_code == 401
    ok = httpx.post(f"{server}/v1/compress", json=body, headers=AUTH)
    assert ok.status_code == 200


def test_invalid_json_and_schema_errors_are_422_json(client: httpx.Client) -> None:
    r = client.post(
        "/v1/compress", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "invalid_request"
    r = client.post("/v1/compress", json={"documents": "not a list"})
    assert r.status_code == 422 and "documents" in r.json()["error"]["message"]
    r = client.post("/v1/compress", json={"documents": ["a"], "budget": {"ratio": 0.5}})
    assert r.status_code == 422
    r = client.post("/v1/compress", json={"documents": ["a"], "budget": {}})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_input"


def test_body_limit_is_413_naming_it(client: httpx.Client) -> None:
    r = client.post("/v1/compress", json={"documents": ["x " * 200_000], "budget": 2})
    assert r.status_code == 413
    assert "300000 bytes" in r.json()["error"]["message"]


def test_document_limit_is_413_naming_it(client: httpx.Client) -> None:
    r = client.post("/v1/compress", json={"documents": ["a"] * 41, "budget": 2})
    assert r.status_code == 413
    assert "40" in r.json()["error"]["message"] and "max_documents" in r.json()["error"]["message"]


def test_metrics_count_requests_tokens_and_cache(client: httpx.Client) -> None:
    client.post("/v1/compress", json={"query": "q", "documents": ["a b c d"], "budget": 2})
    text = client.get("/metrics").text
    lines = text.splitlines()

    def value(prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))

    assert value('ragzip_requests_total{method="POST",route="/v1/compress",status="200"}') >= 1
    assert value("ragzip_tokens_in_total") > value("ragzip_tokens_out_total") > 0
    assert value("ragzip_request_seconds_count") >= 1
    assert value("ragzip_compression_ratio_count") >= 1
    assert value('ragzip_embedding_cache_hits_total{encoder="minilm"}') > 0
    assert value('ragzip_batcher_forwards_total{encoder="minilm"}') > 0


# -- limits and failures, on a cheap server with injected compressors ---------------------------
@pytest.fixture
def limited() -> Iterator[tuple[str, FastAPI, uvicorn.Server]]:
    settings = ServerSettings(
        compressor="truncate",
        warm_up=False,
        max_concurrency=1,
        max_queue=0,
        retry_after_s=3,
        request_timeout_s=0.5,
        max_tokens_per_request=1000,
    )
    app = create_app(
        settings,
        compressor_overrides={
            "slow": SlowCompressor(0.3),
            "gated": GatedCompressor(),
            "broken": BrokenCompressor(),
        },
    )
    with serve(app) as (url, server):
        yield url, app, server


def _busy(app: FastAPI) -> int:
    busy: int = app.state.ragzip.limiter.busy
    return busy


def _wait_busy(app: FastAPI) -> None:
    deadline = time.monotonic() + 10
    while _busy(app) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)


def _gate(app: FastAPI) -> threading.Event:
    gate: threading.Event = app.state.ragzip.services.compressor("gated").gate
    return gate


def test_timeout_is_504(limited: tuple[str, FastAPI, uvicorn.Server]) -> None:
    url, app, _ = limited
    gate = _gate(app)
    gate.clear()
    try:
        body = {"documents": ["a b c"], "budget": 2, "compressor": "gated"}
        r = httpx.post(f"{url}/v1/compress", json=body, timeout=30)
        assert r.status_code == 504
        assert "request_timeout_s" in r.json()["error"]["message"]
        # The timed-out work keeps its slot until it ends, so the next request is refused.
        r = httpx.post(f"{url}/v1/compress", json={"documents": ["a"], "budget": 2}, timeout=30)
        assert r.status_code == 429
    finally:
        gate.set()


def test_overload_is_429_with_retry_after(limited: tuple[str, FastAPI, uvicorn.Server]) -> None:
    url, app, _ = limited
    gate = _gate(app)
    gate.clear()
    held = {"documents": ["a b c"], "budget": 2, "compressor": "gated"}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/v1/compress", json=held, timeout=30)
        try:
            _wait_busy(app)
            second = httpx.post(f"{url}/v1/compress", json=held, timeout=30)
        finally:
            gate.set()
        assert first.result().status_code in (200, 504)  # 504 only past request_timeout_s
    assert second.status_code == 429
    assert second.headers["retry-after"] == "3"
    assert second.json()["error"]["type"] == "overloaded"
    metrics = httpx.get(f"{url}/metrics").text
    assert 'ragzip_rejected_total{reason="queue_full"} 1.0' in metrics


def test_token_limit_is_413(limited: tuple[str, FastAPI, uvicorn.Server]) -> None:
    url, _, _ = limited
    r = httpx.post(f"{url}/v1/compress", json={"documents": ["word " * 2000], "budget": 2})
    assert r.status_code == 413
    assert "1000 tokens" in r.json()["error"]["message"]


def test_unexpected_errors_are_generic_500s_without_document_text(
    limited: tuple[str, FastAPI, uvicorn.Server], caplog: pytest.LogCaptureFixture
) -> None:
    url, _, _ = limited
    secret = "confidential-patient-record-4711"
    with caplog.at_level(logging.INFO):
        r = httpx.post(
            f"{url}/v1/compress",
            json={"documents": [secret], "budget": 2, "compressor": "broken"},
        )
    assert r.status_code == 500
    assert r.json() == {"error": {"type": "internal_error", "message": "internal server error"}}
    assert secret not in r.text and "Traceback" not in r.text
    assert "RuntimeError" in caplog.text  # logged server-side...
    assert secret not in caplog.text  # ...without the document text


def test_retrieve_and_query_without_index_are_422(
    limited: tuple[str, FastAPI, uvicorn.Server],
) -> None:
    url, _, _ = limited
    r = httpx.post(f"{url}/v1/retrieve", json={"query": "x"})
    assert r.status_code == 422 and "index_dir" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/query", json={"query": "x", "documents": ["a b"], "stream": True})
    assert r.status_code == 422 and "generator" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/query", json={"query": "x", "documents": ["a b c d"], "budget": 2})
    assert r.status_code == 200 and r.json()["answer"] is None


def test_graceful_shutdown_finishes_in_flight_requests(
    limited: tuple[str, FastAPI, uvicorn.Server],
) -> None:
    url, app, server = limited
    slow = {"documents": ["a b c"], "budget": 2, "compressor": "slow"}
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(httpx.post, f"{url}/v1/compress", json=slow, timeout=10)
        _wait_busy(app)
        server.should_exit = True  # what SIGTERM does
        response = in_flight.result()
    assert response.status_code == 200
    assert response.json()["stats"]["tokens_before"] == 3
    deadline = time.monotonic() + 10
    while True:  # and then the server stops accepting connections
        try:
            httpx.get(f"{url}/healthz", timeout=1)
        except httpx.TransportError:
            break
        assert time.monotonic() < deadline, "server still answering after shutdown"
        time.sleep(0.05)


# -- `ragzip serve` as a proxy in front of `ragzip serve` as the local upstream ------------------
def test_served_proxy_in_front_of_the_served_local_generator() -> None:
    upstream = create_app(
        ServerSettings(
            generator={
                "type": "transformers",
                "params": {"model": "smollm2-135m", "device": "cpu"},
            },
            serve_local_generator=True,
            warm_up=False,
        )
    )
    with serve(upstream) as (upstream_url, _):
        front = create_app(
            ServerSettings(compressor="extractive", upstream_url=f"{upstream_url}/v1", api_key=KEY)
        )
        with serve(front) as (url, _):
            docs = [d["text"] for d in corpus()]
            body = {
                "model": "smollm2-135m",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "Who designed the Eiffel Tower?"}],
                "ragzip": {"documents": docs, "budget": {"ratio": 8}},
            }
            assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 401
            r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=300)
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"].strip()
            before = int(r.headers["X-Ragzip-Tokens-Before"])
            after = int(r.headers["X-Ragzip-Tokens-After"])
            assert 0 < after < before
            assert int(r.headers["X-Ragzip-Tokens-Saved"]) == before - after


def test_a_body_without_json_content_type_gets_a_hint(client: httpx.Client) -> None:
    r = client.post(
        "/v1/compress",
        content=b'{"query": "q", "documents": ["a"]}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    assert "Content-Type: application/json" in r.json()["error"]["message"]


# -- the inspector's API (the page itself is driven in test_inspector_browser.py) ---------------
def test_inspect_retrieves_compares_and_answers(client: httpx.Client) -> None:
    question = "Which river carries the most water?"
    r = client.post(
        "/v1/inspect",
        json={
            "query": question,
            "compressors": ["extractive", {"type": "truncate", "params": {}}],
            "budget": 3,
            "top_k": 3,
            "answer": True,
        },
    )
    assert r.status_code == 200, r.text
    view = r.json()
    assert [run["name"] for run in view["runs"]] == ["extractive", "truncate"]
    assert view["documents"] == 3 and isinstance(view["full_answer"], str)
    texts = {d["id"]: d["text"] for d in corpus()}
    for run in view["runs"]:
        assert isinstance(run["answer"], str) and run["answer_seconds"] > 0
        assert 0 < run["tokens_after"] <= run["tokens_before"] / 3 + 1
        for doc in run["documents"]:  # retrieved from the index; segments are the whole text
            assert "".join(piece for piece, _ in doc["segments"]) == texts[doc["id"]]
    same = client.post(
        "/v1/compress",
        json={"query": question, "documents": [texts[d["id"]] for d in run["documents"]]},
    )
    assert same.status_code == 200


def test_inspect_obeys_the_request_policy(client: httpx.Client) -> None:
    body = {"query": "q", "documents": ["a b c d"], "budget": 2}
    bad = client.post(
        "/v1/inspect",
        json={**body, "compressors": [{"type": "extractive", "params": {"cache_path": "/tmp/x"}}]},
    )
    assert bad.status_code == 422 and "cache_path" in bad.json()["error"]["message"]
    five = client.post("/v1/inspect", json={**body, "compressors": ["truncate"] * 5})
    assert five.status_code == 422 and "compressors" in five.json()["error"]["message"]
    blank = client.post("/v1/inspect", json={**body, "query": "  ", "compressors": ["truncate"]})
    assert blank.status_code in (400, 422)
    many = client.post(
        "/v1/inspect", json={**body, "documents": ["a"] * 41, "compressors": ["truncate"]}
    )
    assert many.status_code == 413 and "max_documents" in many.json()["error"]["message"]
    assert httpx.post(f"{client.base_url}/v1/inspect", json=body).status_code == 401


def test_inspect_without_index_or_generator_says_what_is_missing(
    limited: tuple[str, FastAPI, uvicorn.Server],
) -> None:
    url, _, _ = limited
    body = {"query": "x", "compressors": ["truncate"], "budget": 2}
    r = httpx.post(f"{url}/v1/inspect", json=body)
    assert r.status_code == 422 and "index" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/inspect", json={**body, "documents": ["a b"], "answer": True})
    assert r.status_code == 422 and "generator" in r.json()["error"]["message"]


def test_ui_can_be_turned_off() -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(ServerSettings(compressor="truncate", ui=False))) as off:
        assert off.get("/ui").status_code == 404
        body = {"query": "q", "documents": ["a"], "compressors": ["truncate"]}
        assert off.post("/v1/inspect", json=body).status_code == 404
    with TestClient(create_app(ServerSettings(compressor="truncate", warm_up=False))) as on:
        page = on.get("/ui")
        assert page.status_code == 200 and "inspector.js" in page.text
        assert on.get("/ui/inspector.css").headers["content-type"].startswith("text/css")
        assert on.get("/ui/../pyproject.toml").status_code == 404
        assert on.get("/ui/form.html").status_code == 404  # only the listed assets
