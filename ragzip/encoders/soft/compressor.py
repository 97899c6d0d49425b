"""Segment-wise soft compression (CompLLM, ARC-Encoder): text -> cached decoder embeddings.

Each document's tokens are cut into segments of ``segment_tokens``; every segment is encoded on
its own into ``ceil(n / rate)`` embeddings in the decoder's input space. Because segments do not
see each other, a segment's embeddings depend only on its tokens, the encoder and the decoder:
they are cached under that key (in memory, on disk or in Redis; see :mod:`ragzip.cache`) and
reused by every later query, request or replica that meets the same text.

This is a generation path, not a text compressor: the output is embeddings that only the
decoder they were trained for can read. Pair it with
:class:`ragzip.generators.soft.SoftGenerator` (local transformers) or send
:meth:`SoftGenerator.prompt_embeds` to a vLLM server started with ``--enable-prompt-embeds``.

Example:
    >>> soft = SoftCompressor("path/to/trained-encoder", cache="memory+redis://127.0.0.1:6379/0")
    >>> ctx = soft.encode(["Paris is the capital of France.", "..."])
    >>> ctx.ratio, ctx.cached_segments
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragzip.cache import ArrayCache, ByteCache, content_key, default_cache, make_cache
from ragzip.encoders.soft.config import DEFAULT_SOFT, SoftConfig, encoder_dir, shipped_soft
from ragzip.encoders.soft.context import SoftContext, SoftDocument
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.lm import load_lm, pick_device
from ragzip.models_cache import shared_model
from ragzip.types import Document, as_documents

__all__ = ["SoftCompressor", "load_decoder"]

_log = logging.getLogger(__name__)


def load_decoder(name: str, device: str | None = None, dtype: str = "auto") -> tuple[Any, Any]:
    """The frozen decoder and its tokenizer, loaded once per process and shared.

    The soft compressor and the soft generator must use the same weights, and a 135M model
    loaded twice wastes memory and start-up time; the bounded registry of
    :mod:`ragzip.models_cache` shares them, keyed by the normalised name, device and dtype.

    Raises:
        ConfigError: an unknown ``dtype`` or an empty model name.
        ModelNotFoundError: the decoder cannot be loaded.
    """
    device = pick_device(device, "soft compression")

    def load(normalized: str) -> tuple[Any, Any]:
        model, tokenizer, _ = load_lm(
            normalized,
            device=device,
            dtype=dtype,
            frozen=True,
            what="decoder",
            purpose="soft compression",
        )
        return model, tokenizer

    return shared_model("decoder", name, load, (device, dtype))


#: The name of an untrained encoder (the same as ``encoder=None``).
UNTRAINED = "untrained"


class SoftCompressor:
    """Encodes documents into soft embeddings, caching every segment by content.

    Args:
        encoder: ``None`` (the default): ``ragzip-soft``, the encoder ragzip ships (trained
            by distillation for SmolLM2-135M at rate 2; see its model card). A directory of
            an encoder trained with ``ragzip train-soft``, or ``"untrained"`` for mean
            pooling of token embeddings (works, but recovers much less of the full text's
            effect: see the README).
        decoder, rate, segment_tokens, kind, layers: Encoder settings of an ``"untrained"``
            encoder (a trained encoder brings its own; passing different ones is an error).
        cache: Where segment embeddings are cached: a :mod:`ragzip.cache` spec such as
            ``"memory"``, ``"disk:/var/cache/ragzip"``, ``"memory+redis://host:6379/0"``, a cache
            object, or ``None`` for the process-wide default (``RAGZIP_CACHE``).
        device: ``"cpu"``, ``"cuda"`` or ``None`` for automatic.
        batch_size: Segments per encoder forward pass.
    """

    name = "soft"

    def __init__(
        self,
        encoder: str | Path | None = None,
        *,
        decoder: str | None = None,
        rate: int | None = None,
        segment_tokens: int | None = None,
        kind: str | None = None,
        layers: int | None = None,
        cache: ByteCache | str | None = None,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        asked: dict[str, Any] = {
            "decoder": decoder,
            "rate": rate,
            "segment_tokens": segment_tokens,
            "kind": kind,
            "layers": layers,
        }
        asked = {k: v for k, v in asked.items() if v is not None}
        if encoder is None:
            encoder = DEFAULT_SOFT if shipped_soft() is not None else UNTRAINED
            if encoder == UNTRAINED:
                _log.warning("%s is missing from this installation; untrained", DEFAULT_SOFT)
        if str(encoder).strip().lower() == UNTRAINED:
            encoder = None
        if encoder is not None:
            self.config = SoftConfig.load(encoder_dir(encoder))
            clash = {k: v for k, v in asked.items() if getattr(self.config, k) != v}
            if clash:
                raise ConfigError(
                    f"the encoder at {encoder} was trained with "
                    f"{ {k: getattr(self.config, k) for k in clash} }, not {clash}; "
                    "leave these settings out, pass encoder='untrained' for an untrained one "
                    "with them, or train another encoder"
                )
        else:
            self.config = SoftConfig(**asked)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.encoder_path = str(encoder) if encoder is not None else None
        self.cache_spec = cache if isinstance(cache, str) or cache is None else None
        self._backend = make_cache(cache) if isinstance(cache, str) else cache
        self.device = device
        self.batch_size = batch_size
        self._models: tuple[Any, Any, Any] | None = None  # decoder, tokenizer, encoder
        self._fingerprint = ""
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"encoder": self.encoder_path, "device": self.device}
        if self.encoder_path is None:
            out.update(self.config.to_dict())
            for key in ("lora_rank", "hidden"):
                out.pop(key)
        if self.cache_spec is not None:
            out["cache"] = self.cache_spec
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.name, "params": self.params()}

    @property
    def cache(self) -> ArrayCache:
        backend = self._backend if self._backend is not None else default_cache()
        return ArrayCache(backend, "soft")

    # -- models --------------------------------------------------------------------------------
    def warm_up(self) -> None:
        self._load()

    @property
    def decoder(self) -> Any:
        return self._load()[0]

    @property
    def tokenizer(self) -> Any:
        return self._load()[1]

    @property
    def encoder(self) -> Any:
        return self._load()[2]

    def _load(self) -> tuple[Any, Any, Any]:
        if self._models is None:
            with self._lock:
                if self._models is None:
                    from ragzip.encoders.soft.encoder import load_encoder

                    model, tokenizer = load_decoder(self.config.decoder, self.device)
                    path = encoder_dir(self.encoder_path) if self.encoder_path else None
                    encoder = load_encoder(path, self.config, model)
                    encoder.to(model.device)
                    self._fingerprint = encoder.fingerprint()
                    self._models = (model, tokenizer, encoder)  # published last
        return self._models

    @property
    def fingerprint(self) -> str:
        self._load()
        return self._fingerprint

    # -- encoding ------------------------------------------------------------------------------
    def segment(self, text: str) -> list[list[int]]:
        """The token-id segments of ``text`` (no special tokens)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        size = self.config.segment_tokens
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    def encode(self, documents: Sequence[Document | str | Mapping[str, Any]]) -> SoftContext:
        """Compresses each document into soft embeddings, from the cache where possible.

        Raises:
            InvalidInputError: ``documents`` is not a list of documents.
        """
        if documents is None or isinstance(documents, str | bytes):
            raise InvalidInputError("documents must be a list of strings, dicts or Documents")
        started = time.perf_counter()
        docs = [d for d in as_documents(documents) if d.text.strip()]
        decoder, _, encoder = self._load()
        cuts = [self.segment(d.text) for d in docs]
        keys = [[self._key(seg) for seg in segs] for segs in cuts]
        cache = self.cache
        flat = list(dict.fromkeys(k for ks in keys for k in ks))
        found = cache.get_many(flat)
        todo = {
            k: seg
            for ks, segs in zip(keys, cuts, strict=True)
            for k, seg in zip(ks, segs, strict=True)
            if k not in found
        }
        made = self._encode_segments(list(todo.items()), encoder, decoder)
        if made:
            cache.put_many(made)
        out = []
        dim = int(decoder.config.hidden_size)
        for doc, ks, segs in zip(docs, keys, cuts, strict=True):
            parts = [found[k] if k in found else made[k] for k in ks]
            embeddings = np.concatenate(parts, axis=0) if parts else np.zeros((0, dim), np.float32)
            out.append(
                SoftDocument(
                    source_id=doc.id,
                    title=str(doc.metadata.get("title") or getattr(doc, "title", "") or ""),
                    embeddings=embeddings,
                    tokens=sum(len(s) for s in segs),
                    segments=len(segs),
                    cached=sum(1 for k in ks if k in found),
                )
            )
        return SoftContext(
            documents=tuple(out),
            decoder=self.config.decoder,
            rate=self.config.rate,
            encoder=self._fingerprint,
            seconds=time.perf_counter() - started,
        )

    def _key(self, segment: list[int]) -> str:
        return content_key(
            self.config.decoder, self._fingerprint, np.asarray(segment, np.int64).tobytes()
        )

    def _encode_segments(
        self, items: list[tuple[str, list[int]]], encoder: Any, decoder: Any
    ) -> dict[str, np.ndarray]:
        import torch

        made: dict[str, np.ndarray] = {}
        pad = 0
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            width = max(len(seg) for _, seg in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, seg) in enumerate(batch):
                ids[row, : len(seg)] = torch.tensor(seg)
                mask[row, : len(seg)] = 1
            with torch.inference_mode():
                soft = encoder(ids.to(decoder.device), mask.to(decoder.device)).float().cpu()
            for row, (key, seg) in enumerate(batch):
                made[key] = soft[row, : self.config.positions(len(seg))].numpy().copy()
        return made
