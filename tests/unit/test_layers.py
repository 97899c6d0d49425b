"""Imports point down the layers: no ragzip module imports from a package above its own.

The layers, top to bottom (the README's "Layout" section shows the same):

    cli > adapters > inspector > training > eval > middleware > compressors > generators
        > retrievers > encoders > the base floor (types, errors, registry, tokens, budget, prompt,
          text, patterns, models, cache, wire, ...: small modules that may use each other)

``ragzip.testing`` (contract suites and fakes for tests) may import anything and nothing in
the runtime imports it; ``ragzip/__init__.py`` is the public facade. Modules of the same
package import each other freely; two different packages on one layer may not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ragzip"
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli"}),
    frozenset({"adapters"}),
    frozenset({"inspector"}),
    frozenset({"training"}),
    frozenset({"eval"}),
    frozenset({"middleware"}),
    frozenset({"compressors"}),
    frozenset({"generators"}),
    frozenset({"retrievers"}),
    frozenset({"encoders"}),
)
BASE = 99  # every top-level module and the small base packages (cache, wire)


def rank(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    return BASE


def top_part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("ragzip")]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("ragzip")
        ):
            found.append((node.lineno, str(node.module)))
    return found


def modules() -> list[Path]:
    facade = PACKAGE / "__init__.py"
    return sorted(p for p in PACKAGE.rglob("*.py") if p != facade)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if own == "testing":
        return
    wrong = []
    for line, module in imports_of(path):
        other = top_part(module)
        if other == "testing":
            wrong.append(f"line {line}: {module} (runtime code never imports ragzip.testing)")
        elif other != own and other and rank(other) <= rank(own) < BASE:
            wrong.append(f"line {line}: {module} (from a package on the same layer or above)")
    assert not wrong, f"{path.relative_to(PACKAGE)} imports upward:\n" + "\n".join(wrong)
