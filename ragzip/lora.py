"""Merging plain LoRA adapters (peft's saved format) into a model's weights, without peft.

ragzip ships its trained models as LoRA adapters plus small heads on top of packaged encoders
(``adapter_config.json`` and ``adapter_model.safetensors``, as peft writes them). Loading
merges ``scaling * B @ A`` into each adapted weight and copies the heads, so the runtime needs
neither peft nor any extra compute per forward pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragzip._optional import require
from ragzip.errors import ConfigError, ModelNotFoundError

__all__ = ["ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "lora_scaling", "merge_lora", "read_json"]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PREFIX = "base_model.model."


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when the file does not exist."""
    return dict(json.loads(path.read_text("utf-8"))) if path.is_file() else {}


def lora_scaling(adapter: Mapping[str, Any], folder: Path) -> float:
    """``lora_alpha / r`` (``/ sqrt(r)`` with rsLoRA) of plain LoRA adapters.

    Raises:
        ConfigError: The adapters use a LoRA variant this loader does not merge.
    """
    unsupported = {
        "peft_type": adapter.get("peft_type") != "LORA",
        "use_dora": bool(adapter.get("use_dora")),
        "fan_in_fan_out": bool(adapter.get("fan_in_fan_out")),
        "rank_pattern": bool(adapter.get("rank_pattern")),
        "alpha_pattern": bool(adapter.get("alpha_pattern")),
        "lora_bias": bool(adapter.get("lora_bias")),
        "bias": adapter.get("bias", "none") != "none",
    }
    wrong = [k for k, bad in unsupported.items() if bad]
    if wrong:
        raise ConfigError(
            f"{folder}: ragzip merges plain LoRA adapters only (unsupported: {wrong}); "
            "retrain with ragzip's training commands, or merge them with peft and pass the result"
        )
    rank = int(adapter["r"])
    alpha = float(adapter.get("lora_alpha", rank))
    return alpha / math.sqrt(rank) if adapter.get("use_rslora") else alpha / rank


def merge_lora(
    model: Any, folder: Path, *, frozen_prefix: str, hint: str = "retrain the model"
) -> None:
    """Adds ``scaling * B @ A`` to each adapted weight of ``model`` and copies the saved heads
    (peft's ``modules_to_save``, every parameter outside ``frozen_prefix``) into it.

    Args:
        model: The base model, already holding the pretrained weights.
        folder: Directory with ``adapter_config.json`` and ``adapter_model.safetensors``.
        frozen_prefix: Parameter-name prefix of the pretrained part (``"bert."``, ``"encoder."``).
        hint: What to do when the folder is incomplete (ends the error message).

    Raises:
        ConfigError: Unsupported LoRA variant.
        ModelNotFoundError: The weights file or one of the heads is missing.
    """
    torch = require("torch", "loading LoRA adapters")
    safetensors = require("safetensors.torch", "loading LoRA adapters")
    scaling = lora_scaling(read_json(folder / ADAPTER_CONFIG), folder)
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise ModelNotFoundError(f"{folder} has no {ADAPTER_WEIGHTS}; {hint}")
    weights = safetensors.load_file(str(folder / ADAPTER_WEIGHTS))
    heads = {n for n, _ in model.named_parameters() if not n.startswith(frozen_prefix)}
    with torch.no_grad():
        for key, tensor in weights.items():
            name = key.removeprefix(_PREFIX)
            if ".lora_B." in name:
                continue
            if ".lora_A." in name:
                module = model.get_submodule(name.split(".lora_A.")[0])
                up = weights[key.replace(".lora_A.", ".lora_B.")]
                module.weight += scaling * (up.float() @ tensor.float())
            else:
                model.get_parameter(name).copy_(tensor)
                heads.discard(name)
    if heads:
        raise ModelNotFoundError(
            f"{folder / ADAPTER_WEIGHTS} lacks the head weights {sorted(heads)}; {hint}"
        )
