"""The trainable soft encoder: segment tokens in, ``ceil(n / rate)`` decoder embeddings out.

Imports torch (and peft for the ``lora`` kind): load this module only when a model is needed.

Both kinds start from the mean of each group of ``rate`` token embeddings, the decoder's own
input space, and add a residual MLP whose last layer starts at zero. An untrained encoder is
therefore plain mean pooling, never a random map; training moves it from there.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ragzip._optional import require
from ragzip.encoders.soft.config import SoftConfig
from ragzip.errors import ConfigError, ModelNotFoundError

__all__ = ["WEIGHTS_FILE", "SoftEncoder", "load_encoder"]

WEIGHTS_FILE = "soft_encoder.safetensors"
_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def pool_groups(states: torch.Tensor, mask: torch.Tensor, rate: int) -> torch.Tensor:
    """Masked mean over consecutive groups of ``rate`` positions: (B, S, d) -> (B, ceil(S/r), d)."""
    batch, length, dim = states.shape
    pad = (-length) % rate
    if pad:
        states = nn.functional.pad(states, (0, 0, 0, pad))
        mask = nn.functional.pad(mask, (0, pad))
    groups = states.view(batch, -1, rate, dim)
    weights = mask.view(batch, -1, rate, 1).to(states.dtype)
    return (groups * weights).sum(2) / weights.sum(2).clamp_min(1.0)


class SoftEncoder(nn.Module):
    """Maps segments of token ids to soft embeddings for a frozen decoder.

    Args:
        config: The encoder settings.
        decoder: The decoder (a transformers causal LM). It is used, never trained, and not
            saved with the encoder.
    """

    def __init__(self, config: SoftConfig, decoder: Any) -> None:
        super().__init__()
        self.config = config
        self._decoder = [decoder]  # a list keeps it out of this module's parameters
        dim = int(decoder.config.hidden_size)
        last = nn.Linear(config.hidden, dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.project = nn.Sequential(nn.Linear(dim, config.hidden), nn.GELU(), last)
        self.body: nn.Module | None = None
        if config.kind == "lora":
            self.body = _lora_body(decoder, config)
        self.to(next(decoder.parameters()).dtype)

    @property
    def decoder(self) -> Any:
        return self._decoder[0]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights training changes (the projection, and LoRA adapters if any)."""
        return {k: v for k, v in self.state_dict().items() if _trainable_name(k)}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, S) token ids and mask -> (B, ceil(S / rate), hidden) soft embeddings.

        Padded positions never leak into a group's mean; a segment of ``n`` real tokens owns
        the first ``ceil(n / rate)`` outputs of its row.
        """
        embed = self.decoder.get_input_embeddings()(ids)
        states = embed
        if self.body is not None:
            states = self.body(inputs_embeds=embed, attention_mask=mask).last_hidden_state
        rate = self.config.rate
        return pool_groups(embed, mask, rate) + self.project(pool_groups(states, mask, rate))

    def fingerprint(self) -> str:
        """A short digest of the config and trained weights: part of every cache key."""
        digest = hashlib.blake2b(repr(self.config.to_dict()).encode(), digest_size=8)
        for name, tensor in sorted(self.trainable_state().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Writes the settings and only the trained weights (a few MB) to ``directory``."""
        require("safetensors", "saving soft encoders")
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.config.save(out)
        state = {k: v.detach().contiguous().cpu() for k, v in self.trainable_state().items()}
        tmp = out / f".{WEIGHTS_FILE}.tmp"
        save_file(state, str(tmp))
        tmp.replace(out / WEIGHTS_FILE)
        return out


def _trainable_name(name: str) -> bool:
    return name.startswith("project.") or "lora_" in name


def _lora_body(decoder: Any, config: SoftConfig) -> nn.Module:
    """The decoder's first ``config.layers`` layers as a standalone model with LoRA adapters."""
    peft = require("peft", "the lora soft encoder")
    transformers = require("transformers", "the lora soft encoder")
    total = int(getattr(decoder.config, "num_hidden_layers", 0))
    if config.layers > total:
        raise ConfigError(f"layers={config.layers} but the decoder has {total} layers")
    body_config = copy.deepcopy(decoder.config)
    body_config.num_hidden_layers = config.layers
    body = transformers.AutoModel.from_config(body_config)
    source = decoder.base_model.state_dict()
    wanted = body.state_dict()
    missing = [k for k in wanted if k not in source and not k.startswith("embed_tokens")]
    if missing:
        raise ConfigError(
            "cannot copy the decoder's first layers into the lora encoder "
            f"(missing {missing[:3]}); "
            "use kind='pool' for this decoder"
        )
    body.load_state_dict({k: source[k] for k in wanted if k in source}, strict=False)
    body.embed_tokens = None  # the encoder passes the decoder's embeddings in
    for param in body.parameters():
        param.requires_grad_(False)
    lora = peft.LoraConfig(
        r=config.lora_rank, lora_alpha=2 * config.lora_rank, target_modules=_LORA_TARGETS
    )
    return peft.inject_adapter_in_model(lora, body)


def load_encoder(path: str | Path | None, config: SoftConfig, decoder: Any) -> SoftEncoder:
    """A trained encoder from ``path``, or an untrained one (mean pooling) when ``path`` is None."""
    encoder = SoftEncoder(config, decoder)
    if path is not None:
        weights = Path(path) / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelNotFoundError(
                f"{path} holds no {WEIGHTS_FILE}; train a soft encoder with `ragzip train-soft`"
            )
        from safetensors.torch import load_file

        state = load_file(str(weights))
        unexpected = set(state) - set(encoder.trainable_state())
        if unexpected:
            raise ConfigError(f"{weights} does not match its settings: {sorted(unexpected)[:3]}")
        encoder.load_state_dict(state, strict=False)
    for name, param in encoder.named_parameters():
        param.requires_grad_(_trainable_name(name))
    encoder.eval()
    return encoder
