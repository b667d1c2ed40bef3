"""What the Secretariat accepts of a member's signed consular directory before merging it.

Why: the entries are merged into the regional directory the Secretariat writes as CSV and JSON
for the CRM's public page, and printed to its operator. A member's entry with an escape
sequence, a line break (a forged CSV row), unbounded text or a procedure outside the code list
went into those files as sent. A malformed answer is that member's failure — named in the
collection's ``missing`` — and the directory is built from the other members.

Invariants: :func:`check_entries` is pure; it raises :class:`~node.errors.PeerError`
(``INVALID_ARGUMENT``) naming the member and the first problems, or returns. An accepted entry
is what the member's own ``consular_directory`` dataset admits: alpha-3 country codes, the
dataset's length limits and phone and e-mail forms, known procedures, one line of text each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enlace.v1 import secretariat_pb2
from node.peer_checks import refuse, shown, text_problem
from node.records.datasets import CONSULAR_DIRECTORY, PROCEDURES

_COUNTRY = re.compile(r"[A-Z]{3}")
_FIELDS = {f.name: f for f in CONSULAR_DIRECTORY.fields}
_TEXT = ("city", "consulate_name", "address", "phone", "email")


def entry_problems(n: int, entry: secretariat_pb2.ConsularEntry) -> list[str]:
    """Every problem of the ``n``-th entry (empty: acceptable)."""
    problems = []
    for name in ("origin_country", "host_country"):
        value = getattr(entry, name)
        if not _COUNTRY.fullmatch(value):
            problems.append(f"entry {n}: {name} {shown(value)} is not an alpha-3 code")
    for name in _TEXT:
        spec, value = _FIELDS[name], getattr(entry, name)
        problem = text_problem(f"entry {n}: {name}", value, spec.max_length or 200)
        if not problem and spec.required and not value.strip():
            problem = f"entry {n}: {name} is empty"
        if not problem and value and spec.pattern and not re.fullmatch(spec.pattern, value):
            problem = f"entry {n}: {name} {shown(value)} is not in the dataset's form"
        problems.append(problem)
    unknown = [p for p in entry.procedures if p not in PROCEDURES]
    if unknown:
        problems.append(f"entry {n}: unknown procedures {', '.join(shown(p) for p in unknown[:3])}")
    return [p for p in problems if p]


def check_entries(member: str, entries: Sequence[secretariat_pb2.ConsularEntry]) -> None:
    """Refuse ``member``'s consular directory unless every entry is well formed."""
    problems: list[str] = []
    for n, entry in enumerate(entries):
        problems += entry_problems(n, entry)
        if len(problems) > 5:
            break
    refuse(member, "consular directory", problems)
