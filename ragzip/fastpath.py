"""Choosing a CPU fast path by measuring it, never by a fixed default.

bfloat16 autocast is ~2x faster than fp32 on CPUs with native bf16 (avx512_bf16, AMX) and
several times slower on CPUs without it (AVX2 only). ``dtype="auto"`` therefore probes once per
process: a small stack of linear layers the size of a MiniLM block runs in fp32 and under bf16
autocast, and bf16 is chosen only when it beats fp32 by :data:`MIN_SPEEDUP`. int8 changes the
scores, so it is never chosen automatically. ``RAGZIP_DTYPE`` (``fp32`` or ``bf16``) overrides
the probe.

Example:
    >>> resolve_dtype("auto")  # "fp32" on an AVX2-only CPU
    'fp32'
"""

from __future__ import annotations

import os
import threading
import time
from typing import Literal

from ragzip._optional import require
from ragzip.errors import ConfigError

__all__ = ["DTYPES", "MIN_SPEEDUP", "Dtype", "probe_bf16_speedup", "resolve_dtype"]

Dtype = Literal["auto", "fp32", "bf16", "int8"]
DTYPES = ("auto", "fp32", "bf16", "int8")
#: bf16 must be at least this much faster than fp32 to be chosen.
MIN_SPEEDUP = 1.15
_lock = threading.Lock()
_probed: dict[str, float] = {}


def probe_bf16_speedup(repeats: int = 3) -> float:
    """fp32 time over bf16-autocast time for a MiniLM-sized block on this CPU (cached)."""
    with _lock:
        if "cpu" in _probed:
            return _probed["cpu"]
        torch = require("torch", "probing the fastest dtype")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            block = torch.nn.Sequential(
                torch.nn.Linear(384, 1536), torch.nn.GELU(), torch.nn.Linear(1536, 384)
            )
            x = torch.randn(8, 128, 384)

        def best(bf16: bool) -> float:
            times = []
            with torch.inference_mode():
                for _ in range(repeats + 1):
                    start = time.perf_counter()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        block(x)
                    times.append(time.perf_counter() - start)
            return min(times[1:])  # the first run warms kernels up

        speedup = best(False) / max(best(True), 1e-9)
        _probed["cpu"] = speedup
        return speedup


def resolve_dtype(dtype: str) -> str:
    """``fp32``, ``bf16`` or ``int8`` for a requested dtype; ``auto`` probes (see module doc).

    Raises:
        ConfigError: An unknown dtype (here or in ``RAGZIP_DTYPE``).
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    forced = os.environ.get("RAGZIP_DTYPE", "").strip().lower()
    if forced:
        if forced not in ("fp32", "bf16"):
            raise ConfigError(f"RAGZIP_DTYPE must be 'fp32' or 'bf16', got {forced!r}")
        return forced
    return "bf16" if probe_bf16_speedup() >= MIN_SPEEDUP else "fp32"
