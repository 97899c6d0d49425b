"""One loader of local transformers language models: a name in, a model ready to run out.

Every component that runs a causal LM (the local generator, the code compressor's scorer, the
soft decoder, training recipes) or a seq2seq LM loads it through :func:`load_lm`: the name is
resolved (:func:`~ragzip.models.resolve_model`), the device and dtype picked, the tokenizer and
model loaded, moved and put in eval mode, and a checkpoint that cannot be loaded is a
:class:`~ragzip.errors.ModelNotFoundError` that says what to pass instead. torch and transformers
are imported on call, never at import time.

Example:
    >>> from ragzip.lm import load_lm
    >>> lm = load_lm("smollm2-135m", device="cpu")
    >>> lm.model.config.model_type, lm.device
    ('llama', 'cpu')
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from ragzip._optional import require
from ragzip.errors import ConfigError, ModelNotFoundError
from ragzip.models import resolve_model

__all__ = ["DTYPES", "LoadedLM", "load_lm", "pick_device", "torch_dtype"]

DTYPES = ("auto", "float32", "float16", "bfloat16")


class LoadedLM(NamedTuple):
    """A loaded model, its tokenizer and the device it sits on."""

    model: Any
    tokenizer: Any
    device: str


def pick_device(device: str | None, purpose: str = "a local language model") -> str:
    """``device`` as given, else ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

    Raises:
        MissingDependencyError: torch is not installed.
    """
    if device:
        return device
    torch = require("torch", purpose)
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_dtype(dtype: str, device: str) -> Any:
    """The torch dtype named ``dtype``; ``"auto"`` is float32 on CPU and bfloat16 on CUDA
    (float16 where bfloat16 is not supported).

    Raises:
        ConfigError: ``dtype`` is not one of :data:`DTYPES`.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    torch = require("torch", "loading a language model")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_lm(
    name: str,
    *,
    device: str | None = None,
    dtype: str | None = "auto",
    kind: Literal["causal", "seq2seq"] = "causal",
    frozen: bool = False,
    what: str = "language model",
    purpose: str = "a local language model",
) -> LoadedLM:
    """Loads a transformers language model and its tokenizer, on ``device``, in eval mode.

    Args:
        name: Short name (``smollm2-135m``), hub id or local checkpoint directory.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or ``None`` for CUDA when available.
        dtype: One of :data:`DTYPES` (see :func:`torch_dtype`), or ``None`` for the
            checkpoint's own (transformers' default).
        kind: ``"causal"`` (``AutoModelForCausalLM``) or ``"seq2seq"``
            (``AutoModelForSeq2SeqLM``).
        frozen: Turn off gradients of every parameter (a model that is only read).
        what: What the model is, for error messages (``"generator model"``, ``"decoder"``).
        purpose: What needs torch and transformers, for the missing-dependency message.

    Returns:
        The model, its tokenizer and the device chosen.

    Raises:
        ConfigError: an unknown ``dtype`` or ``kind``.
        MissingDependencyError: torch or transformers is not installed.
        ModelNotFoundError: a short name whose package is missing, or a checkpoint that
            cannot be loaded (no such directory, no internet for a hub id).
    """
    if kind not in ("causal", "seq2seq"):
        raise ConfigError(f"kind must be 'causal' or 'seq2seq', got {kind!r}")
    transformers = require("transformers", purpose)
    device = pick_device(device, purpose)
    options = {} if dtype is None else {"dtype": torch_dtype(dtype, device)}
    auto = (
        transformers.AutoModelForSeq2SeqLM
        if kind == "seq2seq"
        else transformers.AutoModelForCausalLM
    )
    resolved = resolve_model(name)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(resolved.path)
        model = auto.from_pretrained(resolved.path, **options)
    except (OSError, ValueError) as exc:  # no such checkpoint, or files that are not one
        raise ModelNotFoundError(
            f"cannot load the {what} {name!r} from {resolved.path!r}: {exc}. Pass a short name "
            "(smollm2-135m), a local checkpoint directory, or a hub id when you have internet."
        ) from exc
    model.to(device)
    model.eval()
    if frozen:
        for param in model.parameters():
            param.requires_grad_(False)
    return LoadedLM(model, tokenizer, device)
