"""LongCodeZip-style code compression: rank chunks coarse, then prune blocks fine.

1. **Chunking**: each document is split by :func:`~ragzip.compressors.code.chunking.chunk_code`
   (functions, methods, class headers, module remainder; blank-line blocks for other text).
2. **Coarse**: chunks are ranked by :class:`~ragzip.compressors.code.scoring.ChunkScorer`
   (bi-encoder, LM likelihood gain, or both). In rank order, a chunk is kept whole when it fits
   the remaining budget.
3. **Fine**: the first ``fine_top`` ranked chunks that do not fit whole are pruned: their
   header (decorators and signature) is kept and their body blocks (blank-line / statement
   groups of at most ``max_block_lines`` lines; sentences for prose) are chosen by 0/1
   knapsack (value = lines x relevance, weight = tokens) within what is left, so higher-ranked
   chunks get more of the budget.
4. **Output** keeps whole lines verbatim in their original order and marks each elision with
   the language's comment syntax (``# ... 37 lines omitted``). Optionally the signatures of
   dropped functions are added while budget remains (``skeleton=True``). The result holds
   ``Request.limit`` exactly: pieces are dropped, lowest-ranked first, until the count fits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ragzip.compressors.code.chunking import Chunk, chunk_code, comment_prefix, detect_language
from ragzip.compressors.code.scoring import ChunkScorer, Scoring
from ragzip.errors import ConfigError
from ragzip.compressors.base import BaseCompressor, MethodOutput, Request
from ragzip.compressors.registry import compressors
from ragzip.registry import check_choice
from ragzip.tokens import DEFAULT_COUNTER
from ragzip.text import segment
from ragzip.types import CompressedDocument, Span

__all__ = ["CodeCompressor"]

_FORCED = 1e6
_MAX_CELLS = 4000  # knapsack capacity resolution
_MIN_SPLIT_ROOM = 16  # tokens: below this, perplexity block boundaries are not worth an LM pass


@dataclass
class _Doc:
    text: str
    language: str | None
    is_code: bool
    offsets: list[int]  # character offset of each line start, plus len(text)
    lines: list[str]
    chunks: list[Chunk]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Character span of lines ``[start, end)`` without the final line break."""
        return self.offsets[start], self.offsets[start] + len(
            self.text[self.offsets[start] : self.offsets[end]].rstrip(
                "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
            )
        )


@dataclass(frozen=True)
class _Piece:
    doc: int
    start: int  # character span
    end: int
    priority: float


@compressors.register("code")
class CodeCompressor(BaseCompressor):
    """Query-aware compression of source code (LongCodeZip-style, coarse-to-fine).

    Args:
        scoring: Coarse ranking: ``"bi"`` (bi-encoder), ``"lm"`` (LM likelihood gain on the
            ``lm_top`` bi-encoder candidates) or ``"blend"`` of both (the default: it ranked
            best on code-needle; ``"bi"`` is several times cheaper, see the README).
        encoder: Bi-encoder name.
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
        {
            "block_split",
            "elision",
            "fine_share",
            "fine_top",
            "lm_top",
            "lm_weight",
            "max_block_lines",
            "max_chunk_tokens",
            "scoring",
            "skeleton",
        }
    )

    def __init__(
        self,
        scoring: Scoring = "blend",
        *,
        encoder: str = "minilm",
        lm: str = "smollm2-135m",
        lm_top: int = 8,
        lm_weight: float = 1.0,
        max_chunk_tokens: int = 256,
        fine_top: int = 3,
        fine_share: float = 0.5,
        max_block_lines: int = 6,
        block_split: Literal["lines", "perplexity"] = "lines",
        elision: Literal["count", "short", "none"] = "count",
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
            docs = [self._prepare(d.text, dict(d.metadata)) for d in request.documents]
            units = [(i, c) for i, d in enumerate(docs) for c in d.chunks if self._has_text(d, c)]
        if not units:
            return MethodOutput([])
        texts = [self._chunk_text(docs[i], c) for i, c in units]
        with request.timer("score"):
            comment = comment_prefix(next((d.language for d in docs if d.is_code), None))
            names = [_describe(c) for _, c in units]
            scores = self.scorer.score(request.query, texts, comment, prefixes=names)
            priority = scores + np.array(
                [_FORCED if request.budget.must_keep(t) else 0.0 for t in texts]
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

    def _prepare(self, text: str, metadata: dict[str, object]) -> _Doc:
        language = detect_language(text, metadata)
        lines = text.splitlines(keepends=True)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        bare = [ln.rstrip("\r\n") for ln in lines]
        chunks = chunk_code(text, language) if language else chunk_code(text, "text")
        return _Doc(text, language, language is not None, offsets, bare, chunks)

    @staticmethod
    def _has_text(doc: _Doc, chunk: Chunk) -> bool:
        return any(ln.strip() for ln in doc.lines[chunk.start : chunk.end])

    @staticmethod
    def _chunk_text(doc: _Doc, chunk: Chunk) -> str:
        start, end = doc.span(chunk.start, chunk.end)
        return doc.text[start:end]

    def _marker(self, doc: _Doc, omitted: int, indent: str = "") -> str:
        if self.elision == "none":
            return ""
        comment = comment_prefix(doc.language)
        if not doc.is_code:
            return "..."
        if self.elision == "short":
            return f"{indent}{comment} ..."
        return f"{indent}{comment} ... {omitted} lines omitted"

    def _select(
        self,
        request: Request,
        docs: list[_Doc],
        units: list[tuple[int, Chunk]],
        texts: list[str],
        priority: np.ndarray,
    ) -> list[_Piece]:
        marker = request.count(self._marker(docs[0], 100, "    ")) if self.elision != "none" else 0
        position: dict[int, tuple[int, int]] = {}  # unit -> (its doc's unit count, index)
        per_doc: dict[int, list[int]] = {}
        for j, (i, _) in enumerate(units):
            per_doc.setdefault(i, []).append(j)
        for members in per_doc.values():
            for k, j in enumerate(members):
                position[j] = (len(members), k)
        kept = np.zeros(len(units), dtype=bool)
        remaining = request.limit
        pieces: list[_Piece] = []
        pruned = 0
        for j in np.argsort(-priority, kind="stable").tolist():
            if remaining <= 0:
                break
            i, chunk = units[j]
            extra = marker * self._new_gaps(kept, per_doc[i], position[j])
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
                chosen, used = self._fine(
                    request, docs[i], chunk, min(remaining, share) - extra, marker
                )
            if chosen:
                pieces += [_Piece(i, s, e, float(priority[j])) for s, e in chosen]
                remaining -= used + extra
                kept[j] = True
                pruned += 1
            elif whole:  # the share is too small to prune into (tiny budgets): keep it whole
                self._keep(pieces, docs[i], i, chunk, priority[j])
                remaining -= cost
                kept[j] = True
            elif pruned < self.fine_top:
                chosen, used = self._fine(request, docs[i], chunk, remaining - extra, marker)
                if chosen:
                    pieces += [_Piece(i, s, e, float(priority[j])) for s, e in chosen]
                    remaining -= used + extra
                    kept[j] = True
                    pruned += 1
        if not pieces:  # nothing fits whole: the best chunk, cut to the limit by the base
            j = int(np.argmax(priority))
            i, chunk = units[j]
            start, end = docs[i].span(chunk.start, chunk.end)
            pieces.append(_Piece(i, start, end, float(priority[j])))
        return pieces

    @staticmethod
    def _keep(pieces: list[_Piece], doc: _Doc, i: int, chunk: Chunk, priority: float) -> None:
        start, end = doc.span(chunk.start, chunk.end)
        pieces.append(_Piece(i, start, end, float(priority)))

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
        self, doc: _Doc, chunk: Chunk, split_lm: bool = False
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(header spans, body block spans) of a chunk, as character spans.

        Body blocks end at blank lines, after ``max_block_lines`` lines, and, with ``split_lm``,
        before a line whose LM perplexity peaks (higher than both neighbours and than the
        body's mean by half a standard deviation): LongCodeZip's perplexity block boundaries.
        """
        if not doc.is_code:
            start, end = doc.span(chunk.start, chunk.end)
            spans = [(start + s.start, start + s.end) for s in segment(doc.text[start:end])]
            return [], spans
        header_end = chunk.start
        if chunk.is_definition or chunk.kind == "class":
            for k in range(chunk.start, min(chunk.end, chunk.start + 12)):
                stripped = doc.lines[k].strip()
                header_end = k + 1
                if stripped.startswith(("@", "#", "//", "/*", "*")) or not stripped:
                    continue
                if stripped.endswith((":", "{", "}", ";")) or "{" in stripped:
                    break
        header = [doc.span(chunk.start, header_end)] if header_end > chunk.start else []
        body: list[tuple[int, int]] = []
        peaks = self._peaks(doc, chunk.start, header_end, chunk.end) if split_lm else set()
        start = header_end
        for k in range(header_end, chunk.end + 1):
            blank = k < chunk.end and not doc.lines[k].strip()
            peak = k in peaks and k > start
            if k == chunk.end or blank or peak or k - start >= self.max_block_lines:
                if any(ln.strip() for ln in doc.lines[start:k]):
                    first = next(x for x in range(start, k) if doc.lines[x].strip())
                    body.append(doc.span(first, k))
                start = k + 1 if blank else k
        return header, body

    def _peaks(self, doc: _Doc, context: int, start: int, end: int) -> set[int]:
        """Lines in ``[start, end)`` where the LM's perplexity peaks (block boundaries); lines
        from ``context`` on (the chunk's header) are read first."""
        nll = self.scorer.lm.line_surprisal(doc.lines[context:end])[start - context :]
        filled = np.where(np.isnan(nll), -np.inf, nll)
        known = nll[~np.isnan(nll)]
        if known.size < 3:
            return set()
        level = float(known.mean() + 0.5 * known.std())
        peaks = set()
        for k in range(1, len(filled) - 1):
            if filled[k] > level and filled[k] > filled[k - 1] and filled[k] >= filled[k + 1]:
                peaks.add(start + k)
        return peaks

    def _fine(
        self, request: Request, doc: _Doc, chunk: Chunk, capacity: int, marker: int
    ) -> tuple[list[tuple[int, int]], int]:
        header, body = self._blocks(doc, chunk)
        header_cost = sum(request.count(doc.text[s:e]) for s, e in header)
        room = capacity - header_cost - marker
        if room < 0 or (not body and not header):
            return [], 0
        if self.block_split == "perplexity" and doc.is_code and room >= _MIN_SPLIT_ROOM:
            header, body = self._blocks(doc, chunk, split_lm=True)  # the LM pass, when it pays
        texts = [doc.text[s:e] for s, e in body]
        weights = np.array([request.count(t) + (marker + 1) // 2 for t in texts], dtype=np.int64)
        forced = [request.budget.must_keep(t) for t in texts]
        relevance = self.scorer.similarity(request.query, texts) if texts else np.zeros(0)
        lines = np.array([max(1, t.count("\n") + 1) for t in texts], dtype=np.float64)
        values = lines * (1.0 + np.clip(relevance, 0.0, None)) + np.array(forced) * _FORCED
        picked = knapsack(values, weights, room)
        chosen = header + [body[k] for k in picked]
        used = header_cost + marker + int(weights[picked].sum())
        return sorted(chosen), used

    def _skeleton(
        self,
        request: Request,
        docs: list[_Doc],
        units: list[tuple[int, Chunk]],
        pieces: list[_Piece],
        priority: np.ndarray,
    ) -> list[_Piece]:
        used = sum(request.count(docs[p.doc].text[p.start : p.end]) for p in pieces)
        remaining = request.limit - used - 2 * len(pieces)
        covered = {(p.doc, p.start) for p in pieces}
        extra: list[_Piece] = []
        for j in np.argsort(-priority, kind="stable").tolist():
            i, chunk = units[j]
            if not chunk.is_definition:
                continue
            header, _ = self._blocks(docs[i], chunk)
            if not header or (i, header[0][0]) in covered:
                continue
            cost = request.count(docs[i].text[header[0][0] : header[0][1]]) + 2
            if cost <= remaining:
                extra.append(_Piece(i, *header[0], float(priority[j]) - _FORCED))
                remaining -= cost
        return extra

    # -- output ------------------------------------------------------------------------------
    def _fit(
        self, request: Request, docs: list[_Doc], pieces: list[_Piece]
    ) -> dict[int, list[_Piece]]:
        """Drops the lowest-priority pieces until the rendered documents fit the limit."""
        pieces = sorted(pieces, key=lambda p: -p.priority)
        while True:
            by_doc: dict[int, list[_Piece]] = {}
            for p in pieces:
                by_doc.setdefault(p.doc, []).append(p)
            total = sum(request.count(self._render(docs[i], ps)[0]) for i, ps in by_doc.items())
            if total <= request.limit or len(pieces) <= 1:
                return by_doc
            pieces = pieces[:-1]

    def _render(self, doc: _Doc, pieces: list[_Piece]) -> tuple[str, list[Span]]:
        spans: list[list[int]] = []
        for p in sorted(pieces, key=lambda p: p.start):
            if spans and not doc.text[spans[-1][1] : p.start].strip():
                spans[-1][1] = max(spans[-1][1], p.end)
            else:
                spans.append([p.start, p.end])
        parts: list[str] = []
        position = 0
        sep = "\n" if doc.is_code else " "
        for start, end in spans:
            gap = doc.text[position:start]
            if gap.strip():
                marker = self._marker(
                    doc, _line_count(gap, position == 0), _indent(doc.text, start)
                )
                if marker:
                    parts.append(marker)
            parts.append(doc.text[start:end])
            position = end
        tail = doc.text[position:]
        if tail.strip():
            marker = self._marker(doc, _line_count(tail, position == 0, True), "")
            if marker:
                parts.append(marker)
        return sep.join(parts), [Span(s, e) for s, e in spans]

    def _documents(
        self, request: Request, docs: list[_Doc], kept: dict[int, list[_Piece]]
    ) -> list[CompressedDocument]:
        result = []
        for i, pieces in kept.items():
            text, spans = self._render(docs[i], pieces)
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


def _describe(chunk: Chunk) -> str:
    """The chunk's name in words (``MultiDict.getlist`` -> ``multi dict getlist``), one line.

    Prefixed to the text the bi-encoder scores: identifiers in snake or camel case split into
    words match a natural-language query better than the raw token.
    """
    if not chunk.name:
        return ""
    words: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", chunk.name):
        words += re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", part).lower().split()
    return " ".join(words) + "\n" if words else ""


def _indent(text: str, start: int) -> str:
    line = text[start : text.find("\n", start) if "\n" in text[start:] else len(text)]
    return line[: len(line) - len(line.lstrip())]


def _line_count(gap: str, leading: bool, trailing: bool = False) -> int:
    """Lines in an omitted gap between two kept line spans (or before the first/after the last)."""
    breaks = gap.count("\n")
    return max(1, breaks + (1 if leading else 0) + (1 if trailing else 0) - 1)


def knapsack(values: np.ndarray, weights: np.ndarray, capacity: int) -> list[int]:
    """0/1 knapsack: indices maximizing the value within ``capacity`` (weights >= 0).

    Capacities above a few thousand are rescaled (weights rounded up), so the result always
    fits. Items of zero weight are always taken.
    """
    n = len(values)
    if n == 0 or capacity < 0:
        return []
    scale = max(1.0, capacity / _MAX_CELLS)
    w = np.ceil(np.asarray(weights, dtype=np.float64) / scale).astype(np.int64)
    cap = int(capacity // scale)
    best = np.zeros(cap + 1, dtype=np.float64)
    take = np.zeros((n, cap + 1), dtype=bool)
    for k in range(n):
        if w[k] > cap:
            continue
        candidate = np.full(cap + 1, -np.inf)
        candidate[w[k] :] = best[: cap + 1 - w[k]] + values[k]
        better = candidate > best
        take[k] = better
        best = np.where(better, candidate, best)
    picked = []
    c = cap
    for k in range(n - 1, -1, -1):
        if take[k, c]:
            picked.append(k)
            c -= int(w[k])
    return sorted(picked)
