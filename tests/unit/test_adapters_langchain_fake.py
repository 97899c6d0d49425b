"""LangChain adapter plumbing on real langchain-core / langchain-classic objects, with the
deterministic KeywordCompressor and the model-free BM25 retriever.

What the adapters do with the real extractive compressor and FAISS is tested in
tests/integration/test_adapters_langchain.py.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from ragzip.adapters.langchain import (
    LangChainRetrieverAdapter,
    RagzipDocumentCompressor,
    RagzipRetriever,
)
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.middleware.pipeline import Pipeline
from ragzip.retrievers import BM25Retriever
from ragzip.testing import DOCUMENTS, KeywordCompressor
from ragzip.types import Budget

QUESTION = "Who discovered penicillin?"


def lc_documents() -> list[LCDocument]:
    return [
        LCDocument(page_content=d.text, metadata=dict(d.metadata), id=d.id)
        for d in reversed(DOCUMENTS)  # penicillin last: order must follow the input
    ]


class ListRetriever(BaseRetriever):
    """Returns its first ``k`` documents, whatever the query."""

    documents: list[LCDocument]
    k: int = 10

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        return self.documents[: self.k]


class PromptRecorder(BaseCallbackHandler):
    """Keeps the messages every chat model was called with."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.extend(str(m.content) for batch in messages for m in batch)


@pytest.fixture
def compressor() -> RagzipDocumentCompressor:
    return RagzipDocumentCompressor(KeywordCompressor(tokenizer="words"), budget=4)


# -- RagzipDocumentCompressor ----------------------------------------------------------------
def test_compress_documents_keeps_order_metadata_and_ids(
    compressor: RagzipDocumentCompressor,
) -> None:
    docs = lc_documents()
    snapshot = copy.deepcopy(docs)
    out = compressor.compress_documents(docs, "Who discovered penicillin? Where was jazz born?")
    assert docs == snapshot  # inputs untouched
    assert [d.id for d in out] == ["jazz", "penicillin"]  # input order, dropped ones absent
    for doc in out:
        source = next(d for d in docs if d.id == doc.id)
        assert doc is not source
        assert len(doc.page_content) < len(source.page_content)
        provenance = doc.metadata.pop("ragzip")
        assert doc.metadata == source.metadata  # original metadata preserved
        assert provenance["source_id"] == doc.id
        assert provenance["source_index"] == docs.index(source)
        assert provenance["compressor"] == "keyword-fake"
        assert provenance["score"] > 0 and provenance["ratio"] > 1
        assert provenance["context_ratio"] >= 4
        for start, end in provenance["spans"]:
            assert source.page_content[start:end] in doc.page_content
    assert "Alexander Fleming" in out[1].page_content


def test_returned_metadata_is_a_copy(compressor: RagzipDocumentCompressor) -> None:
    docs = lc_documents()
    out = compressor.compress_documents(docs, QUESTION)
    out[0].metadata["tags"].append("edited")
    assert docs[-1].metadata["tags"] == ["history", "drugs"]


def test_documents_without_or_with_repeated_ids(compressor: RagzipDocumentCompressor) -> None:
    docs = [
        LCDocument(page_content="Bees make honey from nectar."),
        LCDocument(page_content="Bees dance to point at flowers.", id="x"),
        LCDocument(page_content="Bees sting when the hive is threatened.", id="x"),
    ]
    out = RagzipDocumentCompressor(
        KeywordCompressor(tokenizer="words"), budget=1
    ).compress_documents(docs, "bees")
    assert [d.page_content for d in out] == [d.page_content for d in docs]
    assert [d.metadata["ragzip"]["source_id"] for d in out] == ["0", "x", "x"]
    assert [d.metadata["ragzip"]["source_index"] for d in out] == [0, 1, 2]


def test_empty_input_and_budgets(compressor: RagzipDocumentCompressor) -> None:
    assert compressor.compress_documents([], QUESTION) == []
    tight = RagzipDocumentCompressor(
        KeywordCompressor(tokenizer="words"), budget={"tokens": 5}
    ).compress_documents(lc_documents(), QUESTION)
    assert sum(len(d.page_content.split()) for d in tight) <= 5
    keep = RagzipDocumentCompressor(
        KeywordCompressor(tokenizer="words"), budget=Budget(ratio=4, keep=("Queensland",))
    ).compress_documents(lc_documents(), QUESTION)
    assert any("Queensland" in d.page_content for d in keep)


def test_bad_input_is_a_typed_error(compressor: RagzipDocumentCompressor) -> None:
    with pytest.raises(InvalidInputError):
        compressor.compress_documents(["just a string"], QUESTION)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError):
        compressor.compress_documents("text", QUESTION)  # type: ignore[arg-type]


def test_built_from_names_specs_and_pipelines() -> None:
    by_name = RagzipDocumentCompressor("truncate", budget=2)
    assert by_name.compressor.name == "truncate"
    by_spec = RagzipDocumentCompressor(compressor={"type": "truncate", "params": {}})
    assert by_spec.budget == Budget(ratio=4)
    pipe = Pipeline(KeywordCompressor(tokenizer="words"), budget={"tokens": 7})
    from_pipe = RagzipDocumentCompressor(pipe)
    assert from_pipe.compressor is pipe.compressor
    assert from_pipe.budget == Budget(tokens=7)
    assert RagzipDocumentCompressor(pipe, budget=3).budget == Budget(ratio=3)
    with pytest.raises(ConfigError, match="ragzip compressor"):
        RagzipDocumentCompressor(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="ratio"):
        RagzipDocumentCompressor("truncate", budget=0.5)
    with pytest.raises(ConfigError):
        RagzipDocumentCompressor("no-such-compressor")
    with pytest.raises(ValidationError):  # missing compressor: pydantic's own check
        RagzipDocumentCompressor()
    validated = RagzipDocumentCompressor.model_validate({"compressor": pipe})
    assert validated.budget == Budget(tokens=7)


async def test_async_equals_sync(compressor: RagzipDocumentCompressor) -> None:
    docs = lc_documents()
    sync = compressor.compress_documents(docs, QUESTION)
    async_ = await compressor.acompress_documents(docs, QUESTION)
    assert [(d.page_content, d.id) for d in async_] == [(d.page_content, d.id) for d in sync]
    assert await compressor.acompress_documents([], QUESTION) == []


# -- inside LangChain ------------------------------------------------------------------------
async def test_contextual_compression_retriever(compressor: RagzipDocumentCompressor) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=ListRetriever(documents=lc_documents())
    )
    out = retriever.invoke(QUESTION)
    assert [d.id for d in out] == ["penicillin"]
    assert "Alexander Fleming" in out[0].page_content
    assert out[0].metadata["title"] == "Penicillin"
    again = await retriever.ainvoke(QUESTION)
    assert [d.page_content for d in again] == [d.page_content for d in out]
    assert retriever.invoke("zzzz unknown words") == []  # nothing relevant is kept
    empty = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=ListRetriever(documents=[])
    )
    assert empty.invoke(QUESTION) == []


async def test_lcel_chain_sends_the_compressed_context_to_the_llm(
    compressor: RagzipDocumentCompressor,
) -> None:
    retriever = ListRetriever(documents=lc_documents())
    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    llm = FakeListChatModel(responses=["Alexander Fleming."])
    chain = (
        {"context": retriever, "question": RunnablePassthrough()}
        | compressor.as_runnable()
        | prompt
        | llm
    )
    recorder = PromptRecorder()
    answer = chain.invoke(QUESTION, config={"callbacks": [recorder]})
    assert answer.content == "Alexander Fleming."
    expected = compressor.compress_documents(retriever.invoke(QUESTION), QUESTION)[0].page_content
    (sent,) = recorder.prompts
    assert f"Context:\n{expected}\n\nQuestion: {QUESTION}" == sent
    assert "Second World War" not in sent  # the uncompressed text did not reach the LLM

    recorder.prompts.clear()
    await chain.ainvoke(QUESTION, config={"callbacks": [recorder]})
    assert recorder.prompts == [sent]


def test_as_runnable_options_and_errors(compressor: RagzipDocumentCompressor) -> None:
    step = compressor.as_runnable(documents_key="docs", query_key="q", as_text=False)
    out = step.invoke({"docs": lc_documents(), "q": QUESTION, "other": 1})
    assert out["other"] == 1 and out["q"] == QUESTION
    assert [d.id for d in out["docs"]] == ["penicillin"]
    with pytest.raises(InvalidInputError, match="'docs'"):
        step.invoke({"q": QUESTION})
    with pytest.raises(InvalidInputError, match="query"):
        step.invoke({"docs": lc_documents()})
    # The documented alternative: a plain RunnableLambda around compress_documents.
    manual = RunnableLambda(lambda x: compressor.compress_documents(x["context"], x["question"]))
    assert manual.invoke({"context": lc_documents(), "question": QUESTION})[0].id == "penicillin"


# -- RagzipRetriever -------------------------------------------------------------------------
async def test_ragzip_retriever_is_a_langchain_retriever() -> None:
    index = BM25Retriever()
    index.add(DOCUMENTS)
    retriever = RagzipRetriever(retriever=index, k=2)
    out = retriever.invoke(QUESTION)
    assert isinstance(retriever, BaseRetriever)
    assert out[0].id == "penicillin" and out[0].page_content == DOCUMENTS[0].text
    assert out[0].metadata["title"] == "Penicillin"
    assert out[0].metadata["retrieval_rank"] == 0
    assert isinstance(out[0].metadata["relevance_score"], float)
    assert len(out) <= 2
    assert [d.id for d in await retriever.ainvoke(QUESTION)] == [d.id for d in out]
    out[0].metadata["tags"].append("edited")  # a copy: the index keeps its metadata
    assert list(index.retrieve(QUESTION, 1)[0].document.metadata["tags"]) == ["history", "drugs"]
    assert RagzipRetriever(retriever=index, k=0).invoke(QUESTION) == []
    with pytest.raises(ValidationError, match="ragzip retriever"):
        RagzipRetriever(retriever="faiss")


async def test_ragzip_retriever_k_at_invoke_time_overrides_the_default() -> None:
    index = BM25Retriever()
    index.add(DOCUMENTS)
    retriever = RagzipRetriever(retriever=index, k=3)
    query = "penicillin honeybees printing volcano jazz reef"
    assert len(retriever.invoke(query)) == 3
    one = retriever.invoke(query, k=1)
    assert [d.id for d in one] == [d.id for d in retriever.invoke(query)][:1]
    assert len(retriever.invoke(query, None, k=2)) == 2  # the standard tests' call shape
    assert len(await retriever.ainvoke(query, k=1)) == 1
    assert retriever.invoke(query, k=0) == []
    assert retriever.k == 3  # per call only
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(InvalidInputError, match="k must be"):
            retriever.invoke(query, k=bad)
    with pytest.raises(InvalidInputError, match="top_k"):
        retriever.invoke(query, top_k=2)


async def test_ragzip_retriever_and_compressor_together() -> None:
    index = BM25Retriever()
    index.add(DOCUMENTS)
    retriever = ContextualCompressionRetriever(
        base_compressor=RagzipDocumentCompressor(KeywordCompressor(tokenizer="words"), budget=2),
        base_retriever=RagzipRetriever(retriever=index, k=3),
    )
    (doc,) = await retriever.ainvoke(QUESTION)
    assert doc.id == "penicillin" and "Alexander Fleming" in doc.page_content
    assert doc.metadata["retrieval_rank"] == 0 and "ragzip" in doc.metadata


# -- LangChainRetrieverAdapter ---------------------------------------------------------------
async def test_langchain_retriever_inside_a_ragzip_pipeline() -> None:
    adapter = LangChainRetrieverAdapter(ListRetriever(documents=lc_documents()))
    pipe = Pipeline(KeywordCompressor(tokenizer="words"), adapter, budget=4, top_k=6)
    out = pipe.run(QUESTION)
    assert [h.document.id for h in out.retrieved] == [d.id for d in reversed(DOCUMENTS)]
    assert "Alexander Fleming" in out.context
    assert out.compression.documents[0].source_id == "penicillin"
    assert (await pipe.arun(QUESTION)).context == out.context


async def test_langchain_retriever_adapter_scores_ids_and_k() -> None:
    docs = [
        LCDocument(page_content="alpha beta", id="a", metadata={"relevance_score": 0.9}),
        LCDocument(page_content="alpha gamma", id="a"),
        LCDocument(page_content="alpha delta"),
    ]
    adapter = LangChainRetrieverAdapter(RunnableLambda(lambda query: docs))
    hits = adapter.retrieve("alpha", k=10)
    assert [h.document.id for h in hits] == ["a", "a#1", "2"]
    assert [h.score for h in hits] == [0.9, 0.5, pytest.approx(1 / 3)]
    assert [h.rank for h in hits] == [0, 1, 2]
    assert hits[0].document.metadata["relevance_score"] == 0.9
    assert len(adapter.retrieve("alpha", k=1)) == 1
    assert adapter.retrieve("alpha", k=0) == []
    assert [h.document.id for h in await adapter.aretrieve("alpha", k=2)] == ["a", "a#1"]
    with pytest.raises(InvalidInputError):
        adapter.retrieve("  ", k=2)
    with pytest.raises(ConfigError, match="add_documents"):
        adapter.add(["more text"])
    with pytest.raises(ConfigError, match="invoke"):
        LangChainRetrieverAdapter(["not", "a", "retriever"])  # type: ignore[arg-type]


def test_langchain_retriever_adapter_adds_through_add_documents() -> None:
    class Store(ListRetriever):
        def add_documents(self, documents: list[LCDocument]) -> None:
            self.documents.extend(documents)

    store = Store(documents=[])
    adapter = LangChainRetrieverAdapter(store)
    adapter.add([{"text": "Penicillin was found by Fleming.", "id": "p", "title": "P"}])
    (hit,) = adapter.retrieve("penicillin found", k=3)
    assert hit.document.id == "p" and hit.document.metadata == {"title": "P"}


# -- optional dependency handling ------------------------------------------------------------
BLOCK = "import sys; sys.modules['{module}'] = None; "


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_adapters_loads_no_framework() -> None:
    done = run_python(
        "import sys, ragzip.adapters; "
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'llama_index'))))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "name", "extra"),
    [
        ("langchain_core", "RagzipDocumentCompressor", "ragzip[langchain]"),
        ("llama_index", "RagzipNodePostprocessor", "ragzip[llamaindex]"),
    ],
)
def test_missing_extra_raises_a_clear_error(module: str, name: str, extra: str) -> None:
    done = run_python(
        BLOCK.format(module=module) + "import ragzip.adapters\n"
        "from ragzip.errors import MissingDependencyError\n"
        "try:\n"
        f"    ragzip.adapters.{name}\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert extra in done.stdout
