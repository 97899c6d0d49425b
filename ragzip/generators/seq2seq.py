"""A local encoder-decoder summarizer (T5, BART, Pegasus...) as a ragzip generator.

RECOMP's abstractive compressor is a fine-tuned T5; this generator runs such a model by name or
path: ``{"type": "transformers-seq2seq", "params": {"model": "path/or/hub-id"}}``. Chat
messages are flattened to plain text (seq2seq models have no chat template). torch and
transformers load on first use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ragzip._optional import require
from ragzip.errors import ConfigError, GenerationError
from ragzip.generators.base import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    Message,
)
from ragzip.generators.registry import generators
from ragzip.lm import load_lm

__all__ = ["Seq2SeqGenerator"]


@generators.register("transformers-seq2seq")
class Seq2SeqGenerator(BaseGenerator):
    """Generation with a local transformers encoder-decoder model.

    Args:
        model: Hub id or local checkpoint directory of a seq2seq model.
        device: ``"cpu"``, ``"cuda"``... or ``None`` for CUDA when available.
        max_input_tokens: Longer inputs are cut (seq2seq encoders read a fixed window).

    Example:
        >>> gen = Seq2SeqGenerator("google/flan-t5-small")  # needs the hub or a local copy
        >>> gen.generate("Summarize: ...", max_tokens=48).text
    """

    name = "transformers-seq2seq"

    def __init__(
        self, model: str, *, device: str | None = None, max_input_tokens: int = 1024
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        self.device = device
        self.max_input_tokens = max_input_tokens
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "max_input_tokens": self.max_input_tokens,
        }

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                model, tokenizer, device = load_lm(
                    self.model,
                    device=self.device,
                    dtype=None,
                    kind="seq2seq",
                    what="seq2seq model",
                    purpose="the local seq2seq generator",
                )
                self._tokenizer, self._device, self._model = tokenizer, device, model
        return self._model, self._tokenizer

    @staticmethod
    def _flatten(messages: Sequence[Message]) -> str:
        return "\n\n".join(m["content"] for m in messages if m["role"] != "assistant")

    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        """All requests in one padded batch, in order (requests of different lengths or
        temperatures run at the first one's settings: ``generate_batch`` gives them all the
        same). Each result's ``seconds`` is the time of the whole call."""
        start = time.perf_counter()
        texts = self._texts(
            [self._flatten(r.messages) for r in requests],
            max_tokens=requests[0].max_tokens if requests else 0,
            temperature=requests[0].temperature if requests else 0.0,
        )
        seconds = time.perf_counter() - start
        return [
            self._finish(Generation(text, self.model, None, None, None, 0.0), request, seconds)
            for text, request in zip(texts, requests, strict=True)
        ]

    def _texts(
        self, prompts: Sequence[str], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> list[str]:
        """Generates for several prompts in one padded forward pass per step."""
        if not prompts:
            return []
        model, tokenizer = self._load()
        torch = require("torch", "the local seq2seq generator")
        inputs = tokenizer(
            list(prompts),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_input_tokens,
        ).to(self._device)
        options: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            options["temperature"] = temperature
        try:
            with self._lock, torch.no_grad():
                output = model.generate(**inputs, **options)
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"{self.model} failed to generate: {exc}") from exc
        return [str(t) for t in tokenizer.batch_decode(output, skip_special_tokens=True)]

    def _generate(self, request: GenerationRequest) -> Generation:
        prompt = self._flatten(request.messages)
        text = self._texts(
            [prompt], max_tokens=request.max_tokens, temperature=request.temperature
        )[0]
        return Generation(text, self.model, None, None, None, 0.0)

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        yield self._generate(request).text
