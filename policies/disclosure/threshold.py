"""Primary suppression: the threshold (minimum frequency) rule.

Why: a count of one to four people in a cell of nationality × border post × month can point
at identifiable individuals (the one Angolan minor who crossed at a small post in March). The
agreement's disclosure profile names ``min_cell`` (default 5); every cell — interior or
margin — whose count is in ``1 … min_cell - 1`` is withheld and flagged primary-confidential
(``CONF_STATUS=A``).

Zero is not sensitive by default: "nobody of nationality X was encountered at post Y" is the
kind of fact the exchange exists to share, and suppressing zeros would blank most of a sparse
migration table. Profiles that need it (e.g. a table of vulnerability flags, where a structural
zero next to a small margin tells too much) set ``zero_sensitive=True``; zeros are then
primary-suppressed too.

Invariants:
* The rule is public: an attacker who sees an ``A`` flag knows the cell lies in
  :meth:`ThresholdRule.primary_range`, and that every published cell of an unperturbed answer
  is either 0 (when zeros are not sensitive) or at least ``min_cell``. The secondary-suppression
  verifier assumes the attacker knows exactly this (:meth:`ThresholdRule.published_floor`).
* ``min_cell = 1`` suppresses no positive count (the rule is off); zeros follow
  ``zero_sensitive`` regardless.
* The decision depends only on each cell's own value (in the basis the caller chooses: true
  counts, or differentially private noisy counts — see :mod:`policies.disclosure.apply`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policies.agreement import Disclosure
from policies.disclosure.table import Coord, DisclosureError

DEFAULT_MIN_CELL = 5


@dataclass(frozen=True)
class ThresholdRule:
    """Counts ``1 … min_cell - 1`` (and 0 if ``zero_sensitive``) are primary-suppressed."""

    min_cell: int = DEFAULT_MIN_CELL
    zero_sensitive: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.min_cell, bool) or not isinstance(self.min_cell, int):
            raise DisclosureError(f"min_cell must be an integer, not {self.min_cell!r}")
        if self.min_cell < 1:
            raise DisclosureError(f"min_cell must be at least 1, not {self.min_cell}")

    @classmethod
    def from_profile(cls, profile: Disclosure, *, zero_sensitive: bool = False) -> ThresholdRule:
        """The rule an agreement's disclosure profile asks for."""
        return cls(min_cell=profile.min_cell, zero_sensitive=zero_sensitive)

    def is_sensitive(self, value: int) -> bool:
        """True when a cell of this value must be primary-suppressed."""
        if value < 0:
            raise DisclosureError(f"a count cannot be negative ({value})")
        if value == 0:
            return self.zero_sensitive
        return value < self.min_cell

    def primary_range(self) -> tuple[int, int]:
        """The values a primary-suppressed cell can have: what its ``A`` flag already says."""
        low = 0 if self.zero_sensitive else 1
        return low, max(low, self.min_cell - 1)

    def published_floor(self) -> int:
        """The smallest *positive* value a published (unperturbed) cell can have."""
        return max(1, self.min_cell)

    @property
    def active(self) -> bool:
        """False when the rule suppresses nothing at all."""
        return self.min_cell > 1 or self.zero_sensitive


def primary_suppression(values: Mapping[Coord, int], rule: ThresholdRule) -> frozenset[Coord]:
    """The cells the threshold rule withholds (interior cells and margins alike)."""
    return frozenset(coord for coord, value in values.items() if rule.is_sensitive(value))
