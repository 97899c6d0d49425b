"""The fine stage: a chunk that does not fit whole, pruned to its most useful blocks.

The chunk keeps its header (decorators and signature); its body blocks (:mod:`.blocks`) are
chosen by 0/1 knapsack (:mod:`.knapsack`): value = lines x (1 + relevance to the query), plus
a large bonus for must-keep text; weight = tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ragzip.compressors.base import Request
from ragzip.compressors.code.blocks import Spans, blocks, header_lines_end, perplexity_peaks
from ragzip.compressors.code.chunking import Chunk
from ragzip.compressors.code.knapsack import knapsack
from ragzip.compressors.code.layout import SourceLines
from ragzip.compressors.code.scoring import ChunkScorer

__all__ = ["FORCED", "FineStage"]

FORCED = 1e6  # priority bonus of must-keep text
_MIN_SPLIT_ROOM = 16  # tokens: below this, perplexity block boundaries are not worth an LM pass


@dataclass(frozen=True)
class FineStage:
    """Prunes chunks to blocks.

    Args:
        scorer: Relevance of blocks to the query, and the LM for perplexity boundaries.
        max_block_lines: Most lines per body block.
        block_split: ``"lines"`` or ``"perplexity"`` (also split where the LM's perplexity
            peaks, when there is room for it to matter).
    """

    scorer: ChunkScorer
    max_block_lines: int
    block_split: Literal["lines", "perplexity"] = "lines"

    def blocks(self, doc: SourceLines, chunk: Chunk, split_lm: bool = False) -> tuple[Spans, Spans]:
        """(header spans, body block spans) of a chunk; with ``split_lm``, body blocks also
        end where the LM's perplexity peaks."""
        peaks = None
        if split_lm and doc.is_code:
            header_end = header_lines_end(doc, chunk)
            peaks = perplexity_peaks(self.scorer.lm, doc, chunk.start, header_end, chunk.end)
        return blocks(doc, chunk, self.max_block_lines, peaks)

    def prune(
        self, request: Request, doc: SourceLines, chunk: Chunk, capacity: int, marker_cost: int
    ) -> tuple[Spans, int]:
        """The spans to keep of ``chunk`` within ``capacity`` tokens, and the tokens they use.

        ``marker_cost`` is the price of one elision marker; each body block is charged half of
        one (a gap sits between two blocks). Returns ``([], 0)`` when not even the header fits.
        """
        header, body = self.blocks(doc, chunk)
        header_cost = sum(request.count(doc.text[s:e]) for s, e in header)
        room = capacity - header_cost - marker_cost
        if room < 0 or (not body and not header):
            return [], 0
        if self.block_split == "perplexity" and doc.is_code and room >= _MIN_SPLIT_ROOM:
            header, body = self.blocks(doc, chunk, split_lm=True)  # the LM pass, when it pays
        texts = [doc.text[s:e] for s, e in body]
        weights = np.array(
            [request.count(t) + (marker_cost + 1) // 2 for t in texts], dtype=np.int64
        )
        forced = [request.budget.must_keep(t) for t in texts]
        relevance = self.scorer.similarity(request.query, texts) if texts else np.zeros(0)
        lines = np.array([max(1, t.count("\n") + 1) for t in texts], dtype=np.float64)
        values = lines * (1.0 + np.clip(relevance, 0.0, None)) + np.array(forced) * FORCED
        picked = knapsack(values, weights, room)
        chosen = header + [body[k] for k in picked]
        used = header_cost + marker_cost + int(weights[picked].sum())
        return sorted(chosen), used
