"""The flip label map: what a horizontal mirror does to each class (as mmaction2's
`flip_label_map` for Something-Something).

A class whose name speaks of a horizontal direction (`left`, `right`, `clockwise`,
`counter-clockwise`, `cw`, `ccw`, in any case and with `_`, `-` or spaces between words) turns
into its mirror partner under a flip: `left` <-> `right`, clockwise <-> counter-clockwise. When
the partner is among the classes, a mirrored clip takes the partner's label; when it is not,
clips of that class are never mirrored. Every other class is taken to look the same in a mirror.
Vertical words (`up`, `down`, `zoom`) are untouched: a horizontal flip keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Each spelling -> its canonical word; the canonical words swap under a flip.
_SPELLINGS = [
    (r"counter[\s_-]*clock[\s_-]*wise|anti[\s_-]*clock[\s_-]*wise|ccw", "ccw"),
    (r"clock[\s_-]*wise|cw", "cw"),
    (r"left", "left"),
    (r"right", "right"),
]
_MIRROR = {"ccw": "cw", "cw": "ccw", "left": "right", "right": "left"}
_WORD = re.compile("|".join(f"(?:{pattern})" for pattern, _ in _SPELLINGS), re.IGNORECASE)
_BOUNDED = re.compile(rf"(?<![a-z])(?:{_WORD.pattern})(?![a-z])", re.IGNORECASE)


def _canonical(word: str) -> str:
    for pattern, name in _SPELLINGS:
        if re.fullmatch(pattern, word, re.IGNORECASE):
            return name
    raise ValueError(word)


def _key(name: str, *, mirrored: bool = False) -> str:
    """The class name with its direction words canonical (and swapped when `mirrored`), lower
    case, separators dropped: names that differ only in spelling share a key."""
    def word(match: re.Match) -> str:
        canonical = _canonical(match.group(0))
        return f"<{_MIRROR[canonical] if mirrored else canonical}>"

    return re.sub(r"[\s_-]+", "", _BOUNDED.sub(word, name).lower())


def is_direction_class(name: str) -> bool:
    """Does the name speak of a horizontal direction (and so change under a mirror)?"""
    return _BOUNDED.search(name) is not None


@dataclass(frozen=True)
class FlipLabelMap:
    """partner[i]: the label of a mirrored clip of class i (i itself for classes a mirror
    keeps), or None: class i is never mirrored (a direction without its partner)."""

    partner: tuple[int | None, ...]
    class_names: tuple[str, ...]

    @classmethod
    def from_classes(cls, class_names: Sequence[str]) -> FlipLabelMap:
        by_key = {_key(name): index for index, name in enumerate(class_names)}
        partner = tuple(by_key.get(_key(name, mirrored=True)) if is_direction_class(name)
                        else index for index, name in enumerate(class_names))
        return cls(partner, tuple(class_names))

    @property
    def unpaired(self) -> tuple[str, ...]:
        """Direction classes without a partner: never mirrored."""
        return tuple(n for n, p in zip(self.class_names, self.partner, strict=True) if p is None)

    @property
    def swapped(self) -> tuple[tuple[str, str], ...]:
        """Pairs of classes that swap under a flip."""
        return tuple((n, self.class_names[p]) for i, (n, p) in
                     enumerate(zip(self.class_names, self.partner, strict=True))
                     if p is not None and p > i)

    def summary(self) -> str:
        """One line on what flips do with these classes ('' when they keep every label)."""
        parts = []
        if self.swapped:
            pairs = ", ".join(f"{a} <-> {b}" for a, b in self.swapped[:4])
            more = f" and {len(self.swapped) - 4} more" if len(self.swapped) > 4 else ""
            parts.append(f"mirrored clips swap {pairs}{more}")
        if self.unpaired:
            names = ", ".join(self.unpaired[:4])
            more = f" and {len(self.unpaired) - 4} more" if len(self.unpaired) > 4 else ""
            parts.append(f"{names}{more} (no mirror partner among the classes) are never "
                         "mirrored")
        return f"flips: {'; '.join(parts)} (--no-flip turns flips off)" if parts else ""
