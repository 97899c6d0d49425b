"""The README's first Python snippet runs as written (on the packaged MiniLM, offline)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def first_python_block(markdown: str, heading: str = "## Python") -> str:
    """The code of the first ```` ```python ```` block after the line ``heading``.

    Raises:
        AssertionError: the heading or a python block under it is missing.
    """
    lines = markdown.splitlines()
    assert heading in lines, f"README.md has no {heading!r} heading"
    rest = "\n".join(lines[lines.index(heading) + 1 :])
    match = re.search(r"^```python\n(.*?)^```$", rest, flags=re.DOTALL | re.MULTILINE)
    assert match, f"README.md has no python block under {heading!r}"
    return match.group(1)


def test_first_python_block_is_found() -> None:
    markdown = "# t\n```python\nx = 0\n```\n## Python\n\ntext\n```python\nx = 1\n```\n"
    assert first_python_block(markdown) == "x = 1\n"


def test_the_first_python_snippet_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    code = first_python_block(README.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    exec(compile(code, f"{README}:## Python", "exec"), namespace)
    result = namespace["result"]
    assert result.documents, "the snippet's compression kept nothing"
    assert "Gustave" in result.text()  # the question's answer, and the budget's keep string
    assert result.ratio >= 3
    assert result.text() in capsys.readouterr().out
