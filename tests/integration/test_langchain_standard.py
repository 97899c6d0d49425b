"""LangChain's own standard retriever suite (``langchain-tests``) run on RagzipRetriever over a
real FAISS index of the packaged MiniLM, offline.

Every test of the suite runs as LangChain ships it: none is overridden, skipped or marked
xfail (the suite's ``test_no_overrides_DO_NOT_OVERRIDE`` checks that).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from ragzip.adapters.langchain import RagzipRetriever
from ragzip.retrievers.faiss_index import FaissRetriever
from ragzip.testing import DOCUMENTS, QUESTIONS

pytestmark = pytest.mark.integration


@cache
def faiss_index() -> FaissRetriever:
    """One FAISS index of the bundled documents, shared by every test of the suite."""
    index = FaissRetriever("minilm")
    index.add(DOCUMENTS)
    return index


class TestRagzipRetrieverStandard(RetrieversIntegrationTests):
    """The suite's constructor and invoke-time ``k`` tests need at least 3 documents."""

    @property
    def retriever_constructor(self) -> type[RagzipRetriever]:
        return RagzipRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"retriever": faiss_index(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUESTIONS[0].question


def test_the_index_is_large_enough_for_the_suite() -> None:
    assert len(DOCUMENTS) > 3  # so "k=3 returns 3" checks k, not the size of the index
