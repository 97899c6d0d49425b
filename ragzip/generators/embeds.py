"""Prompt embeddings on the wire, as vLLM's ``--enable-prompt-embeds`` takes them.

vLLM's completions endpoint reads ``"prompt_embeds"``: the base64 of a ``torch.save``-d
``(positions, hidden)`` tensor, loaded with ``weights_only=True``. The whole prompt (chat
template, roles, generation prompt) must already be in the embeddings: the server applies no
template to them. :meth:`ragzip.generators.soft.SoftGenerator.prompt_embeds` builds exactly that.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from ragzip._optional import require
from ragzip.errors import InvalidInputError

__all__ = ["decode_prompt_embeds", "encode_prompt_embeds"]


def encode_prompt_embeds(embeds: np.ndarray, dtype: str = "float32") -> str:
    """``(positions, hidden)`` array -> base64 text for the ``prompt_embeds`` field."""
    torch = require("torch", "prompt embeddings")
    array = np.asarray(embeds)
    if array.ndim != 2 or not array.size:
        raise InvalidInputError(f"prompt embeddings must be (positions, hidden), got {array.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(
        getattr(torch, dtype)
    )
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_prompt_embeds(text: str, hidden: int | None = None) -> np.ndarray:
    """The inverse of :func:`encode_prompt_embeds`; checks the shape (and width when given).

    Raises:
        InvalidInputError: not base64 of a saved 2-D tensor (of width ``hidden``).
    """
    torch = require("torch", "prompt embeddings")
    if not isinstance(text, str) or not text:
        raise InvalidInputError("prompt_embeds must be a non-empty base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
        tensor = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    except (binascii.Error, ValueError, RuntimeError, EOFError) as exc:
        raise InvalidInputError(
            f"prompt_embeds is not base64 of a torch.save-d tensor: {exc}"
        ) from exc
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2 or tensor.shape[0] == 0:
        raise InvalidInputError("prompt_embeds must hold one (positions, hidden) tensor")
    if hidden is not None and int(tensor.shape[1]) != hidden:
        raise InvalidInputError(
            f"prompt_embeds are {tensor.shape[1]} wide but this model's embeddings are {hidden}"
        )
    return tensor.float().numpy()
