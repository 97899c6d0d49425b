"""A quiet, tidy terminal: the demo prints its own table and views, and nothing from the
libraries it loads (load reports, weight-loading, shard-writing or GGUF conversion bars), on
its first run (SmolLM2 converted into an empty cache) and on the second (from the cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ragzip.cli.console import uvicorn_log_config

QUESTION = "Which organelle produces ATP in the cell?"
NOISE = (
    "LOAD REPORT",
    "UNEXPECTED",
    "Loading weights",
    "Writing model shards",
    "de-quantiz",
    "it/s]",
    "s/it]",
    "%|",
    "\r",
    "FutureWarning",
    "DeprecationWarning",
    "UserWarning",
)


def _demo(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ragzip.cli.main", "demo", "--question", QUESTION]
    command += ["--max-tokens", "12", "--html", str(tmp_path / "demo.html")]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)


def test_demo_prints_no_dependency_noise_on_first_and_second_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "RAGZIP_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    for name in ("first", "second"):
        done = _demo(env, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        printed = done.stdout + done.stderr
        found = [n for n in NOISE if n in printed]
        assert not found, f"{name} run printed {found}:\n{printed[-3000:]}"
        assert f"Q: {QUESTION}" in done.stdout and "A: " in done.stdout
        assert "retrieved" in done.stdout and "[token-prune]" in done.stdout
        assert (tmp_path / "demo.html").stat().st_size > 0
        if name == "first":  # the conversion really happened in this run
            assert any((cache / "models").iterdir())


def test_verbose_lets_dependencies_speak(tmp_path: Path) -> None:
    code = (
        "import os, sys; from ragzip.cli import console; console.setup(verbose='-v' in sys.argv);"
        "print(os.environ.get('TRANSFORMERS_VERBOSITY', 'unset'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    loud = subprocess.run(
        [sys.executable, "-c", code, "-v"], env=env, capture_output=True, text=True
    )
    assert quiet.stdout.strip() == "error" and loud.stdout.strip() == "unset"


def test_server_logs_use_the_command_format() -> None:
    config = uvicorn_log_config("info")
    assert config["formatters"]["ragzip"]["format"].startswith("%(asctime)s %(levelname)s")
    assert config["loggers"]["uvicorn.access"]["handlers"] == ["stderr"]
