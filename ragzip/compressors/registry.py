"""The compressor registry: build a compressor by name from plain config.

Example:
    >>> from ragzip.compressors.registry import compressors
    >>> c = compressors.build({"type": "extractive", "params": {"context_window": 1}})
    >>> compressors.names()
"""

from __future__ import annotations

from typing import Any

from ragzip.registry import Registry

__all__ = ["compressors"]

compressors: Registry[Any] = Registry(
    "compressor",
    {
        "extractive": "ragzip.compressors.extractive",
        "document-rank": "ragzip.compressors.document_rank",
        "truncate": "ragzip.compressors.truncate",
        "code": "ragzip.compressors.code",
        "router": "ragzip.compressors.router",
        "token-prune": "ragzip.compressors.token_prune",
        "abstractive": "ragzip.compressors.abstractive",
        "provence": "ragzip.compressors.provence",
    },
)
