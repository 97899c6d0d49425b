"""On-disk helpers shared by the retrievers: atomic directories, manifests, document files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragzip.errors import IndexStoreError, InvalidInputError
from ragzip.types import Document

__all__ = ["MANIFEST", "atomic_directory", "read_documents", "read_manifest", "write_documents"]

MANIFEST = "manifest.json"


@contextmanager
def atomic_directory(directory: str | Path) -> Iterator[Path]:
    """Yields a fresh temporary directory that replaces ``directory`` when the block succeeds.

    The temporary directory sits next to the target (same filesystem), so the final step is
    a rename: readers see the old index or the new one, never half of one. An existing target
    is only replaced when it holds a ``manifest.json`` (a saved index) or is empty.

    Raises:
        IndexStoreError: the target is a file or an unrelated non-empty directory, or
            writing fails (the temporary directory is removed and the target left as it was).
    """
    target = Path(directory)
    if target.exists():
        if not target.is_dir():
            raise IndexStoreError(f"cannot save an index to {target}: it is a file")
        if not (target / MANIFEST).is_file() and any(target.iterdir()):
            raise IndexStoreError(
                f"refusing to overwrite {target}: it is a non-empty directory without a "
                f"{MANIFEST}; pick an empty or new directory"
            )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    except OSError as exc:
        raise IndexStoreError(f"cannot save an index to {target}: {exc}") from exc
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except IndexStoreError:
        raise
    except OSError as exc:
        raise IndexStoreError(f"cannot save an index to {target}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_documents(path: Path, documents: Sequence[Document]) -> None:
    """Writes one JSON object per line: ``{"id", "text", "metadata"}``.

    Raises:
        IndexStoreError: a document's metadata cannot be written as JSON.
    """
    with path.open("w", encoding="utf-8") as fh:
        for doc in documents:
            try:
                line = json.dumps(doc.to_dict(), ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise IndexStoreError(
                    f"cannot save document {doc.id!r}: its metadata is not JSON ({exc}); "
                    "keep metadata to strings, numbers, booleans, lists and dicts"
                ) from exc
            fh.write(line + "\n")


def read_documents(path: Path, count: int) -> list[Document]:
    """Reads what :func:`write_documents` wrote and checks there are ``count`` documents.

    Raises:
        IndexStoreError: the file is missing, malformed or holds a different count.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexStoreError(f"cannot read {path}: {exc}; save the index again") from exc
    documents = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            documents.append(
                Document(data["text"], id=data["id"], metadata=data.get("metadata") or {})
            )
        except (ValueError, KeyError, TypeError, InvalidInputError) as exc:
            raise IndexStoreError(f"{path} line {number} is not a document: {exc}") from exc
    if len(documents) != count:
        raise IndexStoreError(
            f"{path} holds {len(documents)} documents but the manifest says {count}; "
            "the index is incomplete, save it again"
        )
    return documents


def read_manifest(path: Path, fmt: str, version: int) -> dict[str, Any]:
    """Reads and checks a manifest: the format name, a supported version and a count.

    Raises:
        IndexStoreError: the manifest is missing, not JSON, or of another format or version.
    """
    if not path.parent.is_dir():
        raise IndexStoreError(f"no index at {path.parent}: the directory does not exist")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexStoreError(
            f"no index at {path.parent}: {MANIFEST} is missing (was it written by save()?)"
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IndexStoreError(f"{path} is not a valid manifest: {exc}") from exc
    if not isinstance(manifest, dict):
        raise IndexStoreError(f"{path} is not a valid manifest: expected a JSON object")
    if manifest.get("format") != fmt:
        raise IndexStoreError(
            f"{path.parent} holds a {manifest.get('format')!r} index, not {fmt!r}"
        )
    found = manifest.get("format_version")
    if not isinstance(found, int) or isinstance(found, bool) or found > version or found < 1:
        raise IndexStoreError(
            f"{path.parent} has format version {found!r}; this ragzip reads versions up to "
            f"{version} (upgrade ragzip or rebuild the index)"
        )
    count = manifest.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise IndexStoreError(f"{path} has no valid 'count': {count!r}")
    return manifest
