"""Generation from soft-compressed context: [prompt tokens, segment embeddings, question tokens].

The prompt is rendered exactly as for text (the same :class:`PromptTemplate` and chat
template); each document's text is then replaced by its soft embeddings, so the decoder reads
``ceil(n / rate)`` positions per segment instead of ``n`` tokens. The prefill, the part of the
time to first token that grows with the context, shrinks accordingly, and with a warm segment
cache nothing else is added.

Two ways to generate:

* locally with transformers: :meth:`SoftGenerator.generate_documents` (or a
  :class:`~ragzip.middleware.pipeline.Pipeline` whose generator is a ``SoftGenerator``);
* on a vLLM server started with ``--enable-prompt-embeds``: :meth:`SoftGenerator.prompt_embeds`
  builds the whole prompt as one ``(positions, hidden)`` tensor and
  :meth:`ragzip.generators.openai_compat.OpenAIGenerator.complete_embeds` sends it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from ragzip._optional import require
from ragzip.cache import ByteCache
from ragzip.encoders.soft.compressor import SoftCompressor
from ragzip.encoders.soft.context import SoftContext
from ragzip.encoders.soft.qa import render_chat
from ragzip.errors import ConfigError, InvalidInputError
from ragzip.generators.base import BaseGenerator, Generation, GenerationRequest, apply_stop
from ragzip.generators.local import eos_ids
from ragzip.generators.registry import generators
from ragzip.prompt import PromptTemplate
from ragzip.types import CompressedDocument, Document

__all__ = ["SoftGeneration", "SoftGenerator"]

_MARK = "\x00soft{}\x00"


@dataclass(frozen=True)
class SoftGeneration(Generation):
    """A generation from soft context, with its time to first token and soft statistics."""

    first_token_seconds: float = 0.0
    soft: Mapping[str, Any] = field(default_factory=dict)


@generators.register("soft")
class SoftGenerator(BaseGenerator):
    """A local decoder that reads documents as soft embeddings.

    Args:
        encoder: ``None`` (the default): the shipped ``ragzip-soft`` encoder; a directory of
            one trained with ``ragzip train-soft``; or ``"untrained"`` (mean pooling).
        compressor: A ready :class:`SoftCompressor` (overrides ``encoder`` and the rest).
        cache: Segment cache spec or object (see :mod:`ragzip.cache`).
        prompt: How documents and the question are laid out.
        device: ``"cpu"``, ``"cuda"`` or ``None`` for automatic.
        settings: Settings of an ``"untrained"`` encoder (``rate``, ``segment_tokens``...).
    """

    name = "soft"

    def __init__(
        self,
        encoder: str | Path | None = None,
        *,
        compressor: SoftCompressor | None = None,
        cache: ByteCache | str | None = None,
        prompt: PromptTemplate | None = None,
        device: str | None = None,
        **settings: Any,
    ) -> None:
        self.compressor = compressor or SoftCompressor(
            encoder, cache=cache, device=device, **settings
        )
        self.prompt = prompt or PromptTemplate()
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return self.compressor.params()

    def warm_up(self) -> None:
        self.compressor.warm_up()

    @property
    def model(self) -> str:
        return self.compressor.config.decoder

    # -- prompt assembly -----------------------------------------------------------------------
    def _render(self, messages: Sequence[Mapping[str, Any]]) -> str:
        return render_chat(self.compressor.tokenizer, messages)

    def _embed_text(self, text: str) -> np.ndarray:
        import torch

        decoder, tokenizer = self.compressor.decoder, self.compressor.tokenizer
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = decoder.get_input_embeddings()(ids.to(decoder.device))[0]
        return out.float().cpu().numpy()

    def prompt_embeds(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | SoftContext,
        prompt: PromptTemplate | None = None,
    ) -> tuple[np.ndarray, SoftContext]:
        """The whole prompt as ``(positions, hidden)`` float32 embeddings, and its soft context.

        This is what a vLLM server started with ``--enable-prompt-embeds`` takes as
        ``prompt_embeds`` (see ``OpenAIGenerator.complete_embeds``). ``prompt`` lays out the
        documents and question (default: this generator's template; a pipeline passes its own).
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        context = (
            documents if isinstance(documents, SoftContext) else self.compressor.encode(documents)
        )
        if context.decoder != self.compressor.config.decoder:
            raise ConfigError(
                f"this soft context was made for {context.decoder!r}, not {self.model!r}"
            )
        placeholders = [
            CompressedDocument(
                text=_MARK.format(i), source_id=d.source_id, metadata={"title": d.title}
            )
            for i, d in enumerate(context.documents)
        ]
        rendered = self._render((prompt or self.prompt).render(query, placeholders))
        pieces: list[np.ndarray] = []
        rest = rendered
        for i, doc in enumerate(context.documents):
            before, _, rest = rest.partition(_MARK.format(i))
            if before:
                pieces.append(self._embed_text(before))
            pieces.append(doc.embeddings.astype(np.float32, copy=False))
        if rest:
            pieces.append(self._embed_text(rest))
        return np.concatenate(pieces, axis=0), context

    def text_embeds(self, messages: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The rendered text prompt as embeddings (the uncompressed baseline)."""
        return self._embed_text(self._render(messages))

    # -- decoding ------------------------------------------------------------------------------
    def decode(
        self, embeds: np.ndarray, *, max_tokens: int = 128, temperature: float = 0.0
    ) -> Iterator[tuple[int, float]]:
        """Yields ``(token id, seconds since start)`` for each generated token, from embeddings."""
        torch = require("torch", "soft generation")
        decoder = self.compressor.decoder
        eos = eos_ids(decoder, self.compressor.tokenizer)
        started = time.perf_counter()
        dtype = next(decoder.parameters()).dtype
        with self._lock, torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(embeds))[None].to(decoder.device, dtype)
            limit = getattr(decoder.config, "max_position_embeddings", None)
            if isinstance(limit, int) and inputs.shape[1] >= limit:
                raise InvalidInputError(
                    f"the prompt has {inputs.shape[1]} positions but {self.model} reads at most "
                    f"{limit}: compress harder"
                )
            out = decoder(inputs_embeds=inputs, use_cache=True, logits_to_keep=1)
            for _ in range(max_tokens):
                logits = out.logits[0, -1].float()
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    token = int(torch.multinomial(probs, 1))
                else:
                    token = int(torch.argmax(logits))
                yield token, time.perf_counter() - started
                if token in eos:
                    return
                out = decoder(
                    input_ids=torch.tensor([[token]], device=decoder.device),
                    cache=out.past_key_values,
                    use_cache=True,
                    logits_to_keep=1,
                )

    def _run(
        self, embeds: np.ndarray, request: GenerationRequest, soft: Mapping[str, Any]
    ) -> SoftGeneration:
        tokenizer = self.compressor.tokenizer
        eos = eos_ids(self.compressor.decoder, tokenizer)
        ids: list[int] = []
        first = 0.0
        for token, seconds in self.decode(
            embeds, max_tokens=request.max_tokens, temperature=request.temperature
        ):
            if not ids:
                first = seconds
            ids.append(token)
        ended = bool(ids) and ids[-1] in eos
        return SoftGeneration(
            text=tokenizer.decode(ids, skip_special_tokens=True),
            model=self.model,
            prompt_tokens=int(embeds.shape[0]),
            completion_tokens=len(ids) - 1 if ended else len(ids),
            finish_reason="stop" if ended or len(ids) < request.max_tokens else "length",
            seconds=0.0,
            first_token_seconds=first,
            soft=dict(soft),
        )

    def generate_documents(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | SoftContext,
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        prompt: PromptTemplate | None = None,
    ) -> SoftGeneration:
        """Answers ``query`` from ``documents`` read as soft embeddings.

        ``first_token_seconds`` counts encoding (or cache lookups) and the prefill; ``prompt``
        as for :meth:`prompt_embeds`.
        """
        request = GenerationRequest.of(query, max_tokens, temperature, stop)
        started = time.perf_counter()
        embeds, context = self.prompt_embeds(query, documents, prompt)
        built = time.perf_counter() - started
        result = self._run(embeds, request, context.stats())
        finished = cast(
            SoftGeneration, self._finish(result, request, time.perf_counter() - started)
        )
        return replace(finished, first_token_seconds=built + result.first_token_seconds)

    @property
    def hidden_size(self) -> int:
        """Width of the decoder's input embeddings."""
        return int(self.compressor.decoder.config.hidden_size)

    def generate_embeds(
        self, embeds: np.ndarray, *, max_tokens: int = 128, temperature: float = 0.0
    ) -> SoftGeneration:
        """Generates from a whole prompt given as embeddings (what a vLLM server would get)."""
        array = np.asarray(embeds, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != self.hidden_size:
            raise InvalidInputError(
                f"embeddings must be (positions, {self.hidden_size}), got {array.shape}"
            )
        request = GenerationRequest.of("embeddings", max_tokens, temperature, None)
        started = time.perf_counter()
        result = self._run(array, request, {})
        return replace(result, seconds=time.perf_counter() - started)

    # -- plain text (the BaseGenerator contract) -----------------------------------------------
    def _generate(self, request: GenerationRequest) -> Generation:
        return self._run(self.text_embeds(request.messages), request, {})

    def stream_documents(
        self,
        query: str,
        documents: Sequence[Document | str | Mapping[str, Any]] | SoftContext,
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        prompt: PromptTemplate | None = None,
    ) -> Iterator[str]:
        """Streams the answer to ``query`` from ``documents`` read as soft embeddings.

        The streaming twin of :meth:`generate_documents` (same prompt, same decoding).
        """
        request = GenerationRequest.of(query, max_tokens, temperature, stop)
        embeds, _ = self.prompt_embeds(query, documents, prompt)
        return apply_stop(self._deltas(embeds, request), request.stop)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        return self._deltas(self.text_embeds(request.messages), request)

    def _deltas(self, embeds: np.ndarray, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of a decode from ``embeds`` (whole characters only)."""
        tokenizer = self.compressor.tokenizer
        ids: list[int] = []
        shown = ""
        for token, _ in self.decode(
            embeds,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        ):
            ids.append(token)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if len(text) > len(shown) and not text.endswith("\ufffd"):
                yield text[len(shown) :]
                shown = text
