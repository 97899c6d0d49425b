"""Functions never to train on: what ``ragzip train-code --hold-out`` and ``--hold-out-file``
name, so an evaluation on them (a code-needle set of the same repositories) stays unseen."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ragzip.errors import ConfigError
from ragzip.files import open_text

__all__ = ["HoldOut", "read_hold_out"]


@dataclass(frozen=True)
class HoldOut:
    """Functions to leave out of training: ``NAME`` (a qualified name such as
    ``Class.method``, in any file) or ``PATH::NAME`` (``PATH`` relative to the repository).

    Example:
        >>> HoldOut.parse(["src/app.py::App.run", "helper"]).matches("lib/x.py", "helper")
        True
    """

    names: frozenset[str] = frozenset()
    located: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HoldOut:
        """Reads ``NAME`` and ``PATH::NAME`` entries (blank ones are ignored)."""
        names: set[str] = set()
        located: set[tuple[str, str]] = set()
        for entry in entries:
            path, sep, name = entry.strip().rpartition("::")
            if not name:
                continue
            if sep:
                located.add((path.strip().removeprefix("./"), name.strip()))
            else:
                names.add(name.strip())
        return cls(frozenset(names), frozenset(located))

    def matches(self, path: str, name: str) -> bool:
        """Whether the function ``name`` of file ``path`` is held out."""
        return bool(name) and (name in self.names or (path, name) in self.located)

    def __len__(self) -> int:
        return len(self.names) + len(self.located)


def read_hold_out(path: str | Path) -> tuple[str, ...]:
    """The functions listed in a file, as ``CodeTrainConfig.hold_out`` takes them.

    Either one ``NAME`` or ``PATH::NAME`` per line (``#`` starts a comment), or JSON lines
    (optionally gzipped) with ``path`` and ``target_name``, as code-needle tasks are written:
    ``ragzip train-code --hold-out-file code-dev.jsonl.gz`` leaves out every function that
    set asks about.

    Raises:
        ConfigError: The file cannot be read, or a JSON line lacks ``path``/``target_name``.
    """
    file = Path(path).expanduser()
    try:
        with open_text(file) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ConfigError(f"cannot read the hold-out list {file}: {exc}") from exc
    entries = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line.startswith("{"):
            name = line.split("#", 1)[0].strip()
            if name:
                entries.append(name)
            continue
        try:
            task = json.loads(line)
            entries.append(f"{task['path']}::{task['target_name']}")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{file}, line {number}: a JSON line needs 'path' and 'target_name' "
                f"(code-needle tasks), got {line[:80]!r}"
            ) from exc
    return tuple(entries)
