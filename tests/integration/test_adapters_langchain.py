"""The LangChain adapters end to end on real components: FAISS over the packaged MiniLM, the
extractive compressor, langchain-classic's ContextualCompressionRetriever and an LCEL chain.

The plumbing (ids, errors, options) is tested quickly in
tests/unit/test_adapters_langchain_fake.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough

from ragzip.adapters.langchain import (
    LangChainRetrieverAdapter,
    RagzipDocumentCompressor,
    RagzipRetriever,
)
from ragzip.compressors.extractive import ExtractiveCompressor
from ragzip.middleware.pipeline import Pipeline
from ragzip.retrievers.faiss_index import FaissRetriever
from ragzip.testing import DOCUMENTS, QUESTIONS
from ragzip.types import Budget

pytestmark = pytest.mark.integration

QUESTION = QUESTIONS[0]  # Who discovered penicillin? -> Alexander Fleming


@pytest.fixture(scope="module")
def index() -> FaissRetriever:
    faiss = FaissRetriever("minilm")
    faiss.add(DOCUMENTS)
    return faiss


@pytest.fixture(scope="module")
def compressor() -> RagzipDocumentCompressor:
    return RagzipDocumentCompressor(ExtractiveCompressor(encoder="minilm"), budget=Budget(ratio=4))


class ListRetriever(BaseRetriever):
    """A LangChain retriever over a list: the documents sharing most words with the query."""

    documents: list[LCDocument]
    k: int = 3

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        words = {w.strip("?.,").lower() for w in query.split()}

        def overlap(doc: LCDocument) -> int:
            return len(words & {w.strip(".,").lower() for w in doc.page_content.split()})

        return sorted(self.documents, key=overlap, reverse=True)[: self.k]


class PromptRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.extend(str(m.content) for batch in messages for m in batch)


def lc_documents() -> list[LCDocument]:
    return [
        LCDocument(page_content=d.text, metadata=copy.deepcopy(dict(d.metadata)), id=d.id)
        for d in DOCUMENTS
    ]


def test_compressor_keeps_the_answer_and_metadata(compressor: RagzipDocumentCompressor) -> None:
    docs = lc_documents()
    snapshot = copy.deepcopy(docs)
    out = compressor.compress_documents(docs, QUESTION.question)
    assert docs == snapshot
    assert out and any(QUESTION.answer in d.page_content for d in out)
    positions = [d.metadata["ragzip"]["source_index"] for d in out]
    assert positions == sorted(positions)  # input order
    total_before = sum(len(d.page_content.split()) for d in docs)
    assert sum(len(d.page_content.split()) for d in out) * 3 < total_before
    for doc in out:
        source = docs[doc.metadata["ragzip"]["source_index"]]
        assert doc.id == source.id
        assert {k: v for k, v in doc.metadata.items() if k != "ragzip"} == source.metadata
        provenance = doc.metadata["ragzip"]
        assert provenance["compressor"] == "extractive"
        assert provenance["context_ratio"] >= 4
        for start, end in provenance["spans"]:
            assert source.page_content[start:end].strip() in doc.page_content


def test_contextual_compression_retriever_over_faiss(
    index: FaissRetriever, compressor: RagzipDocumentCompressor
) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=RagzipRetriever(retriever=index, k=4)
    )
    for question in QUESTIONS:
        out = retriever.invoke(question.question)
        assert out[0].id == question.document_id, question
        assert question.answer in out[0].page_content
        assert out[0].metadata["retrieval_rank"] == 0
        assert out[0].metadata["title"] == next(
            d.title for d in DOCUMENTS if d.id == question.document_id
        )
        retrieved = index.retrieve(question.question, 4)
        words_before = sum(len(h.document.text.split()) for h in retrieved)
        assert sum(len(d.page_content.split()) for d in out) * 3 < words_before
        assert all(d.metadata["ragzip"]["context_ratio"] >= 4 for d in out)


async def test_async_path_matches_sync(
    index: FaissRetriever, compressor: RagzipDocumentCompressor
) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=RagzipRetriever(retriever=index, k=4)
    )
    sync = retriever.invoke(QUESTION.question)
    async_ = await retriever.ainvoke(QUESTION.question)
    assert [(d.id, d.page_content) for d in async_] == [(d.id, d.page_content) for d in sync]
    docs = lc_documents()
    direct = await compressor.acompress_documents(docs, QUESTION.question)
    assert [d.page_content for d in direct] == [
        d.page_content for d in compressor.compress_documents(docs, QUESTION.question)
    ]


async def test_lcel_chain_prompt_holds_the_compressed_context(
    index: FaissRetriever, compressor: RagzipDocumentCompressor
) -> None:
    retriever = RagzipRetriever(retriever=index, k=4)
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer from the context.\n\nContext:\n{context}"),
            ("human", "{question}"),
        ]
    )
    llm = FakeListChatModel(responses=["Alexander Fleming discovered it."])
    chain = (
        {"context": retriever, "question": RunnablePassthrough()}
        | compressor.as_runnable()
        | prompt
        | llm
        | StrOutputParser()
    )
    recorder = PromptRecorder()
    answer = chain.invoke(QUESTION.question, config={"callbacks": [recorder]})
    assert answer == "Alexander Fleming discovered it."
    system, human = recorder.prompts
    assert human == QUESTION.question
    context = system.split("Context:\n", 1)[1]
    assert QUESTION.answer in context
    compressed = compressor.compress_documents(
        retriever.invoke(QUESTION.question), QUESTION.question
    )
    assert context == "\n\n".join(d.page_content for d in compressed)
    raw = "\n\n".join(d.page_content for d in retriever.invoke(QUESTION.question))
    assert len(context) * 2 < len(raw)

    recorder.prompts.clear()
    assert await chain.ainvoke(QUESTION.question, config={"callbacks": [recorder]}) == answer
    assert recorder.prompts == [system, human]


async def test_langchain_retriever_inside_a_ragzip_pipeline() -> None:
    adapter = LangChainRetrieverAdapter(ListRetriever(documents=lc_documents(), k=3))
    pipe = Pipeline(ExtractiveCompressor(encoder="minilm"), adapter, budget=3, top_k=3)
    question = QUESTIONS[4]  # In which city was jazz born? -> New Orleans
    out = pipe.run(question.question)
    assert len(out.retrieved) == 3
    assert question.document_id in [h.document.id for h in out.retrieved]
    assert question.answer in out.context
    assert question.answer in out.messages[-1]["content"]
    assert (await pipe.arun(question.question)).context == out.context
