"""Contract tests and fakes that users and ragzip's own tests reuse.

* :class:`CompressorContract` (in :mod:`ragzip.testing.contracts`): a pytest suite every
  compressor should pass; subclass it and provide a ``compressor`` fixture. It needs pytest
  (``pip install 'ragzip[dev]'``), imported only when the contract is.
* :class:`KeywordCompressor` (in :mod:`ragzip.testing.fakes`): a deterministic, model-free
  compressor for plumbing tests; it is not in the compressor registry.
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

from typing import TYPE_CHECKING, Any

from ragzip.testing.fakes import KeywordCompressor
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

__all__ = [
    "DOCUMENTS",
    "INVALID_UTF8",
    "QUESTIONS",
    "UNICODE_TEXTS",
    "CompressorContract",
    "FixtureQuestion",
    "KeywordCompressor",
    "check_result",
    "large_document",
    "unique_text",
]


def __getattr__(name: str) -> Any:
    # The contract imports pytest; load it only when asked for.
    if name in ("CompressorContract", "check_result"):
        from ragzip.testing import contracts

        return getattr(contracts, name)
    raise AttributeError(f"module 'ragzip.testing' has no attribute {name!r}")
