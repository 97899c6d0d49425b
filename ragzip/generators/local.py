"""A local causal LM run with transformers (default: the packaged SmolLM2-135M-Instruct).

torch and transformers are imported on first use, never at import time.

One class, one idea: single, batched and streamed generation of one loaded model share its
lock, tokenizer and generation settings, so they stay together (a little over 350 lines).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ragzip._optional import require
from ragzip.batching import MicroBatcher
from ragzip.errors import ConfigError, GenerationError, InvalidInputError
from ragzip.generators.base import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    Message,
    MessagesLike,
)
from ragzip.generators.registry import generators
from ragzip.lm import DTYPES, load_lm

__all__ = ["TransformersGenerator", "eos_ids"]


@generators.register("transformers")
class TransformersGenerator(BaseGenerator):
    """Chat generation with a local transformers causal LM.

    The prompt is rendered with the tokenizer's chat template. ``temperature=0`` decodes
    greedily (deterministic); higher values sample. Stop strings end generation early and are
    cut from the text. Calls are serialized by a lock, so one instance can be shared by threads.
    The model loads on first use or in :meth:`warm_up`.

    With ``batch_size > 1``, concurrent :meth:`generate` calls (from threads) are merged: a
    worker waits up to ``batch_wait_ms`` after the first request for more, then runs up to
    ``batch_size`` of them in one left-padded ``model.generate`` call. Requests with different
    temperatures or stop strings run as separate sub-batches. Each result is cut to its own
    ``max_tokens`` and stop strings, with its own token counts. :meth:`generate_batch` runs a
    list of requests batched whatever ``batch_size`` is. Streaming is never batched.

    Args:
        model: Short name (``smollm2-135m``), hub id or local path.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``None`` for CUDA when available.
        dtype: ``"auto"`` (float32 on CPU, bfloat16 or float16 on GPU), ``"float32"``,
            ``"float16"`` or ``"bfloat16"``.
        batch_size: Most concurrent requests merged into one ``model.generate`` call; 1 runs
            every request on its own (no batching thread).
        batch_wait_ms: How long the first request of a batch waits for others to join.

    Example:
        >>> gen = TransformersGenerator("smollm2-135m")
        >>> gen.generate("What is the capital of France?", max_tokens=16).text
        'The capital of France is Paris.'
    """

    name = "transformers"

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 1,
        batch_wait_ms: float = 10.0,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        if device is not None and (not isinstance(device, str) or not device.strip()):
            raise ConfigError(f"device must be a string like 'cpu' or 'cuda', got {device!r}")
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(
                f"batch_size must be an int >= 1 (1: no batching), got {batch_size!r}"
            )
        if (
            isinstance(batch_wait_ms, bool)
            or not isinstance(batch_wait_ms, int | float)
            or not math.isfinite(batch_wait_ms)
            or batch_wait_ms < 0
        ):
            raise ConfigError(f"batch_wait_ms must be a number >= 0, got {batch_wait_ms!r}")
        self.model = model
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.batch_wait_ms = float(batch_wait_ms)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: str | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._batcher: MicroBatcher[GenerationRequest, Generation | Exception] | None = None
        self._batcher_lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "dtype": self.dtype,
            "batch_size": self.batch_size,
            "batch_wait_ms": self.batch_wait_ms,
        }

    def close(self) -> None:
        """Stops the batching thread, if any (after the requests it holds); the model stays
        loaded, and a later request starts a new thread."""
        with self._batcher_lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()

    # -- loading -------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Loads the model and tokenizer now instead of on the first request."""
        self._load()

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loads the model)."""
        return self._load()[1]

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer, without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt_tokens(self, messages: MessagesLike) -> int:
        """Tokens of ``messages`` as this model reads them (chat template applied)."""
        request = GenerationRequest.of(messages, 1, 0.0, None)
        return int(self._encode(request.messages)["input_ids"].shape[1])

    def _load(self) -> tuple[Any, Any]:
        if self._model is not None:
            return self._model, self._tokenizer
        with self._load_lock:
            if self._model is None:
                loaded = load_lm(
                    self.model,
                    device=self.device,
                    dtype=self.dtype,
                    what="generator model",
                    purpose="the local transformers generator",
                )
                self._tokenizer, self._device = loaded.tokenizer, loaded.device
                self._model = loaded.model  # published last: the unlocked fast path checks it
        return self._model, self._tokenizer

    # -- generation ----------------------------------------------------------------------------
    def _encode(self, messages: tuple[Message, ...]) -> dict[str, Any]:
        model, tokenizer = self._load()
        chat = [dict(m) for m in messages]
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        else:  # a base model without a template: a plain transcript
            prompt = "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        limit = getattr(model.config, "max_position_embeddings", None)
        n = int(inputs["input_ids"].shape[1])
        if isinstance(limit, int) and n >= limit:
            raise InvalidInputError(
                f"the prompt has {n} tokens but {self.model} reads at most {limit}: "
                "compress the context harder or shorten the messages"
            )
        return {k: v.to(self._device) for k, v in inputs.items()}

    def _generate_kwargs(
        self, inputs: dict[str, Any], request: GenerationRequest, **extra: Any
    ) -> dict[str, Any]:
        _, tokenizer = self._load()
        kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": request.max_tokens,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
            **extra,
        }
        if request.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=request.temperature)
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=tokenizer)
        return kwargs

    def _pad_id(self, model: Any, tokenizer: Any) -> int:
        """The token id that fills padding: the tokenizer's pad token, else end of sequence."""
        for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
            if isinstance(candidate, int):
                return candidate
        eos = eos_ids(model, tokenizer)
        return min(eos) if eos else 0  # masked out: any id works

    def _generate(self, request: GenerationRequest) -> Generation:
        if self.batch_size > 1:
            outcome = self._shared_batcher().submit(request)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        model, tokenizer = self._load()
        with self._generate_lock:
            inputs = self._encode(request.messages)
            output = self._run_generate(model, self._generate_kwargs(inputs, request))
        prompt_tokens = int(inputs["input_ids"].shape[1])
        new = output[0, prompt_tokens:].tolist()
        return self._result(new, prompt_tokens, request, model, tokenizer)

    def _run_generate(self, model: Any, kwargs: dict[str, Any]) -> Any:
        try:
            return model.generate(**kwargs)
        except (RuntimeError, ValueError) as exc:
            raise GenerationError(f"{self.model} failed to generate: {exc}") from exc

    def _result(
        self,
        new: list[int],
        prompt_tokens: int,
        request: GenerationRequest,
        model: Any,
        tokenizer: Any,
    ) -> Generation:
        """A Generation from the new token ids of one request (end of turn included)."""
        eos = eos_ids(model, tokenizer)
        ended = bool(new) and new[-1] in eos
        completion = len(new) - 1 if ended else len(new)
        text = tokenizer.decode(new, skip_special_tokens=True)
        reason = "length" if not ended and len(new) >= request.max_tokens else "stop"
        return Generation(
            text=text,
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            finish_reason=reason,
            seconds=0.0,
        )

    # -- batching ------------------------------------------------------------------------------
    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Generation]:
        """All requests batched in one call per sub-batch of equal settings, whatever
        ``batch_size`` is (pass as many as fit in memory). Each result's ``seconds`` is the
        time of the whole call; a request's own error (a prompt too long) is raised."""
        start = time.perf_counter()
        outcomes = self._generate_many(requests)
        seconds = time.perf_counter() - start
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
        return [
            self._finish(g, r, seconds)
            for g, r in zip(outcomes, requests, strict=True)
            if isinstance(g, Generation)
        ]

    def _shared_batcher(self) -> MicroBatcher[GenerationRequest, Generation | Exception]:
        with self._batcher_lock:
            if self._batcher is None:
                self._batcher = MicroBatcher(
                    self._generate_many,
                    max_batch_size=self.batch_size,
                    max_wait_s=self.batch_wait_ms / 1000.0,
                    name=f"ragzip-generate-{self.model}",
                )
            return self._batcher

    def _generate_many(self, requests: list[GenerationRequest]) -> list[Generation | Exception]:
        """One outcome per request, in order: its Generation, or the error that only it met.

        Requests that can share a ``model.generate`` call (same temperature and stop strings)
        run together; a lone request runs unpadded, exactly as without batching.
        """
        model, tokenizer = self._load()
        outcomes: list[Generation | Exception | None] = [None] * len(requests)
        groups: dict[tuple[float, tuple[str, ...]], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault((request.temperature, request.stop), []).append(i)
        with self._generate_lock:
            for indices in groups.values():
                encoded: list[tuple[int, dict[str, Any]]] = []
                for i in indices:
                    try:
                        encoded.append((i, self._encode(requests[i].messages)))
                    except InvalidInputError as exc:
                        outcomes[i] = exc
                if not encoded:
                    continue
                group = [requests[i] for i, _ in encoded]
                try:
                    results = self._generate_group(model, tokenizer, group, [e for _, e in encoded])
                except GenerationError as exc:
                    results = [exc] * len(group)
                for (i, _), result in zip(encoded, results, strict=True):
                    outcomes[i] = result
        return [o if o is not None else GenerationError("no outcome") for o in outcomes]

    def _generate_group(
        self,
        model: Any,
        tokenizer: Any,
        requests: list[GenerationRequest],
        encoded: list[dict[str, Any]],
    ) -> list[Generation | Exception]:
        """Runs requests of equal sampling settings in one left-padded ``model.generate``."""
        if len(requests) == 1:
            output = self._run_generate(model, self._generate_kwargs(encoded[0], requests[0]))
            n = int(encoded[0]["input_ids"].shape[1])
            return [self._result(output[0, n:].tolist(), n, requests[0], model, tokenizer)]
        torch = require("torch", "the local transformers generator")
        lengths = [int(e["input_ids"].shape[1]) for e in encoded]
        width = max(lengths)
        pad = self._pad_id(model, tokenizer)
        ids = torch.full((len(encoded), width), pad, dtype=torch.long, device=self._device)
        mask = torch.zeros((len(encoded), width), dtype=torch.long, device=self._device)
        for row, (inputs, n) in enumerate(zip(encoded, lengths, strict=True)):
            ids[row, width - n :] = inputs["input_ids"][0]
            mask[row, width - n :] = 1
        longest = replace(requests[0], max_tokens=max(r.max_tokens for r in requests))
        kwargs = self._generate_kwargs({"input_ids": ids, "attention_mask": mask}, longest)
        kwargs["pad_token_id"] = pad
        output = self._run_generate(model, kwargs)
        eos = eos_ids(model, tokenizer)
        results: list[Generation | Exception] = []
        for row, request in enumerate(requests):
            new = _own_tokens(output[row, width:].tolist(), request, eos, tokenizer)
            results.append(self._result(new, lengths[row], request, model, tokenizer))
        return results

    def _stream(self, request: GenerationRequest) -> Iterator[str]:
        model, tokenizer = self._load()
        transformers = require("transformers", "the local transformers generator")
        streamer = transformers.TextIteratorStreamer(
            tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        cancel = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._generate_lock:
                    if cancel.is_set():
                        return
                    inputs = self._encode(request.messages)
                    stopping = transformers.StoppingCriteriaList([_cancel_criteria(cancel)])
                    model.generate(
                        **self._generate_kwargs(
                            inputs, request, streamer=streamer, stopping_criteria=stopping
                        )
                    )
            except BaseException as exc:
                errors.append(exc)
                streamer.end()  # wakes the consumer

        worker = threading.Thread(target=run, name="ragzip-generate", daemon=True)
        worker.start()
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            cancel.set()  # the consumer left early: stop generating at the next token
        worker.join()
        if errors:
            exc = errors[0]
            if isinstance(exc, InvalidInputError | GenerationError):
                raise exc
            raise GenerationError(f"{self.model} failed to generate: {exc}") from exc


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return {ids} if isinstance(ids, int) else set(ids)


def _own_tokens(
    new: list[int], request: GenerationRequest, eos: set[int], tokenizer: Any
) -> list[int]:
    """The tokens one row of a batch would have produced alone.

    A batch runs until its longest request is done; rows that finish earlier are filled with
    padding. A row ends at its own ``max_tokens``, its first end-of-turn token (kept, as
    ``model.generate`` keeps it), or the token that completes one of its stop strings.
    """
    new = new[: request.max_tokens]
    end = next((k + 1 for k, token in enumerate(new) if token in eos), len(new))
    new = new[:end]
    if request.stop and any(s in tokenizer.decode(new) for s in request.stop):
        for k in range(1, len(new) + 1):
            if any(s in tokenizer.decode(new[:k]) for s in request.stop):
                return new[:k]
    return new


def _cancel_criteria(cancel: threading.Event) -> Any:
    """A transformers stopping criterion that ends generation once ``cancel`` is set."""
    torch = require("torch", "the local transformers generator")
    transformers = require("transformers", "the local transformers generator")

    class _Cancelled(transformers.StoppingCriteria):  # type: ignore[name-defined]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full(
                (input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device
            )

    return _Cancelled()
