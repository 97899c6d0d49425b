"""Names of token pruners: the packaged default, the published LLMLingua-2 checkpoints, paths.

=====================  ======================================================================
name                   what it is
=====================  ======================================================================
``minilm-pruner``      ragzip's default, shipped in the package
                       (``ragzip/data/models/minilm-pruner``): LoRA adapters and a keep/drop
                       head trained by ``ragzip train-pruner`` on top of the packaged
                       all-MiniLM-L6-v2, merged into it when loaded (offline; see the folder's
                       ``MODEL_CARD.md`` for data, command and validation figures)
``llmlingua2-xlmr``    microsoft/llmlingua-2-xlm-roberta-large-meetingbank (hub, internet)
``llmlingua2-mbert``   microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank (hub)
=====================  ======================================================================

Anything else is a local directory (one written by ``ragzip train-pruner``: LoRA adapters or a
whole checkpoint) or a hub id. Nothing is trained or downloaded on first use.
"""

from __future__ import annotations

from pathlib import Path

from ragzip.errors import ModelNotFoundError
from ragzip.lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from ragzip.models import resolve_model, shipped_model_dir

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "DEFAULT_PRUNER",
    "LABELS",
    "PRUNER_CONFIG",
    "PUBLISHED",
    "packaged_pruner_dir",
    "resolve_pruner",
]

DEFAULT_PRUNER = "minilm-pruner"
PUBLISHED = {
    "llmlingua2-xlmr": "microsoft/llmlingua-2-xlm-roberta-large-meetingbank",
    "llmlingua2-mbert": "microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank",
}
#: Files of a pruner directory: ragzip's small config (base model, label scheme), and in LoRA
#: form peft's adapter config and the adapters with the classification head (safetensors).
PRUNER_CONFIG = "pruner_config.json"
#: Class names of a pruner's output, by index.
LABELS = ("drop", "keep")


def packaged_pruner_dir(name: str = DEFAULT_PRUNER) -> Path:
    """The folder of a pruner shipped inside the package.

    Raises:
        ModelNotFoundError: The installation lacks it (a build without package data).
    """
    folder = shipped_model_dir(name)
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise ModelNotFoundError(
            f"the packaged token pruner {name!r} is missing from {folder}; reinstall ragzip "
            "from a wheel or source tree that includes ragzip/data/models, or pass the path of "
            "a pruner trained with `ragzip train-pruner`"
        )
    return folder


def resolve_pruner(name: str) -> str:
    """A path or hub id for a pruner name (see the module's table); never trains anything."""
    key = name.strip().lower()
    if key == DEFAULT_PRUNER:
        return str(packaged_pruner_dir())
    if key in PUBLISHED:
        return PUBLISHED[key]
    return resolve_model(name).path
