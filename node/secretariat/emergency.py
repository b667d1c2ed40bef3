"""Emergency updates: a member tells the Secretariat "my data changed, pull now".

Why: members agreed (2016) to update the tables between quarterly reports in emergencies.
With nodes, an update is not a file sent by e-mail: the member imports its records and tells
the ST, whose node pulls that member's matrices at once, under the member's agreement with
the purpose ``emergency_update``.

Invariants:
* Only nodes with the ``member`` role may call :data:`EMERGENCY` (the authoriser checks the
  role), and only a node with the ``secretariat`` role offers it.
* The handler records the update and starts the pull in the background; it answers at once,
  so a slow member never holds a gRPC worker. The pull is an ordinary pull (trigger
  ``emergency``) of that one member, with its own deadline and retries.
* Updates coalesce: while a member's update for a period waits for its pull to start (status
  ``received``; ``pulling`` once it may have read the member's data), another one for the
  same period starts nothing and is answered with the waiting update's id (``pull_started``
  false): that pull has not read anything yet, so it will see what the second update
  announced. A member has at most one pull per period running and one waiting. An update
  waiting longer than :data:`COALESCE_WINDOW` is not joined (its pull was lost with a restart).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections.abc import Callable, Sequence

from enlace.v1 import secretariat_pb2
from node.client import PeerClient
from node.errors import InvalidArgumentError
from node.peer_checks import refuse, shown, text_problem
from node.runtime import NodeRuntime
from node.server.pipeline import CallContext, MethodSpec
from node.stats.matrices import MATRICES, matrix
from node.stats.query import parse_period

SERVICE = "enlace.v1.SecretariatService"
#: How long an update waits to be joined by the next: a pull starts within seconds, so one
#: still waiting after this was lost (the process that was to run it stopped), and a new
#: update must start its own rather than join it forever.
COALESCE_WINDOW = dt.timedelta(minutes=10)
EMERGENCY = f"/{SERVICE}/EmergencyUpdate"
EMERGENCY_ID = re.compile(r"E[0-9a-f]{16}")
MAX_DETAIL = 500  # the ST's detail is one sentence

#: Starts the pull of (member, period, matrices, emergency id) in the background.
Starter = Callable[[str, str, list[str], str], None]


def _check(request: secretariat_pb2.EmergencyUpdateRequest) -> list[str]:
    parse_period(request.period)
    if len(request.reason) > 500:
        raise InvalidArgumentError("at most 500 characters", field="reason")
    if len(request.matrices) > len(MATRICES):
        raise InvalidArgumentError("too many matrices", field="matrices")
    return [matrix(m).id for m in request.matrices]


def method_specs(start: Starter) -> list[MethodSpec]:
    arriving = threading.Lock()  # one check-and-record at a time in this process

    def emergency_update(
        ctx: CallContext, request: secretariat_pb2.EmergencyUpdateRequest
    ) -> secretariat_pb2.EmergencyUpdateResponse:
        matrices = _check(request)
        period = request.period.strip().upper()
        emergency_id = f"E{secrets.token_hex(8)}"
        with arriving:
            recorded = ctx.runtime.store.secretariat.add_emergency(
                {
                    "emergency_id": emergency_id,
                    "member": ctx.peer.country,
                    "period": period,
                    "matrices": ",".join(matrices),
                    "reason": request.reason,
                    "received_at": ctx.now,
                    "pull_id": "",
                    "status": "received",
                },
                waiting_since=ctx.now - COALESCE_WINDOW,
            )
        if recorded != emergency_id:
            ctx.audit_extra.update(emergency=recorded, period=request.period, coalesced="yes")
            return secretariat_pb2.EmergencyUpdateResponse(
                emergency_id=recorded,
                pull_started=False,
                detail=f"a pull of {ctx.peer.country}'s matrices for {period} is already "
                f"waiting to start ({recorded}); it will read what is imported when it asks",
            )
        start(ctx.peer.country, period, matrices, emergency_id)
        ctx.audit_extra.update(emergency=emergency_id, period=request.period)
        return secretariat_pb2.EmergencyUpdateResponse(
            emergency_id=emergency_id,
            pull_started=True,
            detail=f"the Secretariat is pulling {ctx.peer.country}'s matrices now",
        )

    return [
        MethodSpec(EMERGENCY, "emergency", secretariat_pb2.EmergencyUpdateRequest, emergency_update)
    ]


def secretariat_of(runtime: NodeRuntime) -> str:
    """The country code of the directory's secretariat node."""
    from node.errors import NotFoundError

    found = runtime.directory.current(runtime.clock.now()).members_with_role("secretariat")
    if not found:
        raise NotFoundError("the directory lists no secretariat node")
    return found[0].country


def send_emergency_update(
    runtime: NodeRuntime,
    period: str,
    matrices: Sequence[str] = (),
    reason: str = "",
    *,
    timeout: float = 10.0,
) -> secretariat_pb2.EmergencyUpdateResponse:
    """Member side: ask the Secretariat to pull this node's matrices for ``period`` now."""
    request = secretariat_pb2.EmergencyUpdateRequest(
        period=period, matrices=list(matrices), reason=reason
    )
    _check(request)
    secretariat = secretariat_of(runtime)
    with PeerClient(runtime, secretariat, timeout=timeout) as client:
        reply = client.call(EMERGENCY, request, secretariat_pb2.EmergencyUpdateResponse)
    answer = reply.message  # printed to the member's operator: the ST's id form, one line
    refuse(
        secretariat,
        "emergency update receipt",
        [
            ""
            if EMERGENCY_ID.fullmatch(answer.emergency_id)
            else f"the id {shown(answer.emergency_id)} is not E and 16 hex digits",
            text_problem("detail", answer.detail, MAX_DETAIL),
        ],
    )
    return answer
