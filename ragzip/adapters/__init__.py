"""ragzip.adapters: ragzip inside other frameworks.

Importing this package imports no framework. Each adapter lives in its own module and needs
its extra, loaded on first use:

* :mod:`ragzip.adapters.langchain` (``pip install 'ragzip[langchain]'``):
  :class:`RagzipDocumentCompressor`, :class:`RagzipRetriever`,
  :class:`LangChainRetrieverAdapter`.
* :mod:`ragzip.adapters.llamaindex` (``pip install 'ragzip[llamaindex]'``):
  :class:`RagzipNodePostprocessor`.

Without the extra, using a name raises :class:`~ragzip.errors.MissingDependencyError` that
says what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragzip.adapters.langchain import LangChainRetrieverAdapter as LangChainRetrieverAdapter
    from ragzip.adapters.langchain import RagzipDocumentCompressor as RagzipDocumentCompressor
    from ragzip.adapters.langchain import RagzipRetriever as RagzipRetriever
    from ragzip.adapters.llamaindex import RagzipNodePostprocessor as RagzipNodePostprocessor

_LAZY = {
    "LangChainRetrieverAdapter": "ragzip.adapters.langchain",
    "RagzipDocumentCompressor": "ragzip.adapters.langchain",
    "RagzipRetriever": "ragzip.adapters.langchain",
    "RagzipNodePostprocessor": "ragzip.adapters.llamaindex",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ragzip.adapters' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
