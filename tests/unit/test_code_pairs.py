"""Mining (description, function) pairs from git checkouts (``ragzip train-code``'s data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from ragzip.compressors.code.chunking import chunk_code, name_words
from ragzip.errors import ConfigError
from ragzip.training.code_pairs import mine_repository
from ragzip.training.hold_out import HoldOut, read_hold_out

PYTHON = '''"""A tiny module."""

import os


def parse_date(text):
    """Parse an ISO 8601 date string into a tuple.

    Args:
        text: The date.
    """
    year, month, day = text.split("-")
    return int(year), int(month), int(day)


def undocumented(x):
    y = x + 1
    return y * 2


class Store:
    def get(self, key):
        """Fetch the value stored under a key, or None."""
        value = self.data.get(key)
        return value

    def short(self):
        """Too short."""
        return 1
'''

GO = """package util

import "strings"

// Reverse returns the characters of a string in reverse order.
// It handles multi-byte runes.
func Reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// Upper makes every letter of a string upper case.
func Upper(s string) string {
	out := strings.ToUpper(s)
	return out
}
"""


def test_pairs_from_python_and_go_with_descriptions_removed(tmp_path: Path, git_repo: Any) -> None:
    repo = git_repo(
        tmp_path / "repo",
        {
            "pkg/dates.py": PYTHON,
            "util/strings.go": GO,
            "LICENSE": "MIT License\n\nPermission is hereby granted, free of charge, to any person",
        },
    )
    mined = mine_repository(repo)
    by_name = {p.name: p for p in mined.pairs}
    assert set(by_name) == {"parse_date", "Store.get", "Reverse", "Upper"}
    date = by_name["parse_date"]
    assert date.description == "Parse an ISO 8601 date string into a tuple."
    assert "Parse an ISO" not in date.code and "def parse_date(text):" in date.code
    assert date.language == "python" and date.path == "pkg/dates.py"
    reverse = by_name["Reverse"]
    # Go's "Reverse returns ..." loses its own name: users do not describe code that way
    assert reverse.description == (
        "Returns the characters of a string in reverse order. It handles multi-byte runes."
    )
    assert "//" not in reverse.code and reverse.code.startswith("func Reverse")
    card = mined.card()
    assert card["license"] == "MIT" and len(card["commit"]) == 40
    assert card["pairs_by_language"] == {"go": 2, "python": 2}
    # the candidates of a needle search: every chunk of the file, bare or not
    file = mined.files[date.file]
    assert file.names[date.chunk] == "parse_date"
    assert "Parse an ISO" in file.texts[date.chunk] and "Parse an ISO" not in file.bare[date.chunk]


def test_skips_tests_binary_huge_and_duplicate_files(tmp_path: Path, git_repo: Any) -> None:
    repo = git_repo(
        tmp_path / "repo",
        {
            "a.py": PYTHON,
            "copy/a.py": PYTHON,  # the same functions again: duplicates
            "tests/test_a.py": PYTHON,
            "blob.py": b"\x00\x01binary" * 10,
            "big.py": PYTHON * 200,
        },
    )
    mined = mine_repository(repo, max_bytes=50_000)
    assert len(mined.pairs) == 2
    assert mined.skipped["binary"] == 1 and mined.skipped["huge"] == 1
    assert mined.skipped["tests, docs or vendored"] == 1
    assert mined.skipped["duplicate pairs"] == 2
    assert len(mine_repository(repo, max_bytes=50_000, include_tests=True).pairs) == 2


def test_not_a_repository_is_a_config_error(tmp_path: Path, git_repo: Any) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="not a git repository"):
        mine_repository(tmp_path / "plain")
    with pytest.raises(ConfigError, match="not a folder"):
        mine_repository(tmp_path / "missing")


def test_jsdoc_summary_tags_and_comments_attached_to_their_function(
    tmp_path: Path, git_repo: Any
) -> None:
    source = """export class Calendar {
  /**
   * @name addDays
   * @summary Add the given number of days to a date.
   * @param {Date} date - the date
   */
  addDays(date, amount) {
    const copy = new Date(date);
    copy.setDate(copy.getDate() + amount);
    return copy;
  }
}
"""
    chunks = chunk_code(source, "javascript")
    method = next(c for c in chunks if c.kind == "method")
    assert source.splitlines()[method.start].strip() == "/**"  # the comment joins its method
    assert name_words("Calendar.addDays") == "calendar add days\n"
    (pair,) = mine_repository(git_repo(tmp_path / "repo", {"cal.js": source})).pairs
    assert pair.name == "Calendar.addDays"
    assert pair.description == "Add the given number of days to a date."
    assert pair.code.lstrip().startswith("addDays(date, amount) {")


def test_held_out_functions_and_their_namesakes_are_left_out(tmp_path: Path, git_repo: Any) -> None:
    twin = PYTHON.replace("class Store:", "def get_again(key):\n    \"\"\"Fetch the value "
                          "stored under a key, or None.\"\"\"\n    v = key\n    w = v\n    "
                          "return w\n\n\nclass Store:")  # fmt: skip
    repo = git_repo(tmp_path / "repo", {"pkg/dates.py": twin, "util/strings.go": GO})
    hold = HoldOut.parse(["pkg/dates.py::Store.get", "Upper", "other.py::parse_date", " "])
    assert len(hold) == 3 and hold.matches("x/y.go", "Upper")
    assert not hold.matches("pkg/dates.py", "parse_date")
    mined = mine_repository(repo, hold_out=hold)
    # get_again shares Store.get's description: training on it would teach the held-out answer
    assert {p.name for p in mined.pairs} == {"parse_date", "Reverse"}
    assert mined.held_out == 2 and mined.card()["held_out"] == 2
    assert mined.skipped["same description as a held-out function"] == 1


def test_hold_out_lists_and_code_needle_tasks(tmp_path: Path) -> None:
    listed = tmp_path / "held.txt"
    listed.write_text("# functions\nsrc/a.py::A.run  # the runner\n\nhelper\n", "utf-8")
    assert read_hold_out(listed) == ("src/a.py::A.run", "helper")
    tasks = tmp_path / "tasks.jsonl.gz"
    rows = [{"path": "src/a.py", "target_name": "A.run", "query": "Run it. # not a comment"}]
    tasks.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    assert read_hold_out(tasks) == ("src/a.py::A.run",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a.py"}\n', "utf-8")
    with pytest.raises(ConfigError, match="line 1: a JSON line needs 'path' and 'target_name'"):
        read_hold_out(bad)
    with pytest.raises(ConfigError, match="cannot read the hold-out list"):
        read_hold_out(tmp_path / "missing.txt")
