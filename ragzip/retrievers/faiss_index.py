"""Dense retrieval: exact FAISS search over bi-encoder embeddings, saved to a directory.

One retriever with its persistence (save, load, atomic replace, metadata checks): the on-disk
format and the in-memory index must change together, so they share this module.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ragzip._optional import require
from ragzip.encoders.bi_encoder import document_text, get_bi_encoder
from ragzip.errors import ConfigError, IndexStoreError, InvalidInputError
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

__all__ = ["FaissRetriever", "TextEncoder"]

logger = logging.getLogger(__name__)

_FORMAT = "ragzip.faiss"
_FORMAT_VERSION = 1
_INDEX_FILE = "index.faiss"
_DOCUMENTS = "documents.jsonl"
_GPU_MAX_K = 2048  # faiss GPU flat search returns at most this many neighbours

Metric = Literal["ip", "l2"]


@runtime_checkable
class TextEncoder(Protocol):
    """What the retriever needs of an encoder (:class:`~ragzip.encoders.BiEncoder` fits)."""

    model_name: str

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@retrievers.register("faiss")
class FaissRetriever(BaseRetriever):
    """Nearest neighbours of the query embedding among the document embeddings.

    The index is exact (``IndexFlatIP`` over L2-normalised vectors, i.e. cosine similarity,
    or ``IndexFlatL2`` with ``metric="l2"``, scored as the negative squared distance so that
    higher is better). The encoder loads on the first :meth:`add` or query, not here.

    Adds and searches are guarded by a lock, so one retriever can serve many threads; an add
    embeds outside the lock, searches only wait for the final append.

    Args:
        encoder: A model name for :func:`~ragzip.encoders.get_bi_encoder` (``"minilm"``) or
            an encoder object with ``encode(texts)``, ``dimension`` and ``model_name``.
        metric: ``"ip"`` (cosine) or ``"l2"``.
        use_gpu: ``True`` puts the index on every GPU faiss sees (needs ``ragzip[gpu]``),
            ``None`` does so only when one is available, ``False`` keeps it on the CPU.
        batch_size: Texts embedded per step of :meth:`add`.
        show_progress: Show a tqdm bar while :meth:`add` embeds.

    Example:
        >>> r = FaissRetriever.from_documents(
        ...     [{"id": "paris", "text": "Paris is the capital of France."}], encoder="minilm"
        ... )
        >>> r.retrieve("Which city is France's capital?", k=1)[0].document.id
        'paris'
        >>> r.save("indexes/wiki")
        >>> same = FaissRetriever.load("indexes/wiki")
    """

    name = "faiss"

    def __init__(
        self,
        encoder: str | TextEncoder = "minilm",
        *,
        metric: Metric = "ip",
        use_gpu: bool | None = None,
        batch_size: int = 256,
        show_progress: bool = False,
    ) -> None:
        if metric not in ("ip", "l2"):
            raise ConfigError(f"metric must be 'ip' or 'l2', got {metric!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(encoder, str):
            encoder = get_bi_encoder(encoder)
        elif not isinstance(encoder, TextEncoder):
            raise ConfigError(
                "encoder must be a model name or an object with encode(), dimension and "
                f"model_name, got {type(encoder).__name__}"
            )
        self.encoder: TextEncoder = encoder
        self.metric: Metric = metric
        self.use_gpu = use_gpu
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._index: Any = None  # created on the first add, once the dimension is known
        self._on_gpu = False
        self._documents: list[Document] = []
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.model_name,
            "metric": self.metric,
            "use_gpu": self.use_gpu,
            "batch_size": self.batch_size,
            "show_progress": self.show_progress,
        }

    def __len__(self) -> int:
        return len(self._documents)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids

    @property
    def documents(self) -> tuple[Document, ...]:
        """The indexed documents, in insertion order (row ``i`` of the index)."""
        return tuple(self._documents)

    @property
    def on_gpu(self) -> bool:
        """Whether the index lives on GPU memory."""
        return self._on_gpu

    # -- indexing ----------------------------------------------------------------------------
    def add(self, documents: Iterable[DocumentLike], *, show_progress: bool | None = None) -> None:
        """Embeds and indexes documents.

        Args:
            documents: Strings, dicts with ``text`` (``id``, ``metadata``) or documents.
                Documents without an id get their row number in the index as id.
            show_progress: Overrides the constructor's ``show_progress`` for this call.

        Raises:
            InvalidInputError: an id is repeated or already indexed (nothing is added).
            ConfigError: the encoder's dimension differs from the index's.
        """
        with self._lock:
            new = normalize_documents(documents, self._ids, len(self._documents))
        if not new:
            return
        texts = [document_text(d) for d in new]
        vectors = self._embed(texts, show_progress)
        with self._lock:
            clash = next((d.id for d in new if d.id in self._ids), None)
            if clash is not None:  # another thread added the same id meanwhile
                raise InvalidInputError(
                    f"duplicate document id {clash!r}: ids must be unique in a retriever "
                    "(nothing was added)"
                )
            if self._index is None:
                self._index = self._to_device(self._new_index(vectors.shape[1]))
            elif vectors.shape[1] != self._index.d:
                raise ConfigError(
                    f"the encoder gives {vectors.shape[1]}-dim vectors but the index holds "
                    f"{self._index.d}-dim ones; use the encoder the index was built with"
                )
            self._index.add(vectors)
            self._documents.extend(new)
            self._ids.update(d.id for d in new)
        self._prime(texts, vectors)

    def _prime(self, texts: list[str], vectors: np.ndarray) -> None:
        """Shares the document vectors with the encoder's cache, so a compressor's document
        stage on the same encoder reuses them instead of encoding retrieved documents again."""
        prime = getattr(self.encoder, "prime", None)
        if prime is not None and self.metric == "ip":
            prime(texts, vectors)

    def _embed(self, texts: list[str], show_progress: bool | None = None) -> np.ndarray:
        show = self.show_progress if show_progress is None else show_progress
        starts = range(0, len(texts), self.batch_size)
        if show:
            from ragzip.progress import progress_bar

            starts = progress_bar(starts, desc="Embedding", unit="batch")
        parts = [self.encoder.encode(texts[s : s + self.batch_size]) for s in starts]
        vectors: np.ndarray = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ConfigError(
                f"the encoder returned shape {vectors.shape} for {len(texts)} texts; "
                "it must return one row per text"
            )
        if self.metric == "ip":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0  # a zero vector stays zero
            vectors = np.ascontiguousarray(vectors / norms, dtype=np.float32)
        return vectors

    def _new_index(self, dimension: int) -> Any:
        faiss = _faiss()
        if self.metric == "ip":
            return faiss.IndexFlatIP(dimension)
        return faiss.IndexFlatL2(dimension)

    def _to_device(self, index: Any) -> Any:
        faiss = _faiss()
        gpus = _gpu_count(faiss)
        if self.use_gpu and gpus == 0:
            raise ConfigError(
                "use_gpu=True but faiss sees no GPU (a faiss-cpu build or no CUDA device); "
                "install ragzip[gpu] on a machine with a GPU, or pass use_gpu=None"
            )
        if self.use_gpu is False or gpus == 0:
            self._on_gpu = False
            return index
        self._on_gpu = True
        return faiss.index_cpu_to_all_gpus(index)

    # -- search ------------------------------------------------------------------------------
    def _search(self, query: str, k: int) -> list[tuple[Document, float]]:
        if not self._documents:
            return []  # without embedding the query, so an empty index loads no model
        vector = self._embed([query])
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return []
            if vector.shape[1] != self._index.d:
                raise ConfigError(
                    f"the encoder gives {vector.shape[1]}-dim vectors but the index holds "
                    f"{self._index.d}-dim ones; use the encoder the index was built with"
                )
            n = min(k, self._index.ntotal, _GPU_MAX_K if self._on_gpu else k)
            scores, rows = self._index.search(vector, n)
            documents = self._documents
        sign = 1.0 if self.metric == "ip" else -1.0
        return [
            (documents[int(row)], sign * float(score))
            for score, row in zip(scores[0], rows[0], strict=True)
            if row >= 0
        ]

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Writes the index, the documents and a manifest to ``directory``, atomically.

        The files are ``index.faiss`` (always a CPU index), ``documents.jsonl`` and
        ``manifest.json`` (format version, encoder, dimension, metric, count). They are
        written to a temporary directory beside ``directory`` that then replaces it. Saving an
        empty retriever loads the encoder to learn the dimension.

        Raises:
            IndexStoreError: the directory cannot be written, or metadata is not JSON.
        """
        faiss = _faiss()
        with self._lock:
            index = self._index
            cpu_index = faiss.index_gpu_to_cpu(index) if self._on_gpu else index
            documents = list(self._documents)
        if cpu_index is None:
            cpu_index = self._new_index(self.encoder.dimension)
        manifest = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "encoder": self.encoder.model_name,
            "dimension": int(cpu_index.d),
            "metric": self.metric,
            "count": len(documents),
            "index_type": type(cpu_index).__name__,
            "faiss_version": str(getattr(faiss, "__version__", "")),
        }
        with atomic_directory(directory) as tmp:
            try:
                faiss.write_index(cpu_index, str(tmp / _INDEX_FILE))
            except RuntimeError as exc:
                raise IndexStoreError(f"faiss cannot write the index: {exc}") from exc
            write_documents(tmp / _DOCUMENTS, documents)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls,
        directory: str | Path,
        encoder: str | TextEncoder | None = None,
        *,
        use_gpu: bool | None = None,
        **kwargs: Any,
    ) -> FaissRetriever:
        """Reads a retriever written by :meth:`save`.

        Args:
            directory: What :meth:`save` wrote.
            encoder: The encoder to embed queries with; ``None`` uses the one named in the
                manifest. It must give vectors of the index's dimension.
            use_gpu: As in the constructor.
            **kwargs: Other constructor arguments (``batch_size``, ``show_progress``).

        Raises:
            IndexStoreError: the directory is missing, incomplete, corrupt, or the encoder's
                dimension differs from the index's.
        """
        path = Path(directory)
        manifest = read_manifest(path / MANIFEST, _FORMAT, _FORMAT_VERSION)
        dimension, metric, count = (
            manifest.get("dimension"),
            manifest.get("metric"),
            manifest["count"],
        )
        if not isinstance(dimension, int) or dimension < 1 or metric not in ("ip", "l2"):
            raise IndexStoreError(
                f"{path / MANIFEST} has an invalid dimension {dimension!r} or metric {metric!r}"
            )
        name = manifest.get("encoder")
        if encoder is None:
            if not isinstance(name, str) or not name:
                raise IndexStoreError(
                    f"{path / MANIFEST} names no encoder; pass encoder= to load()"
                )
            encoder = name
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path / _INDEX_FILE))
        except RuntimeError as exc:
            raise IndexStoreError(
                f"cannot read {path / _INDEX_FILE}: {str(exc).strip().splitlines()[-1]}; "
                "the index is missing or corrupt, save it again"
            ) from exc
        if index.d != dimension or index.ntotal != count:
            raise IndexStoreError(
                f"{path / _INDEX_FILE} holds {index.ntotal} {index.d}-dim vectors but the "
                f"manifest says {count} {dimension}-dim ones; save the index again"
            )
        documents = read_documents(path / _DOCUMENTS, count)
        ids = {d.id for d in documents}
        if len(ids) != len(documents):
            raise IndexStoreError(f"{path / _DOCUMENTS} repeats document ids; save it again")
        retriever = cls(encoder, metric=metric, use_gpu=use_gpu, **kwargs)
        got = retriever.encoder.dimension
        if got != dimension:
            raise IndexStoreError(
                f"the index at {path} was built with {name!r} ({dimension}-dim vectors) but "
                f"encoder {retriever.encoder.model_name!r} gives {got}-dim vectors; load it "
                f"with encoder={name!r} or rebuild the index"
            )
        if isinstance(name, str) and name != retriever.encoder.model_name:
            logger.warning(
                "index at %s was built with encoder %r but is loaded with %r; "
                "results are meaningless unless both embed alike",
                path,
                name,
                retriever.encoder.model_name,
            )
        retriever._index = retriever._to_device(index)
        retriever._documents = documents
        retriever._ids = ids
        if retriever.metric == "ip" and index.ntotal and hasattr(index, "reconstruct_n"):
            retriever._prime(
                [document_text(d) for d in documents], index.reconstruct_n(0, index.ntotal)
            )
        return retriever


def _faiss() -> Any:
    return require("faiss", "the FAISS retriever")


def _gpu_count(faiss: Any) -> int:
    """GPUs faiss can use; 0 on faiss-cpu builds, which lack the GPU functions."""
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    if get_num_gpus is None or not hasattr(faiss, "index_cpu_to_all_gpus"):
        return 0
    return int(get_num_gpus())
