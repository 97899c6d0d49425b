"""The inspector's HTML: the sidecar's ``/ui`` page and self-contained report files.

Both come from one template (``static/inspector.html``) and one script
(``static/inspector.js``) that draws :func:`ragzip.inspector.view.build_view` dicts. The page
links its script and style from ``/ui/`` (the server sends a strict Content-Security-Policy);
a report inlines them and embeds its views as JSON, so it opens offline, from a file, with
no request leaving the browser (its own CSP forbids any).

Example:
    >>> html = render_report([view], title="ragzip: what was kept")
    >>> Path("case.html").write_text(html, encoding="utf-8")
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from ragzip.errors import ConfigError

__all__ = ["ASSETS", "asset", "check_report_path", "render_page", "render_report", "write_report"]

# The files the sidecar serves under /ui/, with their media types.
ASSETS: Mapping[str, str] = {
    "inspector.js": "text/javascript; charset=utf-8",
    "inspector.css": "text/css; charset=utf-8",
}
# No request leaves a report: inline style and script only, nothing fetched, no forms sent.
_REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


@cache
def asset(name: str) -> str:
    """The text of a packaged inspector file (``inspector.js``, ``inspector.css``, ...)."""
    return (resources.files("ragzip.inspector") / "static" / name).read_text("utf-8")


def _fill(**parts: str) -> str:
    return Template(asset("inspector.html")).substitute(parts)


def render_page() -> str:
    """The sidecar's ``/ui`` page: the form, with script and style linked from ``/ui/``."""
    return _fill(
        csp="",
        title="ragzip inspector",
        heading="",
        style='<link rel="stylesheet" href="/ui/inspector.css">',
        mode="app",
        form=asset("form.html"),
        data="",
        script='<script src="/ui/inspector.js"></script>',
    )


def _json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element early (``<``, ``>`` and ``&`` escaped)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_report(views: Sequence[Mapping[str, Any]], *, title: str = "ragzip report") -> str:
    """One self-contained HTML file showing ``views`` (dicts of :func:`build_view`).

    Args:
        views: What to show, in order (one per question: a case, or a sample of an eval run).
        title: The page title.

    Returns:
        The HTML text; it needs no network and no other file.
    """
    return _fill(
        csp=f'<meta http-equiv="Content-Security-Policy" content="{_REPORT_CSP}">',
        title=html.escape(title),
        heading=html.escape(title),
        style=f"<style>\n{asset('inspector.css')}</style>",
        mode="report",
        form="",
        data=(
            '<script type="application/json" id="ragzip-data">'
            f"{_json_for_script({'views': list(views)})}</script>"
        ),
        script=f"<script>\n{asset('inspector.js')}</script>",
    )


def check_report_path(path: str | Path) -> Path:
    """``path`` as a report target; checked before work whose result it will hold.

    Raises:
        ConfigError: ``path`` is a directory, or a file stands where its folder should be.
    """
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{target} is a directory: give a file name such as report.html")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"cannot write {target}: {parent} is a file, not a folder")
            break
    return target


def write_report(
    path: str | Path, views: Sequence[Mapping[str, Any]], *, title: str = "ragzip report"
) -> Path:
    """Writes :func:`render_report` to ``path`` atomically (a reader never sees half a file).

    Raises:
        ConfigError: ``path`` is a directory, or its folder cannot be written.
    """
    target = check_report_path(path)
    text = render_report(views, title=title)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for sharing
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
    return target
