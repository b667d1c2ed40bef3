"""What a querier accepts of a holder's signed biometric search answer before using it.

Why: each probe's band decides what the officer is shown (strong, probable, no hit), its hit
reference is printed, written to the results CSV and redeemed later by a follow-up (whose
record stores the answer's epoch in a 64-bit column), and the answer's epoch is recorded on
it. A band this node does not know was shown as "no hit"; a reference with control characters
reached the terminal and the CSV as sent; an epoch beyond 2**63 made the follow-up's database
write fail on PostgreSQL. A malformed answer is that holder's failure for the probes of the
call, named; the other holders' answers stand.

Invariants: :func:`check_search` is pure; it raises :class:`~node.errors.PeerError`
(``INVALID_ARGUMENT``) or returns. An accepted answer is for the epoch probed, has one result
per probe, each of a known band, a hit carrying a reference of :data:`REFERENCE_HEX` lower-case
hex digits (what holders issue) and a no-hit carrying none.
"""

from __future__ import annotations

import re

from enlace.v1 import biometric_pb2
from node.peer_checks import refuse, shown

REFERENCE_HEX = 40
_REFERENCE = re.compile(f"[0-9a-f]{{{REFERENCE_HEX}}}")
_HITS = {biometric_pb2.ProbeResult.STRONG, biometric_pb2.ProbeResult.PROBABLE}


def check_search(
    peer: str, answer: biometric_pb2.BiometricSearchResponse, *, epoch: int, probes: int
) -> None:
    """Refuse ``answer`` from ``peer`` unless it answers ``probes`` probes made in ``epoch``."""
    problems: list[str] = []
    if answer.epoch != epoch:
        problems.append(f"it answered for epoch {answer.epoch}, not the epoch {epoch} probed")
    if len(answer.results) != probes:
        problems.append(f"it answered {len(answer.results)} results for {probes} probes")
    for n, result in enumerate(answer.results):
        if result.band in _HITS:
            if not _REFERENCE.fullmatch(result.hit_reference):
                problems.append(
                    f"result {n} is a hit whose reference {shown(result.hit_reference)} is not "
                    f"{REFERENCE_HEX} hex digits"
                )
        elif result.band != biometric_pb2.ProbeResult.NO_HIT:
            problems.append(f"result {n} has the unknown band {result.band}")
        elif result.hit_reference:
            problems.append(f"result {n} is no hit but carries a reference")
        if len(problems) > 5:
            break
    refuse(peer, "biometric search answer", problems)
