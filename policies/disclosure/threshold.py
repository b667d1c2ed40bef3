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
* :func:`attacker_bounds` states that knowledge per cell, for published values (exact or
  cell-key perturbed with a public ``max_noise``) and for ``A``/``D`` flags; the secondary
  suppression attacker starts from it.
* The decision depends only on each cell's own value (in the basis the caller chooses: true
  counts, or differentially private noisy counts — see :mod:`policies.disclosure.apply`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from policies.agreement import Disclosure
from policies.disclosure.table import Coord, DisclosureError

DEFAULT_MIN_CELL = 5

#: What a reader can infer about one true count: ``(low, high)``, ``high=None`` unbounded.
Bounds = tuple[int, int | None]


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


def verify_threshold(
    released: Mapping[Coord, int | None],
    conf_status: Mapping[Coord, str],
    rule: ThresholdRule,
    *,
    exact: bool,
) -> None:
    """Raise :class:`DisclosureError` unless an answer obeys the rule it claims to obey.

    A last check before release: every ``A`` or ``D`` cell carries no value, every other cell
    carries an integer ``>= 0``, and — when the published values are the ones suppression
    decided on (``exact``: no cell-key perturbation) — no published value is sensitive.
    """
    bad: list[str] = []
    for coord, value in released.items():
        status = conf_status.get(coord, "F")
        if status in ("A", "D"):
            if value is not None:
                bad.append(f"{coord} is flagged {status} but carries a value")
        elif value is None or isinstance(value, bool) or value < 0:
            bad.append(f"{coord} is published without a valid count ({value!r})")
        elif exact and rule.is_sensitive(value):
            bad.append(f"{coord} publishes the sensitive count {value}")
    if bad:
        raise DisclosureError(
            "the answer breaks the threshold rule: " + "; ".join(bad[:3]),
            hint="the answer must not be released; report a bug in disclosure control",
        )


def published_bounds(value: int, rule: ThresholdRule, max_noise: int) -> Bounds:
    """What a published value tells the attacker about the true count."""
    if max_noise == 0 or value == 0:
        return value, value
    return max(rule.published_floor(), value - max_noise), value + max_noise


def attacker_bounds(
    coords: Iterable[Coord],
    released: Mapping[Coord, int | None],
    conf_status: Mapping[Coord, str],
    rule: ThresholdRule,
    max_noise: int = 0,
) -> dict[Coord, Bounds]:
    """Per-cell knowledge of the attacker from the published values and flags alone."""
    bounds: dict[Coord, Bounds] = {}
    for coord in coords:
        status = conf_status.get(coord, "F")
        value = released.get(coord)
        if status == "A":
            bounds[coord] = rule.primary_range()
        elif status == "D":
            bounds[coord] = (rule.published_floor(), None)
        elif value is None:
            raise DisclosureError(f"cell {coord} is neither published nor flagged A or D")
        else:
            bounds[coord] = published_bounds(value, rule, max_noise)
    return bounds
