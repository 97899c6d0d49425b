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

import copy
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ragzip._optional import require
from ragzip.adapters._common import CompressorFields
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.tokens import get_counter
from ragzip.retrievers.base import Retriever, check_query
from ragzip.types import CompressedDocument, CompressionResult, Document, ScoredDocument

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
        Callbacks,
    )
    from langchain_core.documents import BaseDocumentCompressor
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever, RetrieverLike
    from langchain_core.runnables import Runnable, RunnableLambda
    from pydantic import ConfigDict, Field, field_validator
except ImportError:  # pragma: no cover - exercised only without the extra
    require("langchain_core", "the LangChain adapters")  # raises, naming ragzip[langchain]
    raise

__all__ = ["LangChainRetrieverAdapter", "RagzipDocumentCompressor", "RagzipRetriever"]

PROVENANCE_KEY = "ragzip"
"""Metadata key under which compressed documents carry where they came from."""


def _copy_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deep copy, so callers can edit what they get back without touching what they gave."""
    try:
        return copy.deepcopy(dict(metadata or {}))
    except Exception:  # objects that refuse deep copies: fall back to a new top-level dict
        return dict(metadata or {})


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
        pieces: dict[int, list[CompressedDocument]] = {}
        for piece in result.documents:
            index = _index_of(piece.source_id, len(inputs))
            pieces.setdefault(index, []).append(piece)
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
            metadata = _copy_metadata(source.metadata)
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


_LANGCHAIN_INVOKE_KWARGS = frozenset({"verbose"})
"""Keywords ``BaseRetriever.invoke`` reads itself yet still hands to the retrieval method."""


def _to_langchain(hit: ScoredDocument) -> LCDocument:
    doc = hit.document
    metadata = _copy_metadata(doc.metadata)
    metadata["relevance_score"] = float(hit.score)
    metadata["retrieval_rank"] = int(hit.rank)
    return LCDocument(page_content=doc.text, metadata=metadata, id=doc.id or None)


class RagzipRetriever(BaseRetriever):
    """Any ragzip retriever (FAISS, BM25, hybrid...) as a LangChain retriever.

    Documents come back best first with the ragzip id as ``id``, a copy of the metadata, and
    the score and rank under ``relevance_score`` and ``retrieval_rank``.

    Args:
        retriever: A ragzip retriever (anything with ``retrieve`` and ``aretrieve``).
        k: Documents per query; ``invoke(query, k=...)`` (and ``ainvoke``) overrides it for
            one call.

    Example:
        >>> index = FaissRetriever("minilm")
        >>> index.add(docs)
        >>> retriever = RagzipRetriever(retriever=index, k=3)
        >>> retriever.invoke("Who discovered penicillin?")          # 3 documents
        >>> retriever.invoke("Who discovered penicillin?", k=1)     # 1 document
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = Field(default=4, ge=0)

    @field_validator("retriever", mode="before")
    @classmethod
    def _check_retriever(cls, value: Any) -> Any:
        if not callable(getattr(value, "retrieve", None)):
            raise ConfigError(
                f"retriever must be a ragzip retriever with retrieve(query, k), "
                f"got {type(value).__name__}"
            )
        return value

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        **kwargs: Any,
    ) -> list[LCDocument]:
        hits = self.retriever.retrieve(query, self._k_for_call(k, kwargs))
        return [_to_langchain(hit) for hit in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        **kwargs: Any,
    ) -> list[LCDocument]:
        hits = await self.retriever.aretrieve(query, self._k_for_call(k, kwargs))
        return [_to_langchain(hit) for hit in hits]

    def _k_for_call(self, k: int | None, kwargs: Mapping[str, Any]) -> int:
        """How many documents one call returns: ``invoke(query, k=...)`` or the default.

        Raises:
            InvalidInputError: ``k`` is not an int >= 0, or ``invoke`` got another keyword.
        """
        unknown = sorted(set(kwargs) - _LANGCHAIN_INVOKE_KWARGS)
        if unknown:
            raise InvalidInputError(
                f"RagzipRetriever.invoke got unexpected keyword arguments {unknown}: it takes "
                "only k (documents per query); set other options on the ragzip retriever"
            )
        if k is None:
            return self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k must be an int >= 0 (documents per query), got {k!r}")
        return k


class LangChainRetrieverAdapter:
    """Any LangChain retriever (or ``str -> list[Document]`` runnable) as a ragzip retriever,
    e.g. for :class:`~ragzip.middleware.pipeline.Pipeline`.

    The LangChain retriever decides how many documents it returns; the adapter keeps the first
    ``k``, so set the retriever's own ``k`` at least as high as the pipeline's ``top_k``.
    LangChain documents carry no score unless their metadata has one: a number under
    ``score_key`` is used, otherwise the score is ``1 / (rank + 1)``. Ids are the documents'
    ids (or their rank), made unique.

    Args:
        retriever: A LangChain ``BaseRetriever`` or any runnable from a query to documents.
        score_key: Metadata key holding a relevance score.

    Example:
        >>> from ragzip.middleware.pipeline import Pipeline
        >>> pipe = Pipeline("extractive", LangChainRetrieverAdapter(vectorstore.as_retriever()))
        >>> pipe.run("Who discovered penicillin?").context
    """

    name = "langchain"

    def __init__(self, retriever: RetrieverLike, *, score_key: str = "relevance_score") -> None:
        if not callable(getattr(retriever, "invoke", None)):
            raise ConfigError(
                "retriever must be a LangChain retriever or runnable with invoke(), "
                f"got {type(retriever).__name__}"
            )
        self.retriever = retriever
        self.score_key = score_key

    def retrieve(self, query: str, k: int = 10) -> list[ScoredDocument]:
        """The first ``k`` documents the LangChain retriever returns for ``query``.

        Raises:
            InvalidInputError: ``query`` is empty or not a string, or ``k`` is negative.
        """
        query, k = check_query(query, k)
        if k == 0:
            return []
        return self._scored(self.retriever.invoke(query), k)

    async def aretrieve(self, query: str, k: int = 10) -> list[ScoredDocument]:
        """Async twin of :meth:`retrieve`, through the LangChain retriever's ``ainvoke``."""
        query, k = check_query(query, k)
        if k == 0:
            return []
        return self._scored(await self.retriever.ainvoke(query), k)

    def add(self, documents: Iterable[Document | str | Mapping[str, Any]]) -> None:
        """Adds documents through the LangChain retriever's ``add_documents``, if it has one.

        Raises:
            ConfigError: the wrapped retriever cannot add documents.
        """
        add_documents = getattr(self.retriever, "add_documents", None)
        if not callable(add_documents):
            raise ConfigError(
                f"the wrapped {type(self.retriever).__name__} has no add_documents(); "
                "add documents to it through LangChain"
            )
        docs = [Document.from_any(d, i) for i, d in enumerate(documents)]
        add_documents(
            [
                LCDocument(page_content=d.text, metadata=_copy_metadata(d.metadata), id=d.id)
                for d in docs
            ]
        )

    def _scored(self, documents: Sequence[LCDocument], k: int) -> list[ScoredDocument]:
        hits: list[ScoredDocument] = []
        seen: set[str] = set()
        for rank, doc in enumerate(list(documents)[:k]):
            doc_id = str(doc.id) if doc.id else str(rank)
            if doc_id in seen:
                doc_id = f"{doc_id}#{rank}"
            seen.add(doc_id)
            raw = doc.metadata.get(self.score_key)
            score = (
                float(raw)
                if isinstance(raw, numbers.Real) and not isinstance(raw, bool)
                else 1.0 / (rank + 1)
            )
            document = Document(doc.page_content, id=doc_id, metadata=_copy_metadata(doc.metadata))
            hits.append(ScoredDocument(document=document, score=score, rank=rank))
        return hits
