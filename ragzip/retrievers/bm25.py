"""Lexical retrieval with BM25 (the ``bm25s`` library), no stemmer and no downloads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ragzip._optional import require
from ragzip.errors import ConfigError, IndexStoreError
from ragzip.retrievers._store import (
    MANIFEST,
    atomic_directory,
    read_documents,
    read_manifest,
    write_documents,
)
from ragzip.retrievers.base import BaseRetriever, DocumentLike, normalize_documents
from ragzip.retrievers.registry import retrievers
from ragzip.types import Document

__all__ = ["BM25Retriever"]

_FORMAT = "ragzip.bm25"
_FORMAT_VERSION = 1
_DOCUMENTS = "documents.jsonl"


@retrievers.register("bm25")
class BM25Retriever(BaseRetriever):
    """Ranks documents by BM25 over lowercased word tokens.

    Text is split like scikit-learn's ``CountVectorizer`` (words of two or more characters,
    lowercased) and stopwords are dropped; there is no stemming. Only documents that share
    at least one term with the query are returned (a BM25 score of 0 is no match).

    :meth:`add` re-indexes the whole corpus (BM25's term statistics depend on every
    document), which costs about a second per 100k short documents: add in large batches.
    :meth:`save` writes the documents and settings; :meth:`load` re-indexes them.

    Args:
        k1: Term-frequency saturation.
        b: Length normalisation (0 = none, 1 = full).
        method: BM25 variant: ``"lucene"``, ``"robertson"``, ``"atire"``, ``"bm25l"`` or
            ``"bm25+"``.
        stopwords: A language code of ``bm25s`` (``"en"``, ``"de"``, ``"fr"``, ...), a list of
            words, or ``None`` to keep every word.

    Example:
        >>> r = BM25Retriever.from_documents(["Paris is in France.", "Rome is in Italy."])
        >>> r.retrieve("capital of France", k=1)[0].document.id
        '0'
    """

    name = "bm25"

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene",
        stopwords: str | Sequence[str] | None = "en",
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if method not in ("lucene", "robertson", "atire", "bm25l", "bm25+"):
            raise ConfigError(
                f"unknown BM25 method {method!r}; use lucene, robertson, atire, bm25l or bm25+"
            )
        self.k1 = float(k1)
        self.b = float(b)
        self.method = method
        self.stopwords: str | list[str] | None = (
            stopwords if stopwords is None or isinstance(stopwords, str) else list(stopwords)
        )
        self._documents: list[Document] = []
        self._ids: set[str] = set()
        self._index: Any = None  # bm25s.BM25, or None while no document has a term
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b, "method": self.method, "stopwords": self.stopwords}

    def __len__(self) -> int:
        return len(self._documents)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids

    @property
    def documents(self) -> tuple[Document, ...]:
        """The indexed documents, in insertion order."""
        return tuple(self._documents)

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        bm25s = require("bm25s", "the BM25 retriever")
        try:
            tokens = bm25s.tokenize(
                texts, stopwords=self.stopwords, return_ids=False, show_progress=False
            )
        except ValueError as exc:
            raise ConfigError(f"BM25 stopwords {self.stopwords!r}: {exc}") from exc
        return [list(t) for t in tokens]

    def add(self, documents: Iterable[DocumentLike]) -> None:
        """Adds documents and re-indexes the corpus.

        Args:
            documents: Strings, dicts with ``text`` (``id``, ``metadata``) or documents.
                Documents without an id get their position in the index as id.

        Raises:
            InvalidInputError: an id is repeated or already indexed (nothing is added).
        """
        with self._lock:
            new = normalize_documents(documents, self._ids, len(self._documents))
            if not new:
                return
            corpus = self._documents + new
            self._index = self._build(corpus)
            self._documents = corpus
            self._ids.update(d.id for d in new)

    def _build(self, corpus: list[Document]) -> Any:
        tokens = self._tokenize([d.text for d in corpus])
        if not any(tokens):
            return None  # nothing but stopwords and punctuation: nothing can match
        bm25s = require("bm25s", "the BM25 retriever")
        index = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        index.index(tokens, show_progress=False)
        return index

    def _search(self, query: str, k: int) -> list[tuple[Document, float]]:
        terms = self._tokenize([query])[0]
        with self._lock:
            index, documents = self._index, self._documents
        if index is None or not terms:
            return []
        term_ids = index.get_tokens_ids(terms)
        if not term_ids:
            return []
        scores = np.asarray(index.get_scores_from_ids(term_ids), dtype=np.float64)
        matching = np.flatnonzero(scores > 0)
        # stable sort: ties keep insertion order
        best = matching[np.argsort(-scores[matching], kind="stable")][:k]
        return [(documents[i], float(scores[i])) for i in best]

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Writes the documents and settings to ``directory`` (replaced atomically).

        Raises:
            IndexStoreError: the directory cannot be written, or metadata is not JSON.
        """
        with self._lock:
            documents = list(self._documents)
        manifest = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "count": len(documents),
            "params": self.params(),
        }
        with atomic_directory(directory) as tmp:
            write_documents(tmp / _DOCUMENTS, documents)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> BM25Retriever:
        """Reads a retriever written by :meth:`save` and re-indexes it.

        Raises:
            IndexStoreError: the directory is missing, incomplete or not a BM25 index.
        """
        path = Path(directory)
        manifest = read_manifest(path / MANIFEST, _FORMAT, _FORMAT_VERSION)
        documents = read_documents(path / _DOCUMENTS, manifest["count"])
        params = manifest.get("params")
        if not isinstance(params, dict):
            raise IndexStoreError(f"{path / MANIFEST} has no 'params' object; save it again")
        try:
            retriever = cls(**params)
        except (TypeError, ConfigError) as exc:
            raise IndexStoreError(f"{path / MANIFEST} has invalid params: {exc}") from exc
        retriever.add(documents)
        return retriever
