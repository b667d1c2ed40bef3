"""``enlace.v1.AgreementService``: a party fetches the countersigned copy of an agreement."""

from __future__ import annotations

from enlace.v1 import agreements_pb2
from node.agreements import AgreementBook
from node.errors import InvalidArgumentError, NotFoundError
from node.server.pipeline import CallContext, MethodSpec
from policies.signatures import load_signed_agreement

SERVICE = "enlace.v1.AgreementService"


def method_specs(book: AgreementBook) -> list[MethodSpec]:
    def get_agreement(
        ctx: CallContext, request: agreements_pb2.GetAgreementRequest
    ) -> agreements_pb2.GetAgreementResponse:
        if not request.agreement_id or len(request.agreement_id) > 200:
            raise InvalidArgumentError("must be 1 to 200 characters", field="agreement_id")
        document = book.signed_document(request.agreement_id)
        if (
            document is None
            or ctx.peer.country not in load_signed_agreement(document).agreement.parties
        ):
            raise NotFoundError(
                f"no agreement {request.agreement_id!r} between this node and {ctx.peer.country}",
                hint="check the agreement id with the other party",
            )
        return agreements_pb2.GetAgreementResponse(document=document)

    return [
        MethodSpec(
            f"/{SERVICE}/GetAgreement",
            "agreements",
            agreements_pb2.GetAgreementRequest,
            get_agreement,
        )
    ]
