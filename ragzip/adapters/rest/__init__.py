"""The REST sidecar (``ragzip serve``): FastAPI on uvicorn. Needs ``pip install 'ragzip[server]'``.

Example:
    >>> from ragzip.adapters.rest import ServerSettings, create_app
    >>> app = create_app(ServerSettings(compressor="extractive", api_key="secret"))

Endpoints: ``POST /v1/compress``, ``POST /v1/retrieve``, ``POST /v1/query`` (JSON or
server-sent events), ``GET /v1/compressors``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics``, docs at ``/docs``; see :mod:`ragzip.adapters.rest.app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragzip.adapters.rest.app import create_app as create_app
    from ragzip.adapters.rest.settings import ServerSettings as ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from ragzip.adapters.rest.app import create_app

        return create_app
    if name == "ServerSettings":
        from ragzip.adapters.rest.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'ragzip.adapters.rest' has no attribute {name!r}")
