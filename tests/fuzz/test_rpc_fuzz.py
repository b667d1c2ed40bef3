"""Fuzz every RPC under valid envelopes: random bytes, mutated and typed bodies, odd headers.

Target (docs/assurance.md): 0 exceptions out of the pipeline and 0 INTERNAL answers over at
least 100,000 fuzzed messages per RPC (``ENLACE_FUZZ_EXAMPLES=100000``, offline); CI runs
:data:`fuzz.harness.FAST_EXAMPLES` per RPC on both backends. The methods are the ones the
factory registers, each with a row in :data:`hostile.toolkit.ROWS` (a test each);
:func:`test_every_served_method_has_a_row` fails when a service is added without one.
``ENLACE_FUZZ_REPORT=FILE`` appends the status counts of each run to ``FILE`` (JSON lines).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator

import pytest
from hostile.toolkit import HELPER, ROWS, databases, furnish, in_process, open_federation
from hypothesis import given
from hypothesis import strategies as st

from fuzz.harness import Harness, InProcessCaller, fuzz_examples, fuzz_settings, plan
from fuzz.strategies import AGREEMENTS, PURPOSES, body, header_text
from node.audit import verify_chain

COUNTRIES = ("PAN", "CRI", "HND")
SERVED = ("PAN", "CRM", HELPER)
LISTED = sorted(ROWS)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    admin = (
        request.getfixturevalue("postgres_admin_engine") if request.param == "postgres" else None
    )
    root = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with databases(root / "db", (*COUNTRIES, "CRM", HELPER), admin) as urls:
        fed = open_federation(root / "fed", urls, COUNTRIES, helper=HELPER)
        try:
            furnish(fed, root / "data")
            made = Harness(fed, {c: in_process(fed.runtimes[c]) for c in SERVED})
            yield made
            for client in made.clients.values():
                client.close()
        finally:
            fed.close()


def fuzz_method(harness: Harness, method: str, messages: int) -> int:
    """Send ``messages`` fuzzed requests to ``method``; returns how many were answered."""
    callee, _spec, row = harness.methods()[method]
    caller = row.caller if row.caller != callee else "CRI"
    baseline = row.body(InProcessCaller(harness, caller))
    examples, batch = plan(messages)
    sent = 0

    @fuzz_settings(examples)
    @given(rng=st.randoms(use_true_random=False))
    def one(rng: random.Random) -> None:
        nonlocal sent
        for _ in range(batch):
            purpose = header_text(rng, PURPOSES, row.purpose)
            agreement = header_text(rng, AGREEMENTS, row.agreement)
            harness.send(method, body(rng, baseline), purpose=purpose, agreement=agreement)
            sent += 1

    one()
    harness.send(method, baseline.SerializeToString())  # still answered after the storm
    return sent


def report(harness: Harness, method: str, sent: int, seconds: float) -> None:
    """Append this method's figures to ``ENLACE_FUZZ_REPORT`` (when set): one JSON line."""
    path = os.environ.get("ENLACE_FUZZ_REPORT")
    if path:
        backend = harness.fed.runtimes["PAN"].store.backend
        line = {
            "backend": backend,
            "method": method,
            "messages": sent,
            "seconds": round(seconds, 1),
            "answers": harness.counts.get(method, {}),
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, sort_keys=True) + "\n")


@pytest.mark.parametrize("method", LISTED)
def test_fuzzed_requests_never_crash_nor_answer_internal(harness: Harness, method: str) -> None:
    # A method with a fuzz row that the nodes no longer serve is a regression, not a skip.
    assert method in harness.methods(), f"{method} has a fuzz row but no node serves it"
    wanted = fuzz_examples()
    started = time.perf_counter()
    sent = fuzz_method(harness, method, wanted)
    report(harness, method, sent, time.perf_counter() - started)
    assert sent >= wanted
    answered = harness.counts[method]
    assert sum(answered.values()) > wanted and not set(answered) & {"INTERNAL", "UNKNOWN"}


def test_every_served_method_has_a_row(harness: Harness) -> None:
    """A method the factory registers without a row would be fuzzed from an empty body only,
    which never reaches its handler: adding a service means adding its row."""
    served = set(harness.methods())
    assert len(served) >= len(ROWS) > 0
    missing = sorted(served - set(ROWS))
    assert not missing, f"served methods without a row in hostile/rows.py: {missing}"


def test_the_fuzzed_nodes_still_serve_and_verify_their_audit_chain(harness: Harness) -> None:
    harness.send("/enlace.v1.NodeService/Ping", b"")
    for country in SERVED:
        verify_chain(harness.fed.runtimes[country].store.iter_audit())
