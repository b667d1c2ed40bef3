"""The follow-ups a ``--case`` command asked: one entry per hit, a table, and the exit status.

Used by ``enlace match document | person --case``, ``enlace match biometric --case`` and
``enlace screen manifest --case``, so the three report a follow-up the same way.

Why: with ``--case`` the operator asked for every hit to be followed up. A follow-up that is
not made must be as visible as one that is: in the table, in ``--json`` and in the exit status,
not only as a line on stderr that a script never reads.

Invariants of an entry (a JSON object):

* ``peer``, ``dataset``, ``case_reference`` and ``status`` are always there, with whatever
  the caller adds to say which hit it is (a manifest ``position``, a biometric ``probe``).
* ``status`` is the peer's answer (``pending``, ``released``, ``denied``: the follow-up record's
  fields), :data:`NOT_ASKED` (our copy of the agreement grants no follow-up attribute: the peer
  would refuse, and it would cost both an audit entry and a unit of quota, so it is not called)
  or :data:`FAILED` (the call failed). Both carry a ``reason``.
* Only :data:`FAILED` changes the exit status (1, or the command's own code: a screening
  exits 5); a ``denied`` answer and a ``not asked`` entry are answers, not failures. One
  failure never hides the other follow-ups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.table import Table

from node.cli.common import (
    FittedTable,
    err_console,
    error_line,
    id_column,
    styled,
    text_column,
)
from node.errors import EnlaceError
from node.store.followup_store import FollowUpRecord

#: Follow-up entries that are not a peer's answer.
NOT_ASKED, FAILED = "not asked", "failed"
_STYLE = {FAILED: "red", NOT_ASKED: "dim", "released": "bold green"}


def not_granted_reason(peer: str, dataset: str, purpose: str) -> str:
    """Why a hit is :data:`NOT_ASKED`."""
    return f"our agreement with {peer} grants no follow-up attribute of {dataset} for {purpose}"


def follow_up_entry(
    where: dict[str, Any],
    *,
    granted: bool,
    ask: Callable[[], FollowUpRecord],
    purpose: str,
) -> dict[str, Any]:
    """The entry of one hit: ``where`` (``peer``, ``dataset``, ``case_reference`` and what
    says which hit) with the answer of ``ask()`` if ``granted``, else :data:`NOT_ASKED`;
    :data:`FAILED` with the error as ``reason`` if ``ask()`` raises one of the node's errors
    (a peer's refusal, an unreachable peer, a store failure). Anything else is a bug here and
    is raised: shown as one peer's failure, it would be read as the peer's doing."""
    if not granted:
        reason = not_granted_reason(where["peer"], where["dataset"], purpose)
        return where | {"status": NOT_ASKED, "reason": reason}
    try:
        record = ask()
    except EnlaceError as exc:  # one peer's refusal must not hide the others
        return where | {"status": FAILED, "reason": str(exc)}
    return where | record.to_dict()


def failed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of follow-ups that failed."""
    return [e for e in entries if e["status"] == FAILED]


def followups_table(
    entries: list[dict[str, Any]], case: str, *, hit: tuple[str, str] | None = None
) -> Table:
    """The Follow-ups table; ``hit`` = (entry key, header) of a first column that says which
    hit a row follows up (a manifest position, a biometric probe).

    On a narrow terminal the dataset, then the hit column, give way to the id and the reason
    (said once below the table when every row has the same one)."""
    table = FittedTable(title=f"Follow-ups (case {case})")
    if hit:
        text_column(table, hit[1], drop=1)
    text_column(table, "peer")
    text_column(table, "dataset", drop=2)
    text_column(table, "status")
    id_column(table, "follow-up id")
    text_column(table, "released / reason")
    for f in entries:
        released = ", ".join(f"{k}: {v}" for k, v in (f.get("released") or {}).items())
        table.add_row(
            *((str(f.get(hit[0], "")),) if hit else ()),
            f["peer"],
            f["dataset"],
            styled(f["status"], _STYLE.get(f["status"], "")),
            f.get("followup_id", ""),
            released or f.get("reason") or f.get("note") or "",
        )
    return table


def print_failures(entries: list[dict[str, Any]], *, again: str) -> None:
    """If some follow-ups failed, an ``error:`` line on stderr: how many, and ``again`` (how
    to ask once the cause is fixed). Print it after the results and the table."""
    failures = failed(entries)
    if failures:
        err_console.print(
            error_line(
                f"{len(failures)} of {len(entries)} follow-up(s) failed (see the table); {again}"
            ),
            highlight=False,
            soft_wrap=True,
        )


def exit_if_failed(entries: list[dict[str, Any]], code: int = 1) -> None:
    """Exit with ``code`` if a follow-up failed: the operator asked for it, and a script must
    see it was not made (call it after every result is printed and every file written). A
    command whose exit status already means something (screening: 1 is "nothing screened",
    3 "a hit") passes a code of its own, so a hit is never reported as nothing."""
    if failed(entries):
        raise typer.Exit(code)
