"""What the Secretariat package adds to a node's server, by role, with its authoriser rules.

Why one place: :mod:`node.server.factory` lists every service of a node; the services of this
package depend on the node's role, and so do their rules. ``factory`` asks here for both and
for the server class, so the ST starts its calendar with the server and stops it with it.

Every node registers every service below; the rules decide who is answered (deny by default
still holds: a rule absent on this node refuses the call, signed and audited):

=====================  ============================  ============================================
service (rule key)      answered on                   allowed callers
=====================  ============================  ============================================
notifications          every node                     role ``secretariat`` (membership level)
emergency              the secretariat                role ``member``
stats (Contribute)     members (agreement rule)       the ``stats`` grant to the caller, and
                                                      role ``secretariat`` (method-keyed rule)
directory (consular)   members (agreement rule)       the ``directory`` grant to the caller
shares, share-sums     the helper                     role ``member``; role ``secretariat``
=====================  ============================  ============================================

``Contribute`` is keyed by its method, not only its service: the ``stats`` grant a member holds
for disclosure-controlled ``Aggregate`` must not buy it a share of another member's raw table
(with a helper's share, the table itself). The helper refuses shares for a requester other than
the secretariat, but a member's release must not rest on the helper's honesty alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from crypto.envelope import Header
from node.errors import PermissionDeniedError
from node.runtime import NodeRuntime
from node.secretariat import consular, emergency, notify, share_service
from node.secretariat.schedule import active_runner
from node.server.app import NodeServer
from node.server.pipeline import Ask, Authorizer, MethodSpec, Permit
from node.trust.member import MemberDescriptor

log = logging.getLogger("node.secretariat")


class RoleRule:
    """Allows directory members holding ``role``; cites no agreement (membership level)."""

    def __init__(self, role: str) -> None:
        self.role = role

    def authorize(
        self, service: str, header: Header, ask: Ask, peer: MemberDescriptor, now: dt.datetime
    ) -> Permit:
        if not peer.has_role(self.role):
            raise PermissionDeniedError(
                f"{service} accepts calls from nodes with the {self.role} role only; "
                f"{peer.country} holds {', '.join(peer.roles)}",
                hint="this call is not part of your node's role in the federation",
            )
        return Permit("", "", f"role: {self.role} (membership level, directory)")


def rules(runtime: NodeRuntime) -> dict[str, Authorizer]:
    """Authoriser rules for the services below (``stats``/``directory`` are the factory's),
    and for ``Contribute`` by method (see :class:`~node.server.authorize.ServiceAuthorizer`)."""
    roles = set(runtime.config.roles)
    out: dict[str, Authorizer] = {
        "notifications": RoleRule("secretariat"),
        # checked before the factory's ``stats`` rule: the ST's share of a member's raw table
        share_service.CONTRIBUTE: RoleRule("secretariat"),
    }
    if "secretariat" in roles:
        out["emergency"] = RoleRule("member")
    if "helper" in roles:
        out["shares"] = RoleRule("member")
        out["share-sums"] = RoleRule("secretariat")
    return out


def services(runtime: NodeRuntime) -> list[tuple[str, list[MethodSpec]]]:
    """Every method table of this package, on every node.

    Which node answers is decided by :func:`rules` (by role) and the agreement rule, so a call
    to a node that does not play the part is refused — signed and audited — by the pipeline.
    """

    def start(member: str, period: str, matrices: list[str], emergency_id: str) -> None:
        office = active_runner(runtime)
        if office is None:
            log.warning("emergency %s from %s: no Secretariat is running", emergency_id, member)
            return
        office.start_emergency(member, period, matrices, emergency_id)

    return [
        (notify.SERVICE, notify.method_specs()),
        (share_service.SERVICE, share_service.member_specs() + share_service.helper_specs()),
        (consular.SERVICE, consular.method_specs()),
        (emergency.SERVICE, emergency.method_specs(start)),
    ]


class SecretariatServer(NodeServer):
    """A node server that also runs the Secretariat (its calendar and emergency pulls)."""

    def __init__(self, runtime: NodeRuntime, **kwargs: Any) -> None:
        from node.secretariat.office import Secretariat

        super().__init__(runtime, **kwargs)
        self.secretariat = Secretariat(runtime)

    def start(self) -> None:
        super().start()
        self.secretariat.start()

    def stop(self, grace: float = 5.0) -> None:
        self.secretariat.stop()
        super().stop(grace)


def server_class(runtime: NodeRuntime) -> type[NodeServer]:
    """The ST's server also runs the Secretariat; every other node runs a plain server."""
    return SecretariatServer if "secretariat" in runtime.config.roles else NodeServer
