"""What a querier checks of a peer's verified answer before it stores, prints or uses it.

Why: a response that verifies is the peer's own and bound to our request, but its content can
still be malformed (a bug at the peer, or a hostile peer). Its text goes into this node's store,
whose columns have limits (an agreement id of at most 200 characters, hashes of 64) and which on
PostgreSQL cannot hold NUL; it is printed to an operator's terminal, where an escape sequence
would be obeyed; and its numbers steer logic. A malformed answer must be that peer's failure —
a :class:`~node.errors.PeerError` with status ``INVALID_ARGUMENT`` naming the peer and every
problem — never a database error or a crash that stops the other peers' work.

Invariants: the functions are pure. ``*_problem`` functions return a description of what is
wrong, or ``""``; :func:`refuse` raises. Text is described by a truncated ``repr``, so a
problem message never carries the peer's control characters to the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from crypto.envelope import Header
from node.errors import PeerError

#: An agreement id as the agreement schema defines it (policies/schema): what a response cites.
AGREEMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Invisible characters that change what a reader sees: the bidirectional embeddings,
# overrides and isolates (they reorder the text that follows, "Trojan Source") and the Unicode
# line and paragraph separators (a line break to some terminals and viewers). The single
# direction marks (U+200E, U+200F, U+061C) stay: ordinary Arabic and Hebrew text holds them,
# and they reorder nothing beyond their neighbours.
_INVISIBLE = "\u2028\u2029\u202a-\u202e\u2066-\u2069"
# C0 controls (NUL, ESC, CR, LF, …), DEL, the C1 controls (CSI is U+009B) and the above.
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_INVISIBLE}]")
#: The same, but for text of several lines: line feeds and tabs are text there.
CONTROL_IN_TEXT = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_INVISIBLE}]")


def shown(value: str) -> str:
    """``value`` as a problem message may quote it: at most 40 characters, escaped."""
    return repr(value[:40])


def text_problem(name: str, value: str, longest: int) -> str:
    """What is wrong with one line of peer text ``value`` (``name`` says which), or ``""``.

    One line of text holds no control character at all: not NUL (PostgreSQL cannot store it),
    not ESC or CSI (a terminal would obey them), not a line break (it would forge output lines).
    """
    if len(value) > longest:
        return f"{name} is longer than {longest} characters"
    if _CONTROL.search(value):
        return f"{name} {shown(value)} holds a control character"
    return ""


def printable(text: str, longest: int = 1000) -> str:
    """``text`` from a peer made safe to print and store: each control character (NUL, ESC,
    CSI, line breaks…) replaced by U+FFFD, at most ``longest`` characters."""
    return _CONTROL.sub("\ufffd", text[:longest])


def citation_problem(header: Header) -> str:
    """What is wrong with the agreement a response header cites, or ``""``.

    A response cites the agreement it was answered under (its id and SHA-256); both are stored
    in the audit chain (``agreement_id`` holds 200 characters, ``agreement_hash`` 64) and on
    the records the answer creates, and shown to the operator.
    """
    problems = []
    if header.agreement and not AGREEMENT_ID.fullmatch(header.agreement):
        problems.append(f"the cited agreement {shown(header.agreement)} is not an agreement id")
    if header.agreement_hash and not _SHA256.fullmatch(header.agreement_hash):
        problems.append(
            f"the cited agreement hash {shown(header.agreement_hash)} is not 64 hex digits"
        )
    return "; ".join(problems)


def refuse(peer: str, what: str, problems: Sequence[str], *, cannot: str = "be used") -> None:
    """Raise the peer's failure for ``what`` (e.g. "answer to Aggregate") if ``problems``:
    "PAN's table cannot be used: …" (``cannot`` says what this node cannot do with it)."""
    found = [p for p in problems if p]
    if not found:
        return
    more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
    raise PeerError(
        f"{peer}'s {what} cannot {cannot}: {'; '.join(found[:5])}{more}",
        peer=peer,
        status_name="INVALID_ARGUMENT",
        hint=f"{peer}'s node answered outside the protocol; ask its operator",
    )
