"""The one language-model loader: dtype and device choice, typed errors (no model loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragzip.errors import ConfigError, ModelNotFoundError
from ragzip.lm import DTYPES, load_lm, pick_device, torch_dtype

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_auto_dtype_is_float32_on_cpu_and_names_map_to_torch_dtypes() -> None:
    assert torch_dtype("auto", "cpu") is torch.float32
    for name in DTYPES[1:]:
        assert torch_dtype(name, "cpu") is getattr(torch, name)
    with pytest.raises(ConfigError, match="dtype must be one of"):
        torch_dtype("int8", "cpu")


def test_device_is_kept_when_given() -> None:
    assert pick_device("cuda:1") == "cuda:1"
    assert pick_device(None) in ("cpu", "cuda")


def test_a_folder_without_a_checkpoint_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"(?s)cannot load the decoder .* Pass a short name"
    ):
        load_lm(str(tmp_path), device="cpu", what="decoder")


def test_a_hub_id_offline_is_model_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="'no-such-org/no-such-model'"):
        load_lm("no-such-org/no-such-model", device="cpu")


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind"):
        load_lm(str(tmp_path), kind="masked")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dtype"):
        load_lm(str(tmp_path), device="cpu", dtype="half")
