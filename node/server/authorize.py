"""Authorisers: who may call which service, decided before any handler runs.

Deny by default: :class:`ServiceAuthorizer` refuses every service it has no rule for.
``node`` (GetInfo, Ping, GetDirectory) is allowed to every member the directory lists —
the sender's identity has already been proven by the envelope check. Data services
(``stats``, ``match``, ``biometric``, ``followup``) are routed to the bilateral-agreement
rule once it is registered, and refused until then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from crypto.envelope import Header
from node.errors import PermissionDeniedError
from node.server.pipeline import Ask, Authorizer, Permit
from node.trust.member import MemberDescriptor

MEMBERSHIP_RULE = "membership: any node listed in the federation directory"


class MembershipRule:
    """Allows a call from any directory member; cites no agreement."""

    def authorize(
        self, service: str, header: Header, ask: Ask, peer: MemberDescriptor, now: dt.datetime
    ) -> Permit:
        return Permit("", "", MEMBERSHIP_RULE)


class ServiceAuthorizer:
    """Dispatch to one rule per service; refuse services without a rule.

    A rule keyed by a method's full name (``/enlace.v1.Service/Method``) narrows that method
    further: it is checked before the service's rule, whose admission has effects (the
    agreement rule spends a unit of the caller's quota), so a caller the method is not for is
    refused for that reason and spends nothing; the permit is still the service rule's. This
    is how ``ShareService/Contribute``, a ``stats`` release, is kept for the Secretariat alone.
    """

    def __init__(self, rules: Mapping[str, Authorizer]) -> None:
        self._rules = dict(rules)

    def authorize(
        self, service: str, header: Header, ask: Ask, peer: MemberDescriptor, now: dt.datetime
    ) -> Permit:
        rule = self._rules.get(service)
        if rule is None:
            raise PermissionDeniedError(
                f"service {service!r} is not offered to {peer.country} by this node",
                hint="ask the holder to sign an agreement granting it",
            )
        narrower = self._rules.get(header.method)  # the method the pipeline checked was signed
        if narrower is not None:
            narrower.authorize(header.method, header, ask, peer, now)
        return rule.authorize(service, header, ask, peer, now)


def default_authorizer() -> ServiceAuthorizer:
    return ServiceAuthorizer({"node": MembershipRule()})
