"""Assemble a node server with every service this node offers.

One place lists the services and the authoriser rule of each, so adding a capability means
adding its method table and its rule here — never a handler that skips the pipeline.
Deny by default: a service without a rule in :class:`ServiceAuthorizer` is refused.
"""

from __future__ import annotations

from node.agreements import AgreementBook
from node.biometrics import service as biometric_service
from node.matching import service as match_service
from node.runtime import NodeRuntime
from node.secretariat import services as secretariat_services
from node.server import agreement_service
from node.server.agreement_rule import AgreementRule
from node.server.app import NodeServer
from node.server.authorize import MembershipRule, ServiceAuthorizer
from node.stats import service as stats_service


def build_server(
    runtime: NodeRuntime, *, listen: str | None = None, book: AgreementBook | None = None
) -> NodeServer:
    book = book or AgreementBook(runtime)
    membership = MembershipRule()
    agreement_rule = AgreementRule(book)
    authorizer = ServiceAuthorizer(
        {
            "node": membership,
            "agreements": membership,
            "stats": agreement_rule,
            "match": agreement_rule,
            "biometric": agreement_rule,
            "followup": agreement_rule,
            "directory": agreement_rule,
            **secretariat_services.rules(runtime),
        }
    )
    services = [
        (agreement_service.SERVICE, agreement_service.method_specs(book)),
        (match_service.SERVICE, match_service.method_specs(runtime)),
        (biometric_service.SERVICE, biometric_service.method_specs(runtime)),
        (stats_service.SERVICE, stats_service.method_specs()),
        *secretariat_services.services(runtime),
    ]
    server_class = secretariat_services.server_class(runtime)
    return server_class(runtime, authorizer=authorizer, services=services, listen=listen)
