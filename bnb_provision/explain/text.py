"""A pasted text, prepared once for every pattern explain runs over it.

Logs are long and repetitive: a 10 MB training log is mostly progress bars and loss lines
that differ only in their numbers. Above 256 KiB, each line is kept only the first time
its *shape* (the line with every digit made ``0``) appears, so the patterns run over the
first occurrence of each kind of line; line numbers still refer to the original text. The
prepared text also holds its lower-cased copy (the patterns are written in lower case)
and the set of its words, so that a pattern whose words are not all there never runs.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Final

__all__ = ["REDUCE_ABOVE", "Prepared", "prepare"]

REDUCE_ABOVE: Final = 256 * 1024
_DIGITS: Final = bytes.maketrans(b"123456789", b"000000000")
_SEPARATORS: Final = bytes(c for c in range(256) if not (bytes([c]).isalnum() or c == ord("_")))
_NON_WORD: Final = bytes.maketrans(_SEPARATORS, b" " * len(_SEPARATORS))


def _lowered(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    # a character whose lower case is longer ("İ"): keep it, so that offsets agree
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _reduce(text: str) -> tuple[str, list[int], int]:
    """The first line of each shape, in order, with its original 1-based line number;
    and the number of lines. Works on bytes: splitting, digit-folding and hashing bytes
    is several times faster than the same on a str holding non-ASCII characters."""
    if len(text) <= REDUCE_ABOVE:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        count = text.count("\n") + 1
        return text, list(range(1, count + 1)), count
    raw = text.encode("utf-8", "surrogatepass")
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    shapes = raw.translate(_DIGITS).split(b"\n")  # a shape is as long as its line
    # dict(zip(reversed...)): each shape keeps its smallest index, in one C-level pass
    first = dict(zip(reversed(shapes), range(len(shapes) - 1, -1, -1), strict=True))
    keep = sorted(first.values())
    ends = list(itertools.accumulate(len(x) + 1 for x in shapes))
    kept = b"\n".join([raw[ends[i] - len(shapes[i]) - 1 : ends[i] - 1] for i in keep])
    return kept.decode("utf-8", "surrogatepass"), [i + 1 for i in keep], len(shapes)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text ready for matching: (possibly reduced) text, lower case, words, lines."""

    text: str
    lower: str
    numbers: list[int]  # original line number of each kept line
    starts: list[int]  # offset of each kept line in ``text``
    words: frozenset[bytes]
    total_lines: int
    _lines: list[str] = field(default_factory=list, repr=False)

    def index_at(self, offset: int) -> int:
        """The kept line holding ``offset``."""
        return bisect.bisect_right(self.starts, offset) - 1

    def line_number(self, offset: int) -> int:
        return self.numbers[self.index_at(offset)]

    def line(self, index: int) -> str:
        return self._lines[index]

    def line_of(self, offset: int) -> str:
        return self._lines[self.index_at(offset)]

    @property
    def lines(self) -> list[str]:
        return self._lines

    def has_words(self, words: tuple[str, ...] | frozenset[str]) -> bool:
        return all(w.encode() in self.words for w in words)


def prepare(text: str) -> Prepared:
    """Prepare ``text`` (any size) for matching."""
    kept, numbers, total = _reduce(text)
    lines = kept.split("\n")
    starts = [0] * len(lines)
    pos = 0
    for i, line in enumerate(lines):
        starts[i] = pos
        pos += len(line) + 1
    lower = _lowered(kept)
    words = frozenset(lower.encode("ascii", "replace").translate(_NON_WORD).split())
    return Prepared(
        text=kept,
        lower=lower,
        numbers=numbers,
        starts=starts,
        words=words,
        total_lines=total,
        _lines=lines,
    )
