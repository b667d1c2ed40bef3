"""Birth-date policies against the generator's ground truth: ``covering`` finds exactly the hits
of ``every`` with a third fewer keys; ``finest`` halves them again but misses true hits on
records that know only the month or year of birth (people met without a document)."""

from __future__ import annotations

import pytest

from node.manifests.sample import PolicyOutcome, person_hits_by_policy
from node.records.generate import generate


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PolicyOutcome]:
    root = tmp_path_factory.mktemp("policies")
    generate("PAN", 4000, 21, root / "pan")
    generate("HND", 4000, 22, root / "hnd")
    return person_hits_by_policy(root / "pan", root / "hnd")


def test_covering_finds_every_hit_of_every_with_fewer_keys(
    outcomes: dict[str, PolicyOutcome],
) -> None:
    every, covering = outcomes["every"], outcomes["covering"]
    assert every.travellers == covering.travellers > 1000
    assert len(every.true_hits) > 100  # the two countries do share people
    assert covering.hits == every.hits and covering.true_hits == every.true_hits
    assert covering.keys * 3 == every.keys * 2  # day and year instead of day, month, year
    assert "name+month" in every.strengths and "name+month" not in covering.strengths
    assert covering.strengths["name+day"] == every.strengths["name+day"]
    assert covering.strengths["name+year"] == (
        every.strengths["name+year"] + every.strengths["name+month"]
    )


def test_finest_loses_only_hits_below_the_day_and_some_are_true(
    outcomes: dict[str, PolicyOutcome],
) -> None:
    every, finest = outcomes["every"], outcomes["finest"]
    assert finest.keys * 3 == every.keys
    assert finest.hits <= every.hits and finest.true_hits <= every.true_hits
    assert len(finest.hits) == every.strengths["name+day"] == finest.strengths["name+day"]
    lost = every.hits - finest.hits
    lost_true = every.true_hits - finest.true_hits
    assert lost and lost_true <= lost
    # Most hits that need the month or year are namesakes, but not all: people recorded
    # without a document (partial birth date) are really missed.
    assert 0 < len(lost_true) < len(lost) / 2
