"""LongCodeZip-style code compression: rank chunks coarse, then prune blocks fine.

1. **Chunking**: each document is split by :func:`~ragzip.compressors.code.chunking.chunk_code`
   (functions, methods, class headers, module remainder; blank-line blocks for other text).
2. **Coarse**: chunks are ranked by :class:`~ragzip.compressors.code.scoring.ChunkScorer`
   (by default the shipped ``ragzip-code`` bi-encoder; LM likelihood gain, or both). In rank
   order, a chunk is kept whole when it fits the remaining budget.
3. **Fine**: the first ``fine_top`` ranked chunks that do not fit whole are pruned: their
   header (decorators and signature) is kept and their body blocks (blank-line / statement
   groups of at most ``max_block_lines`` lines; sentences for prose) are chosen by 0/1
   knapsack (value = lines x relevance, weight = tokens) within what is left, so higher-ranked
   chunks get more of the budget.
4. **Output** keeps whole lines verbatim in their original order and marks each elision with
   the language's comment syntax (``# ... 37 lines omitted``). Optionally the signatures of
   dropped functions are added while budget remains (``skeleton=True``). The result holds
   ``Request.limit`` exactly: pieces are dropped, lowest-ranked first, until the count fits.

Lines and rendering live in :mod:`.layout`, the fine stage in :mod:`.fine` (blocks from
:mod:`.blocks`, chosen by :mod:`.knapsack`); this module ranks, selects and fits.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.code.blocks import Spans
from ragzip.compressors.code.chunking import Chunk, comment_prefix, name_words
from ragzip.compressors.code.fine import FORCED, FineStage
from ragzip.compressors.code.knapsack import knapsack
from ragzip.compressors.code.layout import (
    Elision,
    Piece,
    SourceLines,
    chunk_text,
    has_text,
    marker,
    prepare,
    render,
)
from ragzip.compressors.code.scoring import ChunkScorer, Scoring
from ragzip.compressors.registry import compressors
from ragzip.encoders.relevance import DEFAULT_CODE
from ragzip.errors import ConfigError
from ragzip.registry import check_choice
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.types import CompressedDocument

__all__ = ["CodeCompressor", "knapsack"]


@compressors.register("code")
class CodeCompressor(BaseCompressor):
    """Query-aware compression of source code (LongCodeZip-style, coarse-to-fine).

    Args:
        scoring: Coarse ranking: ``"bi"`` (bi-encoder, the default), ``"lm"`` (LM likelihood
            gain on the ``lm_top`` bi-encoder candidates) or ``"blend"`` of both (with
            ``ragzip-code``, about 4x slower for a little more on code-needle; see the README).
        encoder: Bi-encoder: ``ragzip-code`` (MiniLM tuned by ``ragzip train-code`` on public
            repositories, shipped), a directory written by ``ragzip train-code``, or any
            sentence-transformers model (``minilm``).
        lm: Causal LM for ``lm``/``blend`` scoring.
        lm_top: Chunks re-scored by the LM.
        lm_weight: Weight of the LM in the blend.
        max_chunk_tokens: LM context cut per chunk.
        fine_top: Ranked chunks that may be pruned to blocks when they do not fit whole.
        fine_share: Most of the limit one pruned chunk may take (adaptive budget).
        max_block_lines: Most lines per fine-stage block.
        block_split: Fine-stage block boundaries: ``"lines"`` (blank lines and the line cap,
            the default) or ``"perplexity"`` (also before lines where the LM's perplexity
            peaks, as LongCodeZip). On code-needle 8x both kept the same hits and perplexity
            blocks doubled the time per file, so lines are the default.
        elision: ``"count"`` (``# ... 12 lines omitted``), ``"short"`` (``# ...``) or
            ``"none"`` (no marker).
        skeleton: Add the signatures of dropped functions while budget remains.
        tokenizer: Token counter name.

    Example:
        >>> comp = CodeCompressor()
        >>> comp.compress("Parse an ISO date", [Document(src, metadata={"path": "d.py"})], 4)
    """

    name = "code"
    request_params: ClassVar[frozenset[str]] = frozenset(
        {"block_split", "elision", "fine_share", "fine_top", "lm_top", "lm_weight",
         "max_block_lines", "max_chunk_tokens", "scoring", "skeleton"}
    )  # fmt: skip

    def __init__(
        self,
        scoring: Scoring = "bi",
        *,
        encoder: str = DEFAULT_CODE,
        lm: str = "smollm2-135m",
        lm_top: int = 8,
        lm_weight: float = 1.0,
        max_chunk_tokens: int = 256,
        fine_top: int = 3,
        fine_share: float = 0.5,
        max_block_lines: int = 6,
        block_split: Literal["lines", "perplexity"] = "lines",
        elision: Elision = "count",
        skeleton: bool = False,
        tokenizer: str = DEFAULT_COUNTER,
    ) -> None:
        super().__init__(tokenizer=tokenizer)
        check_choice("elision", elision, ("count", "short", "none"))
        check_choice("block_split", block_split, ("lines", "perplexity"))
        if (
            isinstance(fine_share, bool)
            or not isinstance(fine_share, int | float)
            or not 0.0 < fine_share <= 1.0
        ):
            raise ConfigError(f"fine_share must be a number in (0, 1], got {fine_share!r}")
        self.scoring = scoring
        self.encoder = encoder
        self.lm = lm
        self.lm_top = lm_top
        self.lm_weight = lm_weight
        self.max_chunk_tokens = max_chunk_tokens
        self.block_split = block_split
        self.fine_top = fine_top
        self.fine_share = fine_share
        self.max_block_lines = max_block_lines
        self.elision = elision
        self.skeleton = skeleton
        self.scorer = ChunkScorer(
            scoring,
            encoder=encoder,
            lm=lm,
            lm_top=lm_top,
            lm_weight=lm_weight,
            max_chunk_tokens=max_chunk_tokens,
        )

    def params(self) -> dict[str, object]:
        names = [
            "scoring", "encoder", "lm", "lm_top", "lm_weight", "max_chunk_tokens", "fine_top",
            "fine_share", "max_block_lines", "block_split", "elision", "skeleton",
        ]  # fmt: skip
        return {**super().params(), **{n: getattr(self, n) for n in names}}

    def warm_up(self) -> None:
        self.scorer.warm_up()

    # -- stages ------------------------------------------------------------------------------
    def _compress(self, request: Request) -> MethodOutput:
        with request.timer("chunk"):
            docs = [prepare(d.text, dict(d.metadata)) for d in request.documents]
            units = [(i, c) for i, d in enumerate(docs) for c in d.chunks if has_text(d, c)]
        if not units:
            return MethodOutput([])
        texts = [chunk_text(docs[i], c) for i, c in units]
        with request.timer("score"):
            comment = comment_prefix(next((d.language for d in docs if d.is_code), None))
            names = [name_words(c.name) for _, c in units]
            scores = self.scorer.score(request.query, texts, comment, prefixes=names)
            priority = scores + np.array(
                [FORCED if request.budget.must_keep(t) else 0.0 for t in texts]
            )
        with request.timer("select"):
            pieces = self._select(request, docs, units, texts, priority)
            if self.skeleton:
                pieces += self._skeleton(request, docs, units, pieces, priority)
        with request.timer("render"):
            kept = self._fit(request, docs, pieces)
        info = {
            "languages": [d.language for d in docs],
            "chunks": len(units),
            "pieces": sum(len(p) for p in kept.values()),
        }
        return MethodOutput(self._documents(request, docs, kept), info)

    @staticmethod
    def _prepare(text: str, metadata: dict[str, object]) -> SourceLines:
        return prepare(text, metadata)

    def _marker(self, doc: SourceLines, omitted: int, indent: str = "") -> str:
        return marker(doc, omitted, self.elision, indent)

    def _select(
        self,
        request: Request,
        docs: list[SourceLines],
        units: list[tuple[int, Chunk]],
        texts: list[str],
        priority: np.ndarray,
    ) -> list[Piece]:
        marker_cost = (
            request.count(self._marker(docs[0], 100, "    ")) if self.elision != "none" else 0
        )
        fine = self._fine_stage()
        position: dict[int, tuple[int, int]] = {}  # unit -> (its doc's unit count, index)
        per_doc: dict[int, list[int]] = {}
        for j, (i, _) in enumerate(units):
            per_doc.setdefault(i, []).append(j)
        for members in per_doc.values():
            for k, j in enumerate(members):
                position[j] = (len(members), k)
        kept = np.zeros(len(units), dtype=bool)
        remaining = request.limit
        pieces: list[Piece] = []
        pruned = 0
        for j in np.argsort(-priority, kind="stable").tolist():
            if remaining <= 0:
                break
            i, chunk = units[j]
            extra = marker_cost * self._new_gaps(kept, per_doc[i], position[j])
            cost = request.count(texts[j]) + extra
            # Adaptive budget: one chunk gets at most ``fine_share`` of the limit (pruned to
            # blocks beyond it), so a long top-ranked chunk cannot crowd out the next ones.
            share = max(1, int(self.fine_share * request.limit))
            whole = cost <= remaining
            if whole and cost <= share:
                self._keep(pieces, docs[i], i, chunk, priority[j])
                remaining -= cost
                kept[j] = True
                continue
            chosen: list[tuple[int, int]] = []
            if pruned < self.fine_top:
                capacity = min(remaining, share) - extra
                chosen, used = fine.prune(request, docs[i], chunk, capacity, marker_cost)
            if chosen:
                pieces += [Piece(i, s, e, float(priority[j])) for s, e in chosen]
                remaining -= used + extra
                kept[j] = True
                pruned += 1
            elif whole:  # the share is too small to prune into (tiny budgets): keep it whole
                self._keep(pieces, docs[i], i, chunk, priority[j])
                remaining -= cost
                kept[j] = True
            elif pruned < self.fine_top:
                capacity = remaining - extra
                chosen, used = fine.prune(request, docs[i], chunk, capacity, marker_cost)
                if chosen:
                    pieces += [Piece(i, s, e, float(priority[j])) for s, e in chosen]
                    remaining -= used + extra
                    kept[j] = True
                    pruned += 1
        if not pieces:  # nothing fits whole: the best chunk, cut to the limit by the base
            j = int(np.argmax(priority))
            i, chunk = units[j]
            start, end = docs[i].span(chunk.start, chunk.end)
            pieces.append(Piece(i, start, end, float(priority[j])))
        return pieces

    @staticmethod
    def _keep(pieces: list[Piece], doc: SourceLines, i: int, chunk: Chunk, priority: float) -> None:
        start, end = doc.span(chunk.start, chunk.end)
        pieces.append(Piece(i, start, end, float(priority)))

    @staticmethod
    def _new_gaps(kept: np.ndarray, members: list[int], where: tuple[int, int]) -> int:
        """Elision markers added (or removed) by keeping one more chunk of a document."""
        count, k = where
        before = k > 0 and not kept[members[k - 1]]
        after = k < count - 1 and not kept[members[k + 1]]
        if not kept[members].any():
            return int(before) + int(after)
        return int(before) + int(after) - 1

    def _blocks(
        self, doc: SourceLines, chunk: Chunk, split_lm: bool = False
    ) -> tuple[Spans, Spans]:
        return self._fine_stage().blocks(doc, chunk, split_lm)

    def _fine_stage(self) -> FineStage:
        return FineStage(self.scorer, self.max_block_lines, self.block_split)

    def _skeleton(
        self,
        request: Request,
        docs: list[SourceLines],
        units: list[tuple[int, Chunk]],
        pieces: list[Piece],
        priority: np.ndarray,
    ) -> list[Piece]:
        used = sum(request.count(docs[p.doc].text[p.start : p.end]) for p in pieces)
        remaining = request.limit - used - 2 * len(pieces)
        covered = {(p.doc, p.start) for p in pieces}
        extra: list[Piece] = []
        for j in np.argsort(-priority, kind="stable").tolist():
            i, chunk = units[j]
            if not chunk.is_definition:
                continue
            header, _ = self._blocks(docs[i], chunk)
            if not header or (i, header[0][0]) in covered:
                continue
            cost = request.count(docs[i].text[header[0][0] : header[0][1]]) + 2
            if cost <= remaining:
                extra.append(Piece(i, *header[0], float(priority[j]) - FORCED))
                remaining -= cost
        return extra

    # -- output ------------------------------------------------------------------------------
    def _fit(
        self, request: Request, docs: list[SourceLines], pieces: list[Piece]
    ) -> dict[int, list[Piece]]:
        """Drops the lowest-priority pieces until the rendered documents fit the limit."""
        pieces = sorted(pieces, key=lambda p: -p.priority)
        while True:
            by_doc: dict[int, list[Piece]] = {}
            for p in pieces:
                by_doc.setdefault(p.doc, []).append(p)
            total = sum(
                request.count(render(docs[i], ps, self.elision)[0]) for i, ps in by_doc.items()
            )
            if total <= request.limit or len(pieces) <= 1:
                return by_doc
            pieces = pieces[:-1]

    def _documents(
        self, request: Request, docs: list[SourceLines], kept: dict[int, list[Piece]]
    ) -> list[CompressedDocument]:
        result = []
        for i, pieces in kept.items():
            text, spans = render(docs[i], pieces, self.elision)
            source = request.documents[i]
            result.append(
                CompressedDocument(
                    text=text,
                    source_id=source.id,
                    spans=tuple(spans),
                    score=max(p.priority for p in pieces),
                    metadata={**source.metadata, "language": docs[i].language or "text"},
                )
            )
        return result
