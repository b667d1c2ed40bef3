"""What a querier accepts of a peer's signed follow-up answer before recording it.

Why: the answer verified (it is the peer's, bound to our request), but its fields go into this
node's own store, whose columns have limits (a 32-character id, a 16-character status) and
which on PostgreSQL cannot hold a NUL character. A peer's bug, or a hostile peer, must not be
able to make the querier's ``--case`` command fail with a database error half-way through its
follow-ups: a malformed answer is that peer's failure, named as such, and nothing of it is
stored.

Invariants: :func:`check_answer` raises :class:`~node.errors.PeerError` (status
``INVALID_ARGUMENT``) naming the problems (the first five), or returns; it is pure. An
accepted answer has a 32-hex-digit id, a known status, a reason of at most
:data:`MAX_REASON` characters, released values only when the status is ``released`` and only
for attributes that were asked, no NUL anywhere, and no control character but line breaks
and tabs in the reason and the values (they are printed to the operator, and a terminal obeys
escape sequences).

:func:`check_owner` then holds the answer's id against what this node already recorded: a
peer answers for a follow-up it was asked about (the id asked for, or a new one), never for
another peer's or another dataset's — otherwise a peer that learnt another's follow-up id (a
log, a guess) could rewrite that record's status and released values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enlace.v1 import match_pb2
from node.peer_checks import CONTROL_IN_TEXT, refuse
from node.store.followup_store import FollowUpRecord

#: The statuses a holder's follow-up can have (node/matching/followup.py, biometrics/followup.py).
STATUSES = frozenset({"pending", "approved", "denied", "released"})
#: The longest reason and released value recorded; a holder's own reasons are a sentence.
MAX_REASON = 1000
MAX_VALUE = 1000
_FOLLOWUP_ID = re.compile(r"[0-9a-f]{32}")


def check_answer(peer: str, answer: match_pb2.FollowUpResponse, asked: Sequence[str]) -> None:
    """Refuse ``answer`` from ``peer`` unless this node can record it faithfully."""
    problems: list[str] = []
    if not _FOLLOWUP_ID.fullmatch(answer.followup_id):
        problems.append(f"follow-up id {answer.followup_id[:40]!r} is not 32 hex digits")
    if answer.status not in STATUSES:
        problems.append(
            f"status {answer.status[:40]!r} is not one of {', '.join(sorted(STATUSES))}"
        )
    if len(answer.reason) > MAX_REASON or "\x00" in answer.reason:
        problems.append(f"reason is longer than {MAX_REASON} characters or holds a NUL")
    elif CONTROL_IN_TEXT.search(answer.reason):
        problems.append("reason holds a control character (an escape sequence)")
    if answer.attributes and answer.status != "released":
        problems.append(f"values released with status {answer.status[:40]!r}")
    wanted = set(asked)
    for attribute in answer.attributes:
        if attribute.name not in wanted:
            problems.append(f"attribute {attribute.name[:40]!r} was not asked for")
        if len(attribute.value) > MAX_VALUE or "\x00" in attribute.name + attribute.value:
            problems.append(f"the value of {attribute.name[:40]!r} is too long or holds a NUL")
        elif CONTROL_IN_TEXT.search(attribute.value):
            problems.append(f"the value of {attribute.name[:40]!r} holds a control character")
    refuse(peer, "follow-up answer", problems, cannot="be recorded")


def check_owner(
    peer: str,
    answer_id: str,
    existing: FollowUpRecord | None,
    *,
    asked_id: str,
    dataset: str,
) -> None:
    """Refuse an answer whose id is not the follow-up ``peer`` was asked about on ``dataset``:
    ``existing`` is this node's outbound record with ``answer_id``, if any."""
    problems: list[str] = []
    if asked_id and answer_id != asked_id:
        problems.append(f"it answers for follow-up {answer_id}, this node asked about {asked_id}")
    elif not asked_id and existing is not None:  # a holder gives every new follow-up a new id
        problems.append(f"the new follow-up's id {answer_id} is one this node recorded already")
    elif existing is not None and (existing.peer, existing.dataset) != (peer, dataset):
        problems.append(
            f"follow-up {answer_id} is one of {existing.peer}'s on {existing.dataset}, not "
            f"{peer}'s on {dataset}"
        )
    refuse(peer, "follow-up answer", problems, cannot="be recorded")
