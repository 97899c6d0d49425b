"""Server settings: environment variables (``RAGZIP_*``) over a YAML/JSON file over defaults.

Example:
    >>> settings = ServerSettings(port=8080, api_key="secret")
    >>> settings = ServerSettings.load("server.yaml", port=9000)  # file < env < arguments

Environment variables use the field names with the ``RAGZIP_`` prefix (``RAGZIP_PORT=9000``,
``RAGZIP_API_KEY=...``); nested specs are JSON (``RAGZIP_COMPRESSOR='{"type": "truncate"}'``).
The config file may also be named by ``RAGZIP_CONFIG_FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ragzip.errors import ConfigError

__all__ = ["ServerSettings"]

Spec = str | dict[str, Any]


class ServerSettings(BaseSettings):
    """Everything ``ragzip serve`` can be configured with.

    Attributes:
        host: Interface to bind (loopback by default: put a reverse proxy in front).
        port: TCP port.
        api_key: When set, ``/v1/*`` and ``/metrics`` need ``Authorization: Bearer <key>``.
        compressor: Default compressor spec (a name or ``{"type", "params"}``).
        compressors: Named compressor specs a request may choose by name (``{"fast":
            {"type": "extractive", "params": {...}}}``); server configuration, so they may
            name models, files and caches.
        request_compressors: The names a request may choose: registered compressor types
            (built with their defaults, which name only packaged models) and names from
            ``compressors``. ``None`` (the default): every name of ``compressors``, the
            default compressor's type and every registered type; ``[]``: only the default.
        allow_request_params: Let requests set the parameters each compressor declares safe
            (``request_params``: ratios, thresholds, switches); never models, files, URLs,
            generators or caches.
        allow_regex: Treat a request's ``keep_patterns`` as regular expressions (run with
            ``regex_timeout_s`` per match); off: they are literal strings.
        regex_timeout_s: Time limit of one keep-pattern match.
        budget: Default budget when a request gives none (ratio, or a dict of fields).
        index_dir: A directory written by ``ragzip index``; enables ``/v1/retrieve`` and
            retrieval in ``/v1/query``.
        generator: Generator spec; enables answers in ``/v1/query``.
        top_k: Documents retrieved by default.
        max_answer_tokens: Default (and largest) ``max_tokens`` of a ``/v1/query`` answer.
        max_body_bytes: Largest request body (413 beyond).
        max_documents: Most documents in one request (413 beyond).
        max_tokens_per_request: Most tokens of query + documents, counted with the
            compressor's counter (413 beyond).
        request_timeout_s: Seconds a request may compute before it gets 504.
        header_timeout_s: Seconds a client has to send a request's headers (``ragzip serve``
            closes the connection after that).
        body_timeout_s: Seconds a client has to send a request's body (408 after that).
        max_json_depth: Deepest nesting of a JSON body (422, or 400 on OpenAI routes).
        max_concurrency: Requests computing at once.
        max_queue: Requests waiting for a slot; beyond, 429 with ``Retry-After``.
        retry_after_s: The ``Retry-After`` value of 429/503 answers.
        batch_window_ms: How long a bi-encoder forward waits to gather concurrent requests
            (0: only batch what is already waiting). ``batching=False`` turns it off.
        log_documents: Allow document text and error messages in server logs.
        warm_up: Load the models at startup (``/readyz`` says 503 until done).
        upstream_url: OpenAI-compatible base URL; mounts the compressing chat proxy.
        upstream_api_key: Key the proxy sends upstream; the only credential that goes there
            (a client's own ``Authorization`` header is never forwarded).
        serve_local_generator: Without ``upstream_url``, serve ``generator`` as an
            OpenAI-compatible ``/v1/chat/completions``.
        cors_origins: Origins allowed by CORS; empty (the default) sends no CORS headers.
        cache: The process-wide cache of reusable work (soft segments, and any component
            built to use it), as a :func:`ragzip.cache.make_cache` spec, e.g.
            ``"memory+redis://cache:6379/0"`` so that replicas share it (``RAGZIP_CACHE``).
        graceful_shutdown_s: Seconds in-flight requests get to finish on shutdown.
        shutdown_drain_s: On SIGTERM, seconds the server keeps serving with ``/readyz`` at 503
            and ``Connection: close`` on every response, before it stops accepting (so no
            keep-alive request is lost); 0 turns the drain off.
        ui: Serve the inspector page at ``/ui`` and its API ``/v1/inspect`` (behind
            ``api_key`` like the rest of the API); ``False`` turns both off.
        config_file: A YAML/JSON file with any of these fields (lowest precedence).
    """

    model_config = SettingsConfigDict(env_prefix="RAGZIP_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key: str | None = None
    compressor: Spec = "extractive"
    compressors: dict[str, Spec] = Field(default_factory=dict)
    request_compressors: list[str] | None = None
    allow_request_params: bool = True
    allow_regex: bool = False
    regex_timeout_s: float = Field(default=0.1, gt=0, le=10)
    budget: float | dict[str, Any] = 4.0
    index_dir: Path | None = None
    generator: Spec | None = None
    top_k: int = Field(default=8, ge=1, le=1000)
    max_answer_tokens: int = Field(default=256, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    max_documents: int = Field(default=1000, ge=1)
    max_tokens_per_request: int = Field(default=500_000, ge=1)
    request_timeout_s: float = Field(default=60.0, gt=0)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_json_depth: int = Field(default=64, ge=2, le=10_000)
    max_concurrency: int = Field(default=8, ge=1)
    max_queue: int = Field(default=64, ge=0)
    retry_after_s: int = Field(default=1, ge=0)
    batching: bool = True
    batch_window_ms: float = Field(default=1.0, ge=0, le=1000)
    log_documents: bool = False
    warm_up: bool = True
    upstream_url: str | None = None
    upstream_api_key: str | None = None
    serve_local_generator: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    cache: str | None = None
    graceful_shutdown_s: float = Field(default=30.0, ge=0)
    shutdown_drain_s: float = Field(default=2.0, ge=0, le=300)
    ui: bool = True
    config_file: Path | None = None

    @field_validator("api_key", "upstream_url", "upstream_api_key")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``config_file`` (if any), then ``RAGZIP_*``, then ``overrides``.

        ``None`` values in ``overrides`` are ignored, so CLI flags left unset fall through.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        if config_file is not None:
            given["config_file"] = Path(config_file)
        return cls(**given)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the file named by ``config_file`` (from the arguments or the environment)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole file

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("config_file")
        if not path:
            return {}
        from ragzip.registry import load_spec

        if not Path(path).is_file():
            raise ConfigError(f"server config file {str(path)!r} does not exist")
        data = load_spec(path)
        data = dict(data.get("server", data))  # allow a top-level "server:" section
        data.pop("config_file", None)
        return data
