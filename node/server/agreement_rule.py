"""The agreement rule: data services answer only what a signed, in-force agreement grants.

Order: purpose present → agreement decision (pure, :mod:`policies.decision`) → quota
consumed atomically in the store. The permit cites the agreement id and hash, which the
pipeline puts in the signed response and the audit entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from crypto.envelope import Header
from node.agreements import AgreementBook
from node.errors import InvalidArgumentError
from node.server.pipeline import Ask, Permit
from node.trust.member import MemberDescriptor
from policies.decision import Request
from policies.quota import check_quota, quota_scope, quota_windows


class AgreementRule:
    def __init__(self, book: AgreementBook) -> None:
        self.book = book

    def authorize(
        self, service: str, header: Header, ask: Ask, peer: MemberDescriptor, now: dt.datetime
    ) -> Permit:
        if not header.purpose:
            raise InvalidArgumentError(
                "every request must state its purpose",
                field="header.purpose",
                hint="pass the purpose the agreement grants, e.g. --purpose quarterly_matrices",
            )
        request = Request(
            requester=peer.country,
            holder=self.book.runtime.config.country,
            service=service,
            dataset=ask.dataset,
            purpose=header.purpose,
            dimensions=ask.dimensions,
            attributes=ask.attributes,
            agreement_id=header.agreement or None,
            units=ask.units,
        )
        decision = self.book.decide(request, now)
        grant = decision.grant
        windows = quota_windows(now)

        def check(used: Mapping[str, int]) -> None:
            check_quota(grant, used, ask.units, now)

        self.book.runtime.store.policies.consume_quota(
            quota_scope(decision.agreement_id, grant),
            [w.key for w in windows.values()],
            ask.units,
            check,
        )
        rule = (
            f"{decision.agreement_id} v{decision.agreement_version} grant "
            f"#{decision.grant_index + 1} ({grant.holder} → {grant.requester}, {grant.service})"
        )
        return Permit(decision.agreement_id, decision.agreement_hash, rule, decision)
