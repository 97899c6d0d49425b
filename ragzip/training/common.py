"""What every training recipe shares: saving LoRA adapters with their heads, the hardware note."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from ragzip._optional import require
from ragzip.lora import ADAPTER_WEIGHTS

__all__ = [
    "apply_step",
    "hardware",
    "load_state",
    "save_lora",
    "save_state",
    "warmup_linear",
    "with_lora",
]


def save_lora(model: Any, out: Path, base: str) -> None:
    """Writes peft's ``adapter_config.json`` and the adapters with the trained heads
    (``modules_to_save``) as ``adapter_model.safetensors``: what :mod:`ragzip.lora` merges."""
    peft = require("peft", "saving LoRA adapters")
    safetensors = require("safetensors.torch", "saving LoRA adapters")
    adapter = model.peft_config["default"]
    adapter.base_model_name_or_path = base
    adapter.inference_mode = True
    adapter.save_pretrained(out)
    weights = peft.get_peft_model_state_dict(model, save_embedding_layers=False)
    safetensors.save_file(
        {k: v.detach().contiguous() for k, v in weights.items()},
        out / ADAPTER_WEIGHTS,
        metadata={"format": "pt"},
    )


def hardware(torch: Any) -> dict[str, Any]:
    """CPU model, core count, torch threads and GPU (if any) of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def warmup_linear(torch: Any, optimizer: Any, total_steps: int) -> Any:
    """The learning-rate schedule of every recipe: 10% linear warm-up, then linear decay."""
    total = max(1, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * max(0.0, 1 - s / total)
    )


def save_state(
    torch: Any,
    path: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    progress: dict[str, Any],
) -> None:
    """Saves the trainable weights, optimizer, schedule and ``progress`` (``epoch``,
    ``step``, ``history`` and anything else the recipe needs to resume)."""
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save({"trainable": trainable, **state, **progress}, path)


def load_state(
    torch: Any, path: Path, model: Any, optimizer: Any, scheduler: Any
) -> dict[str, Any]:
    """Restores what :func:`save_state` wrote and returns it (``epoch``, ``step``, ...)."""
    state: dict[str, Any] = torch.load(path, weights_only=False)
    model.load_state_dict(state["trainable"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state


def apply_step(torch: Any, loss: Any, params: list[Any], optimizer: Any, scheduler: Any) -> float:
    """One optimizer step of every recipe (gradients clipped at norm 1); the loss value."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return float(loss.detach())


def with_lora(model: Any, config: Any, **extra: Any) -> Any:
    """``model`` wrapped with peft LoRA adapters from a recipe's ``lora_rank``,
    ``lora_alpha``, ``lora_dropout`` and ``lora_targets``, seeded by its ``seed``; ``extra``
    goes to ``peft.LoraConfig`` (task type, heads to save, layers)."""
    torch = require("torch", "LoRA training")
    peft = require("peft", "LoRA training")
    lora = peft.LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        **extra,
    )
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        return peft.get_peft_model(model, lora)
