"""Route each document to the compressor for its type, under one shared budget.

Documents are typed as ``code``, ``prose`` or ``structured`` (JSON, tables, CSV): from
``metadata["type"]`` when given (``json``/``table``/``csv`` mean structured), else code when
:func:`~ragzip.compressors.code.chunking.detect_language` recognises a language (``path`` or
``language`` metadata, or content), else structured when the text parses as JSON or looks like
a table, else prose. Each type maps to a compressor spec of the registry (configurable).

The request's token limit is shared: every document gets a share proportional to its size
(``allocation="size"``, the same ratio everywhere) or to size times query relevance
(``allocation="relevance"``, bi-encoder). Each type's compressor runs once on its documents with
the sum of their shares; budget a group leaves unused passes on to the next group.

Example:
    >>> router = RouterCompressor({"code": "code", "prose": "extractive"})
    >>> result = router.compress("How are retries configured?", docs, 4)
    >>> result.info["routes"]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from ragzip.compressors.base import BaseCompressor, Compressor, MethodOutput, Request
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError
from ragzip.registry import check_choice
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import CompressedDocument, Document

__all__ = ["DEFAULT_ROUTES", "RouterCompressor", "detect_type"]

DEFAULT_ROUTES: dict[str, Any] = {
    "code": {"type": "code"},
    "prose": {"type": "extractive"},
    "structured": {"type": "truncate"},
}
_TYPE_ALIASES = {
    "code": "code", "source": "code", "prose": "prose", "text": "prose", "markdown": "prose",
    "structured": "structured", "json": "structured", "table": "structured",
    "csv": "structured", "tsv": "structured", "yaml": "structured",
}  # fmt: skip
_TABLE_SEPARATORS = ("|", "\t", ",", ";")


def detect_type(document: Document) -> str:
    """``"code"``, ``"structured"`` or ``"prose"`` for one document (see the module docstring)."""
    for key in ("type", "content_type", "kind"):
        value = document.metadata.get(key)
        if isinstance(value, str) and value.lower() in _TYPE_ALIASES:
            return _TYPE_ALIASES[value.lower()]
    text = document.text.strip()
    if text[:1] in "{[" and text[-1:] in "}]":
        try:
            json.loads(text)
            return "structured"
        except ValueError:
            pass
    if _looks_like_table(text):
        return "structured"
    from ragzip.compressors.code.chunking import detect_language

    if detect_language(document.text, document.metadata) is not None:
        return "code"
    return "prose"


def _looks_like_table(text: str) -> bool:
    rows = [ln for ln in text.splitlines() if ln.strip()][:50]
    if len(rows) < 3:
        return False
    for sep in _TABLE_SEPARATORS:
        counts = [ln.count(sep) for ln in rows]
        if min(counts) >= 1 and max(counts) - min(counts) <= 1:
            return sep != "," or all(len(re.findall(r"[.!?] ", ln)) <= 1 for ln in rows)
    return False


@compressors.register("router")
class RouterCompressor(BaseCompressor):
    """Routes documents by type to sub-compressors, with one budget across all of them.

    Args:
        routes: Type (``code``, ``prose``, ``structured``) -> compressor spec (a registry
            name or ``{"type", "params"}``). Missing types use :data:`DEFAULT_ROUTES`.
            Sub-compressors count tokens with this router's tokenizer unless their params say.
        allocation: ``"size"`` (shares proportional to tokens) or ``"relevance"`` (tokens times
            bi-encoder relevance to the query).
        encoder: Bi-encoder for ``allocation="relevance"``.
        tokenizer: Token counter name.

    Raises:
        ConfigError: unknown type, allocation or compressor.
    """

    name = "router"
    request_params: ClassVar[frozenset[str]] = frozenset({"allocation"})

    def __init__(
        self,
        routes: Mapping[str, Any] | None = None,
        *,
        allocation: Literal["size", "relevance"] = "size",
        encoder: str = "minilm",
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        unknown = set(routes or {}) - set(DEFAULT_ROUTES)
        if unknown:
            raise ConfigError(
                f"unknown document types {sorted(unknown)}; use {sorted(DEFAULT_ROUTES)}"
            )
        check_choice("allocation", allocation, ("size", "relevance"))
        self.routes = {k: (v if isinstance(v, str) else dict(v)) for k, v in (routes or {}).items()}
        self.allocation = allocation
        self.encoder = encoder
        self._built: dict[str, Compressor] = {}

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "routes": self.routes,
            "allocation": self.allocation,
            "encoder": self.encoder,
        }

    def compressor_for(self, kind: str) -> Compressor:
        """The sub-compressor of a document type (built through the registry on first use)."""
        if kind not in self._built:
            spec = self.routes.get(kind, DEFAULT_ROUTES[kind])
            spec = {"type": spec} if isinstance(spec, str) else dict(spec)
            params = dict(spec.get("params") or {})
            params.setdefault("tokenizer", self.tokenizer)
            self._built[kind] = compressors.build({"type": spec["type"], "params": params})
        return self._built[kind]

    def warm_up(self) -> None:
        for kind in DEFAULT_ROUTES:
            compressor = self.compressor_for(kind)
            warm = getattr(compressor, "warm_up", None)
            if callable(warm):
                warm()

    def _compress(self, request: Request) -> MethodOutput:
        docs = request.documents
        with request.timer("route"):
            kinds = [detect_type(d) for d in docs]
        with request.timer("allocate"):
            shares = self._shares(request)
        groups: dict[str, list[int]] = {}
        for i, kind in enumerate(kinds):
            if request.tokens[i] > 0:
                groups.setdefault(kind, []).append(i)
        order = list(groups)  # by first document; unused budget flows to later groups
        kept: list[CompressedDocument] = []
        allocated: dict[str, int] = {}
        used: dict[str, int] = {}
        carry = 0.0
        for kind in order:
            members = groups[kind]
            budget_tokens = int(sum(shares[i] for i in members) + carry)
            allocated[kind] = budget_tokens
            if budget_tokens < 1:
                carry = sum(shares[i] for i in members) + carry
                used[kind] = 0
                continue
            compressor = self.compressor_for(kind)
            with request.timer(f"compress_{kind}"):
                routed = _run(compressor, request.subset(members, limit=budget_tokens))
            spent = sum(request.count(d.text) for d in routed)
            used[kind] = spent
            carry = max(0.0, budget_tokens - spent)
            for d in routed:
                kept.append(
                    CompressedDocument(
                        text=d.text,
                        source_id=d.source_id,
                        spans=d.spans,
                        score=d.score,
                        metadata={**d.metadata, "route": kind, "compressor": compressor.name},
                    )
                )
        info = {
            "routes": {d.id: k for d, k in zip(docs, kinds, strict=True)},
            "compressors": {k: self.compressor_for(k).name for k in groups},
            "allocated": allocated,
            "used": used,
        }
        return MethodOutput(kept, info)

    def _shares(self, request: Request) -> list[float]:
        tokens = np.array(request.tokens, dtype=np.float64)
        weights = tokens.copy()
        if self.allocation == "relevance" and request.query.strip():
            from ragzip.encoders.bi_encoder import get_bi_encoder

            encoder = get_bi_encoder(self.encoder)
            vectors = encoder.encode([request.query, *(d.text for d in request.documents)])
            relevance = np.clip(vectors[1:] @ vectors[0], 0.0, None).astype(np.float64)
            weights = tokens * (0.25 + relevance)
        total = float(weights.sum())
        if total <= 0:
            return [0.0] * len(tokens)
        shares = weights / total * request.limit
        return np.minimum(shares, tokens).tolist()  # type: ignore[no-any-return,unused-ignore]


def _run(compressor: Compressor, sub: Request) -> Sequence[CompressedDocument]:
    """A route's kept documents: through its stage when it counts tokens as the router does,
    else through its public edge (a compressor from outside ragzip's base class)."""
    if isinstance(compressor, BaseCompressor) and compressor.counter.name == sub.counter.name:
        return compressor.run(sub).documents
    return compressor.compress(sub.query, list(sub.documents), sub.budget).documents
