"""LlamaIndex adapter: a ragzip compressor as a node postprocessor.

Needs ``pip install 'ragzip[llamaindex]'``; importing this module without it raises
:class:`~ragzip.errors.MissingDependencyError`.

Example:
    >>> from ragzip.adapters.llamaindex import RagzipNodePostprocessor
    >>> postprocessor = RagzipNodePostprocessor("extractive", budget=4)
    >>> query_engine = index.as_query_engine(node_postprocessors=[postprocessor])
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ragzip.adapters._common import PROVENANCE_KEY, CompressorFields
from ragzip.compressors.base import Compressor
from ragzip.errors import InvalidInputError, MissingDependencyError
from ragzip.types import Budget, CompressionResult, Document

try:
    from llama_index.core.bridge.pydantic import ConfigDict, field_serializer
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import (
        ImageNode,
        MetadataMode,
        NodeWithScore,
        QueryBundle,
        TextNode,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        f"llama-index-core is needed for the LlamaIndex adapter but cannot be imported ({exc}). "
        "Install it: pip install 'ragzip[llamaindex]'"
    ) from exc

__all__ = ["RagzipNodePostprocessor"]


class RagzipNodePostprocessor(CompressorFields, BaseNodePostprocessor):
    """Compresses retrieved nodes with a ragzip compressor, for the query of the bundle.

    Nodes with text are compressed together, within :attr:`budget`; each that keeps any text
    comes back, in input order and with its score, as a copy whose text is what remains and
    whose metadata gains a ``"ragzip"`` entry (``source_id``, ``spans``, ``score``, ``ratio``
    of the whole context, ``compressor``), hidden from the LLM and the embedder. Nodes that
    keep nothing are dropped; image nodes and nodes without text pass through unchanged.
    Inputs are never modified. A query is required: ``postprocess_nodes`` without
    ``query_bundle`` or ``query_str`` raises :class:`~ragzip.errors.InvalidInputError`.

    ``to_dict()``/``to_json()`` give the compressor as its spec (``{"type", "params"}``) and
    the budget as a dict, and ``from_dict()``/``from_json()`` build it back; a compressor
    outside the registry serialises but cannot be built back from its spec.

    Args:
        compressor: A ragzip compressor, a pipeline (its compressor), a registry name such as
            ``"extractive"`` or a spec dict. May be passed positionally.
        budget: A :class:`~ragzip.types.Budget`, a ratio, or a dict of its fields (default 4).

    Example:
        >>> postprocessor = RagzipNodePostprocessor("extractive", budget={"tokens": 300})
        >>> postprocessor.postprocess_nodes(nodes, query_str="Who discovered penicillin?")
        >>> RagzipNodePostprocessor.from_json(postprocessor.to_json())
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @classmethod
    def class_name(cls) -> str:
        return "RagzipNodePostprocessor"

    @field_serializer("compressor")
    def _compressor_spec(self, compressor: Compressor) -> dict[str, Any]:
        return compressor.to_dict()

    @field_serializer("budget")
    def _budget_fields(self, budget: Budget) -> dict[str, Any]:
        return budget.to_dict()

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query(query_bundle)
        texts = _text_positions(nodes)
        if not texts:
            return list(nodes)
        result = self.compressor.compress(query, _to_ragzip(nodes, texts), self.budget)
        return _rebuild(nodes, texts, result)

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query(query_bundle)
        texts = _text_positions(nodes)
        if not texts:
            return list(nodes)
        result = await self.compressor.acompress(query, _to_ragzip(nodes, texts), self.budget)
        return _rebuild(nodes, texts, result)


def _query(bundle: QueryBundle | None) -> str:
    """The text to compress for.

    Raises:
        InvalidInputError: there is no bundle, or its ``query_str`` is blank.
    """
    query = bundle.query_str if bundle is not None else None
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(
            "RagzipNodePostprocessor compresses for a query but got none: pass "
            "query_bundle=QueryBundle('...') or query_str='...' to postprocess_nodes"
        )
    return query


def _text_positions(nodes: Sequence[NodeWithScore]) -> list[int]:
    if nodes is None or isinstance(nodes, str | bytes | Mapping):
        raise InvalidInputError("nodes must be a list of NodeWithScore")
    for i, item in enumerate(nodes):
        if not isinstance(item, NodeWithScore):
            raise InvalidInputError(f"node {i} must be a NodeWithScore, got {type(item).__name__}")
    return [
        i
        for i, item in enumerate(nodes)
        if not isinstance(item.node, ImageNode)
        and item.node.get_content(metadata_mode=MetadataMode.NONE).strip()
    ]


def _to_ragzip(nodes: Sequence[NodeWithScore], positions: list[int]) -> list[Document]:
    # Positions as ids: unique by construction, so results map back to nodes exactly.
    return [
        Document(
            nodes[i].node.get_content(metadata_mode=MetadataMode.NONE),
            id=str(i),
            metadata=nodes[i].node.metadata,
        )
        for i in positions
    ]


def _rebuild(
    nodes: Sequence[NodeWithScore], positions: list[int], result: CompressionResult
) -> list[NodeWithScore]:
    pieces = {int(source): kept for source, kept in result.by_source().items()}
    is_text = set(positions)
    ratio = result.ratio if math.isfinite(result.ratio) else None
    out = []
    for i, item in enumerate(nodes):
        if i not in is_text:
            out.append(item)
            continue
        if i not in pieces:
            continue
        kept = pieces[i]
        scores = [float(p.score) for p in kept if p.score is not None]
        node = item.node.model_copy(deep=True)
        node.metadata = {
            **copy.deepcopy(dict(item.node.metadata)),
            PROVENANCE_KEY: {
                "source_id": item.node.node_id,
                "spans": [[s.start, s.end] for p in kept for s in p.spans],
                "score": max(scores) if scores else None,
                "ratio": ratio,
                "compressor": result.compressor,
            },
        }
        for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
            if PROVENANCE_KEY not in keys:
                keys.append(PROVENANCE_KEY)
        node.set_content(" ".join(p.text for p in kept))
        if isinstance(node, TextNode):  # offsets into the source no longer fit the new text
            node.start_char_idx = node.end_char_idx = None
        out.append(NodeWithScore(node=node, score=item.score))
    return out
