"""Robust reading of a generator's summary: chat artefacts, prefixes, bullets, the sentinel."""

from __future__ import annotations

import re

__all__ = ["DEFAULT_SENTINEL", "clean_summary", "is_sentinel"]

DEFAULT_SENTINEL = "NONE"

_SPECIAL = re.compile(r"<\|[^|>]*\|>|</?s>|\[/?INST\]|<\|?(?:im_start|im_end|eot_id)\|?>")
_ROLE = re.compile(r"^\s*(?:assistant|system|user)\s*[:\n]", re.IGNORECASE)
_PREFIX = re.compile(
    r"^\s*(?:\*\*)?(?:here(?:'s| is) (?:a |the )?(?:short |brief |concise )?summary[^:\n]*|"
    r"(?:short |brief |concise |query-focused )?summary|answer|context|compressed context)"
    r"(?:\*\*)?\s*[:\-]\s*",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u25cf>]+|\d{1,2}[.)])\s+", re.MULTILINE)
_TERMINAL = re.compile(r"[.!?:;][\"')\]]*$")
_NO_INFO = re.compile(
    r"^(?:there is |there's )?no (?:relevant |useful )?(?:information|context|answer)\b|"
    r"^(?:the )?(?:documents?|text|context) (?:does|do) not (?:contain|mention|provide|"
    r"answer|help)|^not (?:relevant|mentioned)\b|^irrelevant\b|^n/?a\b",
    re.IGNORECASE,
)


def clean_summary(text: str) -> str:
    """Strips special tokens, role labels, ``Summary:`` prefixes, bullet markers, quotes and
    markdown emphasis; joins the lines into running text."""
    text = _SPECIAL.sub(" ", text)
    text = _ROLE.sub("", text, count=1)
    text = _PREFIX.sub("", text, count=1)
    text = _BULLET.sub("", text)
    text = text.replace("**", "").replace("__", "")
    lines = [_unquote(line) for line in text.splitlines()]
    joined = " ".join(line if _TERMINAL.search(line) else line + "." for line in lines if line)
    joined = re.sub(r"\s+", " ", joined).strip()
    return joined


def _unquote(line: str) -> str:
    line = line.strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'`":
        line = line[1:-1].strip()
    return line


def is_sentinel(text: str, sentinel: str = DEFAULT_SENTINEL) -> bool:
    """Whether a cleaned summary says the documents do not help (case-insensitive).

    True for the sentinel alone (``NONE``, ``none.``, ``"None"``), a summary that starts with
    it followed by punctuation, and the common phrasings "no relevant information", "the
    documents do not contain..."; false for a summary that merely mentions "none" later on.
    """
    body = text.strip().strip("\"'`*.!").strip()
    if not body:
        return True
    low = body.lower()
    token = sentinel.lower().strip()
    if token and (low == token or re.match(rf"{re.escape(token)}\s*(?:[.!:,;\-]|$)", low)):
        return True
    return bool(_NO_INFO.match(low))
