"""Contract tests and fakes that users and ragzip's own tests reuse.

* Contract suites, one per role: subclass one in a test module and provide its fixture;
  pytest then runs the whole contract. They need pytest (``pip install 'ragzip[dev]'``),
  imported only when a contract is.

  - :class:`CompressorContract` (:mod:`ragzip.testing.contracts`): a ``compressor`` fixture.
  - :class:`RetrieverContract` (:mod:`ragzip.testing.retriever_contracts`): a
    ``make_retriever`` fixture returning a function that builds an empty retriever.
  - :class:`GeneratorContract` (:mod:`ragzip.testing.generator_contracts`): a ``generator``
    fixture.

* Fakes (in :mod:`ragzip.testing.fakes`), deterministic and model-free, for plumbing tests;
  none is in a registry: :class:`KeywordCompressor`, :class:`EchoGenerator` and
  :class:`HashingEncoder` (a text encoder for :class:`~ragzip.retrievers.FaissRetriever`).
* :mod:`ragzip.testing.fixtures`: small titled documents on distinct topics, with questions
  answered by exactly one of them, and unicode / invalid UTF-8 samples.

Example:
    >>> from ragzip.testing import CompressorContract, KeywordCompressor
    >>> class TestKeyword(CompressorContract):
    ...     @pytest.fixture
    ...     def compressor(self):
    ...         return KeywordCompressor(tokenizer="words")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ragzip.testing.fakes import EchoGenerator, HashingEncoder, KeywordCompressor
from ragzip.testing.fixtures import (
    DOCUMENTS,
    INVALID_UTF8,
    QUESTIONS,
    UNICODE_TEXTS,
    FixtureQuestion,
    large_document,
    unique_text,
)

if TYPE_CHECKING:
    from ragzip.testing.contracts import CompressorContract, check_result
    from ragzip.testing.generator_contracts import GeneratorContract, check_generation
    from ragzip.testing.retriever_contracts import RetrieverContract, check_hits

__all__ = [
    "DOCUMENTS",
    "INVALID_UTF8",
    "QUESTIONS",
    "UNICODE_TEXTS",
    "CompressorContract",
    "EchoGenerator",
    "FixtureQuestion",
    "GeneratorContract",
    "HashingEncoder",
    "KeywordCompressor",
    "RetrieverContract",
    "check_generation",
    "check_hits",
    "check_result",
    "large_document",
    "unique_text",
]


# The contracts import pytest: each loads only when one of its names is asked for.
_CONTRACTS = {
    "CompressorContract": "ragzip.testing.contracts",
    "check_result": "ragzip.testing.contracts",
    "RetrieverContract": "ragzip.testing.retriever_contracts",
    "check_hits": "ragzip.testing.retriever_contracts",
    "GeneratorContract": "ragzip.testing.generator_contracts",
    "check_generation": "ragzip.testing.generator_contracts",
}


def __getattr__(name: str) -> Any:
    module = _CONTRACTS.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'ragzip.testing' has no attribute {name!r}")
