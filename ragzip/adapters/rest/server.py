"""Running the sidecar on uvicorn: a time limit on request headers, and a draining shutdown.

uvicorn times out idle keep-alive connections but not a client that sends its headers slowly
(a connection held open a byte at a time). :func:`serve` runs uvicorn with a protocol that
closes a connection whose request headers are not complete within ``header_timeout_s``; the
body has its own limit in :class:`~ragzip.adapters.rest.hardening.BodyLimitMiddleware`.

**Shutdown without lost requests.** A keep-alive client that sends its next request on a
connection the server is closing loses it. So on SIGTERM the server first *drains* for
``shutdown_drain_s``: ``/readyz`` answers 503 (load balancers stop routing to it), every
response says ``Connection: close`` (clients stop reusing connections) and requests are
still served. Then uvicorn's graceful shutdown stops accepting and lets in-flight requests
finish (``graceful_shutdown_s``); responses still in flight also say ``Connection: close``.
The process then exits 0. Ctrl-C (SIGINT) skips the drain; a second signal forces the exit.

Example:
    >>> serve(create_app(settings), settings, log_level="info")  # blocks until SIGTERM
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from ragzip._optional import require
from ragzip.adapters.rest.settings import ServerSettings

__all__ = ["CLOSE", "draining_server", "header_timeout_protocol", "serve"]

CLOSE = (b"connection", b"close")


def header_timeout_protocol(header_timeout_s: float) -> type[Any]:
    """uvicorn's h11 protocol, closing connections whose headers take over ``header_timeout_s``.

    The clock starts when a connection opens or a new request begins arriving, and stops once
    the request's headers are parsed; keep-alive idling stays uvicorn's ``timeout_keep_alive``.
    """
    require("uvicorn", "the REST server")
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._reading_headers():
                self._arm()  # a timer already running keeps running: trickling does not help
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def shutdown(self) -> None:
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:
                cycle.default_headers = [*cycle.default_headers, CLOSE]  # the client must not reuse
            super().shutdown()

        def _reading_headers(self) -> bool:
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if self._reading_headers() and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


def draining_server(config: Any, drain_s: float, on_drain: Callable[[], None]) -> Any:
    """A ``uvicorn.Server`` that drains for ``drain_s`` on SIGTERM before shutting down.

    ``on_drain`` runs when the drain starts (the app marks itself not ready). Signals are not
    re-raised after a graceful shutdown, so the process exits 0.
    """
    require("uvicorn", "the REST server")
    from uvicorn import Server

    class DrainingServer(Server):
        _drain: threading.Timer | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit or self._drain is not None or sig != signal.SIGTERM or not drain_s:
                if self.should_exit:
                    self.force_exit = True
                self._stop()
                return
            on_drain()
            self.server_state.default_headers.append(CLOSE)  # seen by every response from now
            self._drain = threading.Timer(drain_s, self._stop)
            self._drain.daemon = True
            self._drain.start()

        def _stop(self) -> None:
            if self._drain is not None:
                self._drain.cancel()
            self.should_exit = True

    return DrainingServer(config)


def serve(
    app: Any,
    settings: ServerSettings,
    *,
    log_level: str = "info",
    log_config: dict[str, Any] | None = None,
) -> None:
    """Runs ``app`` with uvicorn on ``settings.host:settings.port`` until a signal stops it.

    ``log_config`` replaces uvicorn's logging setup (``ragzip serve`` passes one that writes
    every line in the command's format); ``None`` keeps uvicorn's.

    SIGTERM drains for ``shutdown_drain_s`` (see the module docstring), then uvicorn stops
    accepting connections and lets in-flight requests finish for up to
    ``graceful_shutdown_s`` before it closes the rest.
    """
    uvicorn = require("uvicorn", "the REST server")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        **({"log_config": log_config} if log_config is not None else {}),
        http=header_timeout_protocol(settings.header_timeout_s),
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
    )

    def on_drain() -> None:
        state = getattr(app.state, "ragzip", None)
        if state is not None:
            state.services.draining = True

    draining_server(config, settings.shutdown_drain_s, on_drain).run()
