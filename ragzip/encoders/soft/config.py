"""The settings of a soft encoder, saved next to its trained weights."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ragzip.errors import ConfigError
from ragzip.models import shipped_model_dir

__all__ = ["DEFAULT_SOFT", "ENCODER_KINDS", "SoftConfig", "encoder_dir", "shipped_soft"]

ENCODER_KINDS = ("pool", "lora")
CONFIG_FILE = "soft_config.json"
#: The soft encoder ragzip ships (``ragzip/data/models/ragzip-soft``, see its MODEL_CARD.md).
DEFAULT_SOFT = "ragzip-soft"


def shipped_soft() -> Path | None:
    """The folder of the shipped soft encoder, or ``None`` when this installation lacks it."""
    folder = shipped_model_dir(DEFAULT_SOFT)
    return folder if (folder / CONFIG_FILE).is_file() else None


def encoder_dir(encoder: str | Path) -> Path:
    """The folder of a soft encoder given by path or by the shipped name ``ragzip-soft``.

    Raises:
        ConfigError: ``ragzip-soft`` is named but missing from this installation.
    """
    if str(encoder).strip().lower() == DEFAULT_SOFT:
        folder = shipped_soft()
        if folder is None:
            raise ConfigError(
                f"{DEFAULT_SOFT} is missing from this installation; reinstall ragzip or "
                "train an encoder with `ragzip train-soft`"
            )
        return folder
    return Path(encoder).expanduser()


@dataclass(frozen=True)
class SoftConfig:
    """How segments become embeddings in the decoder's input space.

    Attributes:
        decoder: The decoder that reads the embeddings (short name, hub id or path).
        rate: Tokens per soft embedding: a segment of ``n`` tokens becomes ``ceil(n / rate)``.
        segment_tokens: Tokens per segment. Segments are encoded independently, so each one
            is cached and reused wherever the same text appears again.
        kind: ``"pool"``: mean-pool groups of ``rate`` token embeddings and add a trained
            residual MLP (ARC-Encoder-style pooling, no transformer layers; encoding costs
            almost nothing). ``"lora"``: run the decoder's first ``layers`` layers with LoRA
            adapters (peft) over the segment, pool their states and project them with the
            trained MLP (CompLLM-style: the LLM with LoRA and a projection).
        layers: Decoder layers used by the ``lora`` encoder.
        lora_rank: LoRA rank of the ``lora`` encoder.
        hidden: Width of the projection MLP.
    """

    decoder: str = "smollm2-135m"
    rate: int = 4
    segment_tokens: int = 64
    kind: str = "pool"
    layers: int = 4
    lora_rank: int = 8
    hidden: int = 1024

    def __post_init__(self) -> None:
        if not isinstance(self.decoder, str) or not self.decoder.strip():
            raise ConfigError(f"decoder must be a model name, got {self.decoder!r}")
        if not isinstance(self.rate, int) or not 1 <= self.rate <= 64:
            raise ConfigError(f"rate must be an integer from 1 to 64, got {self.rate!r}")
        if not isinstance(self.segment_tokens, int) or self.segment_tokens < self.rate:
            raise ConfigError(
                f"segment_tokens must be an integer >= rate ({self.rate}), "
                f"got {self.segment_tokens!r}"
            )
        if self.kind not in ENCODER_KINDS:
            raise ConfigError(f"kind must be one of {list(ENCODER_KINDS)}, got {self.kind!r}")
        if self.kind == "lora" and (not isinstance(self.layers, int) or self.layers < 1):
            raise ConfigError(f"the lora encoder needs layers >= 1, got {self.layers!r}")
        if not isinstance(self.lora_rank, int) or self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be a positive integer, got {self.lora_rank!r}")
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise ConfigError(f"hidden must be a positive integer, got {self.hidden!r}")

    def positions(self, tokens: int) -> int:
        """Soft embeddings for a segment of ``tokens`` tokens."""
        return math.ceil(tokens / self.rate)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SoftConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown soft encoder settings {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> SoftConfig:
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise ConfigError(
                f"{directory} is not a trained soft encoder (no {CONFIG_FILE}); "
                "train one with `ragzip train-soft`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
