"""Stop strings: cut a completion, or a stream of text deltas, before the first one.

Backends that cannot stop on strings themselves still honour them: :class:`BaseGenerator`
applies :func:`truncate_at_stop` to whole texts and :func:`apply_stop` to streams, which agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

__all__ = ["StopFilter", "apply_stop", "truncate_at_stop"]


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cuts ``text`` before the earliest stop string; says whether it cut."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class StopFilter:
    """Applies stop strings to a stream of text deltas.

    Text that could be the start of a stop string is held back until the next delta settles
    it, so the concatenated output equals :func:`truncate_at_stop` of the whole text.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = tuple(stop)
        self.stopped = False
        self._pending = ""

    def feed(self, delta: str) -> str:
        """Returns the part of ``pending + delta`` that is safe to emit now."""
        if self.stopped:
            return ""
        text = self._pending + delta
        if not self.stop:
            return text
        # Earliest place a stop string could still start: a suffix that may complete later.
        hold = max(_overlap(text, s) for s in self.stop)
        safe = len(text) - hold
        cut, found = truncate_at_stop(text, self.stop)
        if found and len(cut) <= safe:
            self.stopped = True
            self._pending = ""
            return cut
        self._pending = text[safe:]
        return text[:safe]

    def flush(self) -> str:
        """What was held back, once the stream has ended."""
        rest, self._pending = self._pending, ""
        if self.stopped:
            return ""
        self.stopped = True
        return truncate_at_stop(rest, self.stop)[0]


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


def apply_stop(deltas: Iterator[str], stop: Sequence[str]) -> Iterator[str]:
    """Cuts a stream of text deltas before the first stop string (empty deltas dropped)."""
    if not stop:
        yield from (d for d in deltas if d)
        return
    stops = StopFilter(stop)
    try:
        for delta in deltas:
            text = stops.feed(delta)
            if text:
                yield text
            if stops.stopped:
                return
        rest = stops.flush()
        if rest:
            yield rest
    finally:
        close: Callable[[], object] | None = getattr(deltas, "close", None)
        if close is not None:
            close()
