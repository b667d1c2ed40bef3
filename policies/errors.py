"""The one exception hierarchy of :mod:`policies`.

Every failure raised on purpose by this package derives from :class:`PolicyError`, so the
node's gRPC edge can translate the whole family with one ``except``. Each error carries a
``hint``: what the operator, the legal officer or the calling peer should do about it.

::

    PolicyError                      (status the node should use)
    ├── AgreementFormatError         INVALID_ARGUMENT    YAML/JSON or schema problem; names the path
    ├── AgreementSignatureError      UNAUTHENTICATED     a party signature is missing or invalid
    ├── AgreementNotInForceError     PERMISSION_DENIED   not yet valid, expired, revoked, superseded
    ├── Denied                       PERMISSION_DENIED   request not granted; every reason listed
    └── QuotaExceeded                RESOURCE_EXHAUSTED  a per-day or per-quarter quota is spent

Invariants:
* :class:`Denied` always carries at least one :class:`DenialReason`; an empty list of reasons
  is a programming error and raises :class:`ValueError` (a denial must be explainable).
* :class:`QuotaExceeded` always says which window (``"day"`` or ``"quarter"``) was exhausted,
  its limit, what was already used and when the window resets (UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


class PolicyError(Exception):
    """Base of every error raised on purpose by :mod:`policies`."""

    status_name = "UNKNOWN"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class AgreementFormatError(PolicyError):
    """A document is not valid YAML/JSON or does not follow ``enlace-agreement/1``.

    ``path`` is the JSON path of the first offending value (``$`` for the whole document,
    ``$.grants[0].datasets`` …); ``problems`` lists every problem found as ``path: message``.
    """

    status_name = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        path: str = "$",
        problems: Iterable[str] = (),
        hint: str = "",
    ) -> None:
        super().__init__(f"{path}: {message}", hint=hint)
        self.path = path
        self.problems: tuple[str, ...] = tuple(problems) or (f"{path}: {message}",)


class AgreementSignatureError(PolicyError):
    """A party signature is missing, made with an unknown key, or does not verify.

    ``problems`` has one entry per party (or signature) that failed.
    """

    status_name = "UNAUTHENTICATED"

    def __init__(self, message: str, *, problems: Iterable[str] = (), hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


class AgreementNotInForceError(PolicyError):
    """The agreement verifies but is not in force at ``now``.

    ``reasons`` explains why (not yet valid, expired, revoked, superseded).
    """

    status_name = "PERMISSION_DENIED"

    def __init__(self, reasons: Iterable[DenialReason]) -> None:
        self.reasons: tuple[DenialReason, ...] = tuple(reasons)
        if not self.reasons:
            raise ValueError("AgreementNotInForceError needs at least one reason")
        first = self.reasons[0]
        super().__init__(_joined(self.reasons), hint=first.hint)


@dataclass(frozen=True)
class DenialReason:
    """One reason a request is refused.

    ``element`` names what failed: ``party``, ``agreement``, ``validity``, ``service``,
    ``dataset``, ``purpose``, ``dimension``, ``attribute`` or ``quota``. ``missing`` lists the
    requested values that are not granted and ``granted`` what the grant does allow, so a
    machine-readable answer (``--json``) can say both without parsing ``message``.
    """

    element: str
    message: str
    hint: str = ""
    agreement_id: str | None = None
    missing: tuple[str, ...] = ()
    granted: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"[{self.element}] {self.message}" + (f" ({self.hint})" if self.hint else "")


def _joined(reasons: Iterable[DenialReason]) -> str:
    return "; ".join(r.message.rstrip(".") for r in reasons)


class Denied(PolicyError):  # noqa: N818 - the name the node and the design use
    """The request is not covered by any agreement in force. ``reasons`` lists every cause."""

    status_name = "PERMISSION_DENIED"

    def __init__(self, reasons: Iterable[DenialReason]) -> None:
        self.reasons: list[DenialReason] = list(reasons)
        if not self.reasons:
            raise ValueError("Denied needs at least one reason")
        hints = [r.hint for r in self.reasons if r.hint]
        super().__init__(
            "request denied: " + _joined(self.reasons),
            hint=hints[0] if hints else "",
        )

    @property
    def elements(self) -> frozenset[str]:
        """The set of elements that failed (handy for tests and metrics)."""
        return frozenset(r.element for r in self.reasons)


class QuotaExceeded(PolicyError):  # noqa: N818 - the name the node and the design use
    """The grant's quota for the current ``quota`` window is spent.

    ``limit`` is the grant's limit for that window, ``used`` what was already counted in it,
    ``units`` what this request asked for and ``resets_at`` the start of the next window.
    """

    status_name = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        quota: str,
        limit: int,
        used: int,
        units: int,
        resets_at: datetime,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.quota = quota
        self.limit = limit
        self.used = used
        self.units = units
        self.resets_at = resets_at
