"""A tiny OpenAI-compatible HTTP server around any generator, on the standard library only.

For tests and demos: it serves ``POST /v1/chat/completions`` (JSON, or server-sent events with
``"stream": true``), ``POST /v1/completions`` with vLLM's ``prompt_embeds`` when the generator
can read embeddings (a :class:`~ragzip.generators.soft.SoftGenerator`), and ``GET /v1/models``.
It is threaded but not hardened; put the FastAPI sidecar in front of real traffic.

Example:
    >>> from ragzip.generators import TransformersGenerator
    >>> from ragzip.generators.serve_openai import running_server
    >>> with running_server(TransformersGenerator()) as base_url:
    ...     ...  # OpenAICompatibleGenerator(base_url, "smollm2-135m").generate("Hi")

Or from a shell: ``python -m ragzip.generators.serve_openai --port 8000``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ragzip.errors import GenerationError, InvalidInputError
from ragzip.generators.base import Generator, count_usage
from ragzip.wire import openai as wire

__all__ = ["main", "make_server", "running_server"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
_COMPLETIONS = ("/v1/completions", "/completions")


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def make_server(
    generator: Generator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    model_name: str | None = None,
) -> tuple[ThreadingHTTPServer, str]:
    """Builds (but does not start) a server that answers with ``generator``.

    Args:
        generator: Any ragzip generator.
        host: Interface to bind.
        port: TCP port; 0 picks a free one.
        model_name: The model id the server reports; defaults to the generator's ``model``.

    Returns:
        The server (run ``serve_forever()``, e.g. in a thread; ``shutdown()`` and
        ``server_close()`` to stop) and its base URL, e.g. ``http://127.0.0.1:54321/v1``.
    """
    name = model_name or str(getattr(generator, "model", None) or type(generator).__name__)

    class Handler(_Handler):
        pass

    Handler.generator = generator
    Handler.model_name = name
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    bound, bound_port = server.server_address[:2]
    bound_host = bound.decode() if isinstance(bound, bytes) else str(bound)
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return server, f"http://{url_host}:{bound_port}/v1"


@contextlib.contextmanager
def running_server(
    generator: Generator, host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> Iterator[str]:
    """Serves ``generator`` in a background thread for the ``with`` block; yields the base URL."""
    server, base_url = make_server(generator, host, port, **kwargs)
    thread = threading.Thread(target=server.serve_forever, name="ragzip-openai-server", daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ragzip-openai/0.1"
    generator: Generator
    model_name: str

    # -- routing -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._json(200, wire.models_list([self.model_name]))
        elif path in ("", "/health", "/v1"):
            self._json(200, {"status": "ok"})
        else:
            self._error(404, f"no route GET {path}", "not_found_error")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions", *_COMPLETIONS):
            self._drain()
            self._error(404, f"no route POST {path}", "not_found_error")
            return
        try:
            body = self._read_json()
            if path in _COMPLETIONS:
                if body.get("stream"):
                    raise _BadRequest(400, "streaming is not supported with prompt_embeds here")
                self._complete_embeds(body, _embeds_options(body))
                return
            chat = wire.ChatOptions.of(body)
            if chat.stream:
                self._stream(chat)
            else:
                self._complete(chat)
        except _BadRequest as exc:
            self._error(exc.status, exc.message, exc.kind)
        except InvalidInputError as exc:
            self._error(400, str(exc))
        except GenerationError as exc:
            logger.warning("generation failed: %s", exc)
            self._error(502, f"generation failed: {exc}", "server_error")
        except Exception:
            logger.exception("unexpected error in %s", path)
            self._error(500, "internal server error", "server_error")

    # -- endpoints -----------------------------------------------------------------------------
    def _complete(self, chat: wire.ChatOptions) -> None:
        result = self.generator.generate(chat.messages, **chat.generation_kwargs())
        self._json(
            200,
            wire.completion(
                self.model_name,
                result.text,
                finish_reason=result.finish_reason,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            ),
        )

    def _complete_embeds(self, body: dict[str, Any], options: dict[str, Any]) -> None:
        from ragzip.generators.embeds import decode_prompt_embeds

        generate = getattr(self.generator, "generate_embeds", None)
        if generate is None or "prompt_embeds" not in body:
            raise _BadRequest(
                400,
                "this server answers /v1/completions only with 'prompt_embeds' and a generator "
                "that reads embeddings (ragzip.generators.soft.SoftGenerator)",
            )
        options.pop("stop", None)
        embeds = decode_prompt_embeds(
            body["prompt_embeds"], getattr(self.generator, "hidden_size", None)
        )
        result = generate(embeds, **options)
        self._json(
            200,
            wire.text_completion(
                self.model_name,
                result.text,
                finish_reason=result.finish_reason,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
            ),
        )

    def _stream(self, chat: wire.ChatOptions) -> None:
        # validates before headers go out
        deltas = self.generator.stream(chat.messages, **chat.generation_kwargs())
        writer = wire.ChunkWriter(self.model_name)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._write_chunk(writer.start())
            pieces: list[str] = []
            try:
                for text in deltas:
                    pieces.append(text)
                    self._write_chunk(writer.delta(text))
            except (InvalidInputError, GenerationError) as exc:
                # Headers are gone: report in-band, as OpenAI does.
                self._write_chunk(wire.sse(wire.error(str(exc), "server_error")))
            else:
                prompt, completion = count_usage(self.generator, chat.messages, "".join(pieces))
                self._write_chunk(writer.finish(wire.finish_of(completion, chat.max_tokens)))
                if chat.include_usage:
                    self._write_chunk(writer.usage(prompt, completion))
            self._write_chunk(wire.SSE_DONE)
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left; closing deltas stops generation
        finally:
            close = getattr(deltas, "close", None)
            if close is not None:
                close()

    # -- plumbing ------------------------------------------------------------------------------
    def _read_json(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise _BadRequest(411, "send a JSON body with a Content-Length header")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            raise _BadRequest(413, f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadRequest(400, f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _BadRequest(400, "request body must be a JSON object")
        if "messages" not in body and self.path.split("?", 1)[0].rstrip("/") not in _COMPLETIONS:
            raise _BadRequest(400, "'messages' is required")
        return body

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_BODY_BYTES:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._json(status, wire.error(message, kind, code=status))

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


def _embeds_options(body: dict[str, Any]) -> dict[str, Any]:
    """Generation options of a ``/v1/completions`` request with ``prompt_embeds``."""
    options: dict[str, Any] = {}
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if body.get("temperature") is not None:
        options["temperature"] = body["temperature"]
    return options


def main(argv: list[str] | None = None) -> None:
    """Serves a local transformers model: ``python -m ragzip.generators.serve_openai``."""
    from ragzip.generators.local import TransformersGenerator

    parser = argparse.ArgumentParser(description="Serve a local model over an OpenAI-style API.")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    generator = TransformersGenerator(args.model, device=args.device)
    generator.warm_up()
    server, base_url = make_server(generator, args.host, args.port)
    print(f"serving {args.model} at {base_url} (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
