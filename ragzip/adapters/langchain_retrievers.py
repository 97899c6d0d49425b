"""LangChain retrievers: a ragzip retriever inside LangChain, and a LangChain one inside ragzip.

* :class:`RagzipRetriever` is a LangChain ``BaseRetriever`` over any ragzip retriever.
* :class:`LangChainRetrieverAdapter` lets a ragzip :class:`~ragzip.middleware.pipeline.Pipeline`
  retrieve with any LangChain retriever.

Both are importable from :mod:`ragzip.adapters.langchain` too. Needs
``pip install 'ragzip[langchain]'``.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ragzip._optional import require
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.retrievers.base import Retriever, check_query
from ragzip.types import Document, ScoredDocument

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever, RetrieverLike
    from pydantic import ConfigDict, Field, field_validator
except ImportError:  # pragma: no cover - exercised only without the extra
    require("langchain_core", "the LangChain adapters")  # raises, naming ragzip[langchain]
    raise

__all__ = ["LangChainRetrieverAdapter", "RagzipRetriever", "copy_metadata"]


def copy_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deep copy, so callers can edit what they get back without touching what they gave."""
    try:
        return copy.deepcopy(dict(metadata or {}))
    except Exception:  # objects that refuse deep copies: fall back to a new top-level dict
        return dict(metadata or {})


_LANGCHAIN_INVOKE_KWARGS = frozenset({"verbose"})
"""Keywords ``BaseRetriever.invoke`` reads itself yet still hands to the retrieval method."""


def _to_langchain(hit: ScoredDocument) -> LCDocument:
    doc = hit.document
    metadata = copy_metadata(doc.metadata)
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
                LCDocument(page_content=d.text, metadata=copy_metadata(d.metadata), id=d.id)
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
            document = Document(doc.page_content, id=doc_id, metadata=copy_metadata(doc.metadata))
            hits.append(ScoredDocument(document=document, score=score, rank=rank))
        return hits
