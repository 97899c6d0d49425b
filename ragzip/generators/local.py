"""A local causal LM run with transformers (default: the packaged SmolLM2-135M-Instruct).

torch and transformers are imported on first use, never at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ragzip._optional import require
from ragzip.errors import ConfigError, GenerationError, InvalidInputError, ModelNotFoundError
from ragzip.generators.base import BaseGenerator, Generation, GenerationRequest, Message
from ragzip.generators.registry import generators
from ragzip.models import resolve_model

__all__ = ["TransformersGenerator", "eos_ids"]

_DTYPES = ("auto", "float32", "float16", "bfloat16")


@generators.register("transformers")
class TransformersGenerator(BaseGenerator):
    """Chat generation with a local transformers causal LM.

    The prompt is rendered with the tokenizer's chat template. ``temperature=0`` decodes
    greedily (deterministic); higher values sample. Stop strings end generation early and are
    cut from the text. Calls are serialized by a lock, so one instance can be shared by threads.
    The model loads on first use or in :meth:`warm_up`.

    Args:
        model: Short name (``smollm2-135m``), hub id or local path.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``None`` for CUDA when available.
        dtype: ``"auto"`` (float32 on CPU, bfloat16 or float16 on GPU), ``"float32"``,
            ``"float16"`` or ``"bfloat16"``.

    Example:
        >>> gen = TransformersGenerator("smollm2-135m")
        >>> gen.generate("What is the capital of France?", max_tokens=16).text
        'The capital of France is Paris.'
    """

    name = "transformers"

    def __init__(
        self, model: str = "smollm2-135m", *, device: str | None = None, dtype: str = "auto"
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        if device is not None and (not isinstance(device, str) or not device.strip()):
            raise ConfigError(f"device must be a string like 'cpu' or 'cuda', got {device!r}")
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        self.model = model
        self.device = device
        self.dtype = dtype
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: str | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "dtype": self.dtype}

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

    def _load(self) -> tuple[Any, Any]:
        if self._model is not None:
            return self._model, self._tokenizer
        with self._load_lock:
            if self._model is None:
                torch = require("torch", "the local transformers generator")
                transformers = require("transformers", "the local transformers generator")
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                resolved = resolve_model(self.model)
                try:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(resolved.path)
                    model = transformers.AutoModelForCausalLM.from_pretrained(
                        resolved.path, dtype=_torch_dtype(torch, self.dtype, device)
                    )
                except OSError as exc:
                    raise ModelNotFoundError(
                        f"cannot load the generator model {self.model!r} from {resolved.path!r}: "
                        f"{exc}. Pass a short name (smollm2-135m), a local checkpoint directory, "
                        "or a hub id when you have internet."
                    ) from exc
                model.to(device)
                model.eval()
                self._tokenizer, self._device = tokenizer, device
                self._model = model  # published last: the unlocked fast path checks it
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

    def _generate(self, request: GenerationRequest) -> Generation:
        model, tokenizer = self._load()
        with self._generate_lock:
            inputs = self._encode(request.messages)
            try:
                output = model.generate(**self._generate_kwargs(inputs, request))
            except (RuntimeError, ValueError) as exc:
                raise GenerationError(f"{self.model} failed to generate: {exc}") from exc
        prompt_tokens = int(inputs["input_ids"].shape[1])
        new = output[0, prompt_tokens:].tolist()
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


def _torch_dtype(torch: Any, dtype: str, device: str) -> Any:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return {ids} if isinstance(ids, int) else set(ids)


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
