"""dtype="auto" picks bf16 only where it measured faster than fp32."""

from __future__ import annotations

import pytest

from ragzip import fastpath
from ragzip.errors import ConfigError


def test_explicit_dtypes_pass_through_and_unknown_ones_fail() -> None:
    assert [fastpath.resolve_dtype(d) for d in ("fp32", "bf16", "int8")] == ["fp32", "bf16", "int8"]
    with pytest.raises(ConfigError, match="dtype must be one of"):
        fastpath.resolve_dtype("fp8")


@pytest.mark.parametrize(("speedup", "expected"), [(0.2, "fp32"), (1.05, "fp32"), (2.0, "bf16")])
def test_auto_follows_the_probe(
    monkeypatch: pytest.MonkeyPatch, speedup: float, expected: str
) -> None:
    monkeypatch.delenv("RAGZIP_DTYPE", raising=False)
    monkeypatch.setattr(fastpath, "probe_bf16_speedup", lambda: speedup)
    assert fastpath.resolve_dtype("auto") == expected


def test_environment_overrides_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "probe_bf16_speedup", lambda: 0.1)
    monkeypatch.setenv("RAGZIP_DTYPE", "BF16")
    assert fastpath.resolve_dtype("auto") == "bf16"
    monkeypatch.setenv("RAGZIP_DTYPE", "int4")
    with pytest.raises(ConfigError, match="RAGZIP_DTYPE"):
        fastpath.resolve_dtype("auto")


def test_the_real_probe_measures_once_per_process() -> None:
    pytest.importorskip("torch")
    first = fastpath.probe_bf16_speedup()
    assert first > 0 and fastpath.probe_bf16_speedup() == first
