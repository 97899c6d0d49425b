"""Faithfulness guard: every summary sentence must be supported by a source sentence.

Small generators invent facts: asked to summarise a note saying a council *approved* a budget,
SmolLM2-135M may write that it *rejected* it, or change the amount. The guard scores each
summary sentence against every source sentence the generator read and keeps it only when one
source sentence supports it:

``support(s, t) = lexical_weight * lexical(s, t) + (1 - lexical_weight) * cosine(s, t)``

where ``lexical`` is the share of the summary sentence's content words (light-stemmed; numbers
and capitalized names count double) found in ``t``. Three *hard* checks set the support to 0:

* a number in ``s`` that ``t`` does not contain (``5 million`` against ``2 million``);
* a negation (``not``, ``never``, ``no``...) in one and not the other;
* a word of ``s`` whose antonym is in ``t`` but which ``t`` lacks (``rejected``/``approved``).

A sentence whose best support is under the threshold is replaced by its best supporting source
sentence (verbatim, so it is true to the source) when that sentence is about the same thing
(similar enough) and not already in the output; otherwise it is dropped. The cosine comes from
the same bi-encoder as the extractive compressor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GuardReport", "GuardedSentence", "SourceSentence", "content_terms", "guard", "support"]

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATIONS = frozenset(
    ["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"]
)
_STOP_WORDS = """a an the of in on at to for from by with and or but is are was were be been
being am who what when where which why how did does do done has have had having will would shall
should can could may might must that this these those it its as his her hers their theirs they
them he him she we us you your i me my our ours there here then than so also very into onto
about while during such some any all each both other most least only own same just one whose
whom if because upon out up down off again further once summary document documents text
question answer according"""
_STOP = frozenset(_STOP_WORDS.split())
# Pairs of opposite predicates small models confuse; either side flags the other (stems).
_ANTONYMS = (
    ("approv", "reject"),
    ("accept", "reject"),
    ("accept", "declin"),
    ("approv", "deni"),
    ("pass", "fail"),
    ("win", "lose"),
    ("won", "lost"),
    ("increas", "decreas"),
    ("rais", "cut"),
    ("rise", "fall"),
    ("rose", "fell"),
    ("higher", "lower"),
    ("larger", "smaller"),
    ("more", "fewer"),
    ("open", "clos"),
    ("start", "end"),
    ("begin", "end"),
    ("first", "last"),
    ("befor", "after"),
    ("north", "south"),
    ("east", "west"),
    ("support", "oppos"),
    ("allow", "forbid"),
    ("allow", "ban"),
    ("born", "die"),
    ("ad", "remov"),
    ("hire", "fire"),
    ("buy", "sell"),
    ("bought", "sold"),
    ("true", "fals"),
    ("alive", "dead"),
    ("male", "female"),
    ("minimum", "maximum"),
)
_OPPOSITE: dict[str, frozenset[str]] = {}
for _a, _b in _ANTONYMS:
    _OPPOSITE[_a] = _OPPOSITE.get(_a, frozenset()) | {_b}
    _OPPOSITE[_b] = _OPPOSITE.get(_b, frozenset()) | {_a}


def _stem(word: str) -> str:
    """A light suffix stripper: ``approved``/``approves``/``approval`` -> ``approv``."""
    w = word.lower()
    if w.endswith("n't"):
        return "not"
    for suffix in ("ational", "ations", "ation", "ings", "ing", "ied", "ies", "als", "al"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)] + ("y" if suffix in ("ied", "ies") else "")
    for suffix in ("edly", "ed", "es", "ly", "e", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


def _number(token: str) -> str:
    return token.replace(",", "")


@dataclass(frozen=True)
class _Terms:
    """The comparable parts of one sentence."""

    words: frozenset[str]  # stems of content words
    weights: dict[str, float] = field(compare=False, hash=False)
    numbers: frozenset[str] = frozenset()
    negated: bool = False


def content_terms(text: str) -> _Terms:
    """Content-word stems (with weights), numbers and negation of ``text``."""
    words: set[str] = set()
    weights: dict[str, float] = {}
    numbers: set[str] = set()
    negated = False
    for i, match in enumerate(_WORD.finditer(text)):
        token = match.group()
        low = token.lower()
        if low in _NEGATIONS or low.endswith("n't"):
            negated = True
            continue
        if _NUMBER.fullmatch(token):
            numbers.add(_number(token))
            stem, weight = _number(token), 2.0
        elif low in _STOP or len(low) < 2:
            continue
        else:
            stem = _stem(low)
            weight = 2.0 if token[0].isupper() and i > 0 else 1.0  # names, not sentence starts
        words.add(stem)
        weights[stem] = max(weights.get(stem, 0.0), weight)
    return _Terms(frozenset(words), weights, frozenset(numbers), negated)


def _contradicts(claim: _Terms, source: _Terms) -> bool:
    if claim.numbers - source.numbers:
        return True
    if claim.negated != source.negated:
        return True
    for word in claim.words - source.words:
        opposite = _OPPOSITE.get(word)
        if opposite and opposite & source.words:
            return True
    return False


def lexical(claim: _Terms, source: _Terms) -> float:
    """Weighted share of ``claim``'s content words present in ``source`` (0..1), or 0 when the
    two disagree on a number, a negation or an antonym."""
    if not claim.words:
        return 0.0 if claim.negated != source.negated else 1.0
    if _contradicts(claim, source):
        return 0.0
    total = sum(claim.weights.values())
    return sum(claim.weights[w] for w in claim.words & source.words) / total


def support(claim: str, source: str, cosine: float = 0.0, lexical_weight: float = 0.6) -> float:
    """Support of one summary sentence by one source sentence (0..1; 0 on a contradiction)."""
    claim_terms, source_terms = content_terms(claim), content_terms(source)
    lex = lexical(claim_terms, source_terms)
    if lex == 0.0 and claim_terms.words and _contradicts(claim_terms, source_terms):
        return 0.0
    return lexical_weight * lex + (1.0 - lexical_weight) * max(0.0, cosine)


@dataclass(frozen=True)
class SourceSentence:
    """A sentence the generator read: its text, document index and span in that document."""

    text: str
    doc: int
    start: int
    end: int


@dataclass(frozen=True)
class GuardedSentence:
    """One output sentence after the guard.

    Attributes:
        text: The sentence (generated, or a source sentence that replaced one).
        source: Index of the best supporting source sentence (``-1`` when there are none).
        support: Its support score.
        replaced: Whether ``text`` is a source sentence put in place of a generated one.
    """

    text: str
    source: int
    support: float
    replaced: bool = False


@dataclass(frozen=True)
class GuardReport:
    """What the guard did: sentences kept or changed, and the counts for ``info["guard"]``."""

    sentences: tuple[GuardedSentence, ...]
    checked: int
    dropped: int
    replaced: int

    def counts(self) -> dict[str, int]:
        return {"checked": self.checked, "dropped": self.dropped, "replaced": self.replaced}


def support_matrix(
    claims: Sequence[str],
    sources: Sequence[SourceSentence],
    encode: Callable[[list[str]], np.ndarray] | None,
    lexical_weight: float = 0.6,
) -> np.ndarray:
    """``(len(claims), len(sources))`` support scores; ``encode`` gives unit-norm vectors (or
    ``None`` for lexical support alone)."""
    if not claims or not sources:
        return np.zeros((len(claims), len(sources)), dtype=np.float64)
    if encode is not None:
        vectors = encode([*claims, *(s.text for s in sources)])
        cosines = vectors[: len(claims)] @ vectors[len(claims) :].T
    else:
        cosines = np.zeros((len(claims), len(sources)), dtype=np.float64)
        lexical_weight = 1.0
    source_terms = [content_terms(s.text) for s in sources]
    scores = np.zeros((len(claims), len(sources)), dtype=np.float64)
    for i, claim in enumerate(claims):
        terms = content_terms(claim)
        for j, other in enumerate(source_terms):
            lex = lexical(terms, other)
            if lex == 0.0 and _contradicts(terms, other):
                continue  # a contradiction has no support, however similar the wording
            scores[i, j] = lexical_weight * lex + (1.0 - lexical_weight) * max(
                0.0, float(cosines[i, j])
            )
    return scores


def guard(
    claims: Sequence[str],
    sources: Sequence[SourceSentence],
    encode: Callable[[list[str]], np.ndarray] | None,
    *,
    threshold: float = 0.6,
    action: str = "replace",
    lexical_weight: float = 0.6,
    replace_similarity: float = 0.5,
    enabled: bool = True,
) -> GuardReport:
    """Checks summary sentences against the source sentences.

    Args:
        claims: Summary sentences, in order.
        sources: The source sentences the summary was written from.
        encode: Texts -> unit-norm vectors (a bi-encoder), or ``None`` for lexical support only.
        threshold: Support a sentence needs to stay.
        action: ``"replace"`` unsupported sentences with their best supporting source sentence
            (when not already in the output), else drop them; ``"drop"`` always drops.
        lexical_weight: Weight of lexical support against cosine similarity.
        replace_similarity: A replacement must be at least this similar to the claim (cosine,
            or share of content words without an encoder); an invented fact with no
            counterpart in the source is dropped.
        enabled: ``False`` scores nothing away: every sentence stays (attribution only).

    Returns:
        The kept sentences with their best source, and the counts.
    """
    scores = support_matrix(claims, sources, encode, lexical_weight)
    kept: list[GuardedSentence] = []
    present = {c.strip() for c in claims}
    dropped = replaced = 0
    for i, claim in enumerate(claims):
        best = int(np.argmax(scores[i])) if sources else -1
        score = float(scores[i, best]) if sources else 0.0
        if not enabled or score >= threshold:
            kept.append(GuardedSentence(claim, best, score))
            continue
        # The source sentence most like the claim (by cosine, contradictions included) is
        # the fact the generator garbled: put it back verbatim.
        candidate, similarity = _closest(i, claims, sources, encode)
        if action == "replace" and candidate >= 0 and similarity >= replace_similarity:
            text = sources[candidate].text
            if text.strip() not in present:
                present.add(text.strip())
                kept.append(GuardedSentence(text, candidate, 1.0, replaced=True))
                replaced += 1
                continue
        dropped += 1
    return GuardReport(tuple(kept), len(claims) if enabled else 0, dropped, replaced)


def _closest(
    i: int,
    claims: Sequence[str],
    sources: Sequence[SourceSentence],
    encode: Callable[[list[str]], np.ndarray] | None,
) -> tuple[int, float]:
    """The source sentence most like claim ``i`` (contradictions included) and how alike."""
    if not sources:
        return -1, 0.0
    if encode is None:
        terms = content_terms(claims[i])
        if not terms.words:
            return -1, 0.0
        overlap = [len(terms.words & content_terms(s.text).words) for s in sources]
        best = int(np.argmax(overlap))
        return best, overlap[best] / len(terms.words)
    vectors = encode([claims[i], *(s.text for s in sources)])
    similarity = vectors[1:] @ vectors[0]
    best = int(np.argmax(similarity))
    return best, float(similarity[best])
