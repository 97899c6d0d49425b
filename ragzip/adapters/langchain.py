"""LangChain adapters: ragzip compressors and retrievers inside LangChain, and back.

* :class:`RagzipDocumentCompressor` is a LangChain ``BaseDocumentCompressor``: use it in
  ``ContextualCompressionRetriever`` or, through :meth:`~RagzipDocumentCompressor.as_runnable`,
  as a step of an LCEL chain.
* :class:`RagzipRetriever` is a LangChain ``BaseRetriever`` over any ragzip retriever.
* :class:`LangChainRetrieverAdapter` lets a ragzip :class:`~ragzip.middleware.pipeline.Pipeline`
  retrieve with any LangChain retriever.

Needs ``pip install 'ragzip[langchain]'``; importing this module without it raises
:class:`~ragzip.errors.MissingDependencyError`.

Example:
    >>> from ragzip.adapters.langchain import RagzipDocumentCompressor, RagzipRetriever
    >>> from ragzip.retrievers.faiss_index import FaissRetriever
    >>> from langchain_classic.retrievers import ContextualCompressionRetriever
    >>> index = FaissRetriever("minilm")
    >>> index.add(["Paris is the capital of France.", "Bees make honey."])
    >>> retriever = ContextualCompressionRetriever(
    ...     base_compressor=RagzipDocumentCompressor("extractive", budget=4),
    ...     base_retriever=RagzipRetriever(retriever=index, k=5),
    ... )
    >>> retriever.invoke("What is the capital of France?")[0].page_content
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ragzip._optional import require
from ragzip.adapters._common import PROVENANCE_KEY, CompressorFields
from ragzip.adapters.langchain_retrievers import (
    LangChainRetrieverAdapter,
    RagzipRetriever,
    copy_metadata,
)
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.tokens import get_counter
from ragzip.types import CompressionResult, Document

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor
    from langchain_core.documents import Document as LCDocument
    from langchain_core.runnables import Runnable, RunnableLambda
    from pydantic import ConfigDict
except ImportError:  # pragma: no cover - exercised only without the extra
    require("langchain_core", "the LangChain adapters")  # raises, naming ragzip[langchain]
    raise

__all__ = ["LangChainRetrieverAdapter", "RagzipDocumentCompressor", "RagzipRetriever"]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class RagzipDocumentCompressor(CompressorFields, BaseDocumentCompressor):
    """Runs a ragzip compressor as a LangChain document compressor.

    Each kept input document comes back, in input order, as a new LangChain document whose
    ``page_content`` is what remains of it, whose ``id`` is the input's and whose metadata is
    a copy of the input's plus a ``"ragzip"`` entry: ``source_id`` (the input's id, or its
    position when it has none), ``source_index``, ``spans`` (``[start, end]`` character ranges
    of the input that were kept), ``score``, ``ratio`` (this document's tokens before / after),
    ``context_ratio`` (the whole call's), ``compressor`` and ``truncated``. Documents that kept
    nothing are left out. Inputs are never modified.

    Args:
        compressor: A ragzip compressor, a :class:`~ragzip.middleware.pipeline.Pipeline` (its
            compressor, and its budget unless ``budget`` is given), a registry name such as
            ``"extractive"`` or a spec dict. May be passed positionally.
        budget: How much may remain: a :class:`~ragzip.types.Budget`, a ratio, or a dict of
            its fields. Defaults to a ratio of 4.

    Example:
        >>> compressor = RagzipDocumentCompressor("extractive", budget={"ratio": 4})
        >>> compressor.compress_documents(docs, "Who discovered penicillin?")
        >>> chain = (
        ...     {"context": retriever, "question": RunnablePassthrough()}
        ...     | compressor.as_runnable()
        ...     | prompt
        ...     | llm
        ... )
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # -- BaseDocumentCompressor --------------------------------------------------------------
    def compress_documents(
        self,
        documents: Sequence[LCDocument],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[LCDocument]:
        """Compresses ``documents`` for ``query`` within :attr:`budget`.

        Args:
            documents: LangChain documents; not modified.
            query: What the context has to answer.
            callbacks: Accepted for the LangChain interface; unused.

        Returns:
            New documents, in input order, for the inputs that kept any text.

        Raises:
            InvalidInputError: ``documents`` is not a list of LangChain documents.
        """
        inputs = _check_documents(documents)
        if not inputs:
            return []
        result = self.compressor.compress(query, _to_ragzip(inputs), self.budget)
        return self._from_result(inputs, result)

    async def acompress_documents(
        self,
        documents: Sequence[LCDocument],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[LCDocument]:
        """Async twin of :meth:`compress_documents`, through the compressor's ``acompress``."""
        inputs = _check_documents(documents)
        if not inputs:
            return []
        result = await self.compressor.acompress(query, _to_ragzip(inputs), self.budget)
        return self._from_result(inputs, result)

    # -- LCEL --------------------------------------------------------------------------------
    def as_runnable(
        self,
        *,
        documents_key: str = "context",
        query_key: str = "question",
        as_text: bool = True,
        separator: str = "\n\n",
    ) -> Runnable[Mapping[str, Any], dict[str, Any]]:
        """A chain step that compresses ``input[documents_key]`` for ``input[query_key]``.

        It takes a dict such as ``{"context": [documents], "question": "..."}`` (what
        ``{"context": retriever, "question": RunnablePassthrough()}`` produces) and returns the
        same dict with the documents compressed: joined into one string with ``separator``
        when ``as_text`` (ready for a prompt template), or as LangChain documents otherwise.
        ``ainvoke`` runs the compressor's native async path.

        Example:
            >>> chain = (
            ...     {"context": retriever, "question": RunnablePassthrough()}
            ...     | compressor.as_runnable()
            ...     | ChatPromptTemplate.from_template("{context}\\n\\nQuestion: {question}")
            ...     | llm
            ... )
        """

        def unpack(inputs: Mapping[str, Any]) -> tuple[Sequence[LCDocument], str]:
            if not isinstance(inputs, Mapping) or documents_key not in inputs:
                raise InvalidInputError(
                    f"the ragzip step takes a dict with {documents_key!r} (documents) and "
                    f"{query_key!r} (the query), got {type(inputs).__name__}"
                    + (f" with keys {sorted(inputs)}" if isinstance(inputs, Mapping) else "")
                )
            query = inputs.get(query_key)
            if not isinstance(query, str):
                raise InvalidInputError(
                    f"the ragzip step needs the query as a string under {query_key!r}, "
                    f"got {type(query).__name__}"
                )
            return inputs[documents_key], query

        def pack(inputs: Mapping[str, Any], docs: Sequence[LCDocument]) -> dict[str, Any]:
            value: Any = separator.join(d.page_content for d in docs) if as_text else list(docs)
            return {**inputs, documents_key: value}

        def step(inputs: Mapping[str, Any]) -> dict[str, Any]:
            docs, query = unpack(inputs)
            return pack(inputs, self.compress_documents(docs, query))

        async def astep(inputs: Mapping[str, Any]) -> dict[str, Any]:
            docs, query = unpack(inputs)
            return pack(inputs, await self.acompress_documents(docs, query))

        return RunnableLambda(step, afunc=astep, name="RagzipCompress")

    # -- conversion --------------------------------------------------------------------------
    def _from_result(self, inputs: list[LCDocument], result: CompressionResult) -> list[LCDocument]:
        groups = result.by_source().items()
        pieces = {_index_of(source, len(inputs)): kept for source, kept in groups}
        counter = self._counter(result)
        context_ratio = _finite(result.ratio)
        out = []
        for index in sorted(pieces):
            source, kept = inputs[index], pieces[index]
            text = " ".join(p.text for p in kept)
            scores = [float(p.score) for p in kept if p.score is not None]
            ratio = None
            if counter is not None:
                after = counter.count(text)
                ratio = _finite(counter.count(source.page_content) / after) if after else None
            provenance = {
                "source_id": source.id if source.id is not None else str(index),
                "source_index": index,
                "spans": [[s.start, s.end] for p in kept for s in p.spans],
                "score": max(scores) if scores else None,
                "ratio": ratio,
                "context_ratio": context_ratio,
                "compressor": result.compressor,
                "truncated": any(bool(p.metadata.get("truncated")) for p in kept),
            }
            metadata = copy_metadata(source.metadata)
            metadata[PROVENANCE_KEY] = provenance
            out.append(LCDocument(page_content=text, metadata=metadata, id=source.id))
        return out

    def _counter(self, result: CompressionResult) -> Any:
        counter = getattr(self.compressor, "counter", None)
        if counter is not None and hasattr(counter, "count"):
            return counter
        try:
            return get_counter(result.tokenizer)
        except ConfigError:
            return None


def _check_documents(documents: Sequence[LCDocument]) -> list[LCDocument]:
    if documents is None or isinstance(documents, str | bytes | Mapping):
        raise InvalidInputError("documents must be a list of LangChain documents")
    inputs = list(documents)
    for i, doc in enumerate(inputs):
        if not isinstance(doc, LCDocument):
            raise InvalidInputError(
                f"document {i} must be a langchain_core Document, got {type(doc).__name__}"
            )
    return inputs


def _to_ragzip(documents: Iterable[LCDocument]) -> list[Document]:
    # Positions as ids: unique by construction, so results map back to inputs exactly.
    return [
        Document(doc.page_content, id=str(i), metadata=doc.metadata)
        for i, doc in enumerate(documents)
    ]


def _index_of(source_id: str, size: int) -> int:
    if source_id.isdigit() and int(source_id) < size:
        return int(source_id)
    raise RuntimeError(f"the compressor returned an unknown source id {source_id!r}")
