"""Realistic request bodies, one :class:`Row` per method: the only table a new service adds.

Why: envelope attacks and fuzzing need nothing per method, but a request that reaches a
handler — what the injection tests and the fuzzer's mutations start from — must name a
dataset, a period, an epoch, a key. A row says how to build one (asking the callee first when
it must, e.g. the biometric epoch), which purpose and agreement the header cites, who calls and
who answers. A method without a row still gets an empty body of its request type.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import Message

from crypto.oprf import hash_to_group
from enlace.v1 import (
    agreements_pb2,
    biometric_pb2,
    match_pb2,
    node_pb2,
    secretariat_pb2,
    stats_pb2,
)
from hostile.federation import (
    AGREEMENT_ID,
    DIRECTORY_PURPOSE,
    HELPER,
    MATCH_PURPOSE,
    STATS_PURPOSE,
)
from node.server.pipeline import MethodSpec

PING = "/enlace.v1.NodeService/Ping"
GET_INFO = "/enlace.v1.NodeService/GetInfo"
AGGREGATE = "/enlace.v1.StatsService/Aggregate"
BIO_EPOCH = "/enlace.v1.BiometricService/GetEpoch"


class Caller(Protocol):
    """What a row needs to prepare a body (a :class:`PeerClient`, or an in-process stand-in)."""

    def call(
        self,
        method: str,
        request: Message,
        response_type: Any,
        *,
        agreement: str = "",
        purpose: str = "",
        timeout: float | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class Row:
    """A body that reaches ``method``'s handler, the header's purpose and agreement, the node
    that calls (``CRM`` for what only the Secretariat may call) and the one that answers."""

    body: Callable[[Caller], Message]
    purpose: str = ""
    agreement: str = ""
    caller: str = "CRI"
    callee: str = "PAN"


def _fixed(message: Message) -> Callable[[Caller], Message]:
    return lambda _caller: message


def _search_body(caller: Caller) -> Message:
    try:
        epoch = caller.call(
            BIO_EPOCH,
            biometric_pb2.BiometricEpochRequest(),
            biometric_pb2.BiometricEpochResponse,
            purpose=MATCH_PURPOSE,
            agreement=AGREEMENT_ID,
        ).message
        numbers = (epoch.epoch, epoch.key_id, epoch.bits)
    except Exception:  # no agreement or no gallery: a well-formed probe all the same
        numbers = (1, "0" * 16, 512)
    return biometric_pb2.BiometricSearchRequest(
        epoch=numbers[0], key_id=numbers[1], bits=numbers[2], codes=[os.urandom(numbers[2] // 8)]
    )


def _layout() -> tuple[str, int]:
    """The cell layout of matrix M01 for 2024Q3, as both sides of a share round compute it."""
    from node.secretariat.share_service import matrix_query
    from node.secretariat.shares import cell_layout

    query = matrix_query("M01", "2024Q3")
    layout = cell_layout(query.dimensions, query.period)
    return layout.sha256, layout.cells


def _contribute_body(_caller: Caller) -> Message:
    digest, cells = _layout()
    return secretariat_pb2.ContributeRequest(
        round_id="R-00000001",
        matrix="M01",
        period="2024Q3",
        helper=HELPER,
        layout_sha256=digest,
        cells=cells,
    )


def _submit_body(_caller: Caller) -> Message:
    digest, cells = _layout()
    return secretariat_pb2.SubmitShareRequest(
        round_id="R-00000001",
        requester="CRM",
        matrix="M01",
        period="2024Q3",
        layout_sha256=digest,
        cells=cells,
        share=bytes(16 * cells),
    )


_MATCH = {"purpose": MATCH_PURPOSE, "agreement": AGREEMENT_ID}
_SECRETARIAT = "/enlace.v1.ShareService"
ROWS: dict[str, Row] = {
    PING: Row(_fixed(node_pb2.PingRequest(payload=b"hostile"))),
    GET_INFO: Row(_fixed(node_pb2.GetInfoRequest())),
    "/enlace.v1.NodeService/GetDirectory": Row(_fixed(node_pb2.GetDirectoryRequest())),
    "/enlace.v1.AgreementService/GetAgreement": Row(
        _fixed(agreements_pb2.GetAgreementRequest(agreement_id=AGREEMENT_ID))
    ),
    AGGREGATE: Row(
        _fixed(
            stats_pb2.AggregateRequest(
                dataset="encounters",
                measure="persons",
                dimensions=["nationality"],
                period="2023",
                filters=[stats_pb2.Filter(dimension="sex", values=["F", "M"])],
            )
        ),
        STATS_PURPOSE,
        AGREEMENT_ID,
    ),
    "/enlace.v1.MatchService/GetManifest": Row(
        _fixed(match_pb2.GetManifestRequest(dataset="travel_documents")), **_MATCH
    ),
    "/enlace.v1.MatchService/SyncFilter": Row(
        _fixed(match_pb2.SyncFilterRequest(dataset="travel_documents")), **_MATCH
    ),
    "/enlace.v1.MatchService/Evaluate": Row(
        _fixed(
            match_pb2.EvaluateRequest(
                dataset="travel_documents", epoch=1, blinded_elements=[hash_to_group(b"hostile")]
            )
        ),
        **_MATCH,
    ),
    "/enlace.v1.MatchService/FollowUp": Row(
        _fixed(
            match_pb2.FollowUpRequest(
                dataset="travel_documents",
                epoch=1,
                output=b"\x01" * 64,
                case_reference="CASE-1",
                attributes=["first_seen_quarter"],
            )
        ),
        **_MATCH,
    ),
    BIO_EPOCH: Row(_fixed(biometric_pb2.BiometricEpochRequest()), **_MATCH),
    "/enlace.v1.BiometricService/Search": Row(_search_body, **_MATCH),
    "/enlace.v1.BiometricService/FollowUp": Row(
        _fixed(
            biometric_pb2.BiometricFollowUpRequest(
                hit_reference="0" * 40, case_reference="CASE-1", attributes=["nationality"]
            )
        ),
        **_MATCH,
    ),
    "/enlace.v1.NotificationService/Notify": Row(
        _fixed(
            secretariat_pb2.NotifyRequest(
                kind="reminder",
                period="2024Q3",
                subject="Cuadros",
                body="Recordatorio",
                language="es",
                reference="R1",
            )
        ),
        caller="CRM",
    ),
    "/enlace.v1.SecretariatService/EmergencyUpdate": Row(
        _fixed(secretariat_pb2.EmergencyUpdateRequest(period="2024Q3", reason="corrección")),
        callee="CRM",
    ),
    f"{_SECRETARIAT}/Contribute": Row(_contribute_body, STATS_PURPOSE, caller="CRM"),
    f"{_SECRETARIAT}/SubmitShare": Row(_submit_body, caller="PAN", callee=HELPER),
    f"{_SECRETARIAT}/GetSum": Row(
        _fixed(
            secretariat_pb2.GetSumRequest(
                round_id="R-00000001", members=["PAN"], layout_sha256="0" * 64
            )
        ),
        caller="CRM",
        callee=HELPER,
    ),
    "/enlace.v1.ConsularService/ListConsulates": Row(
        _fixed(secretariat_pb2.ListConsulatesRequest(origin_country="HTI")),
        DIRECTORY_PURPOSE,
        AGREEMENT_ID,
    ),
}


def row_for(spec: MethodSpec) -> Row:
    """The method's row, or an empty body of its request type (enough for envelope attacks)."""
    return ROWS.get(spec.full_name) or Row(lambda _caller: spec.request_type())
