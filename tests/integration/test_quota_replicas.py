"""Two server processes of one node on one database never grant more than the quota."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

from enlace.v1 import stats_pb2
from node.client import PeerClient
from node.demo.agreements import sign_and_install
from node.demo.federation import free_port
from node.demo.processes import NodeProcess
from node.errors import PeerError
from policies.agreement import Agreement, Disclosure, Grant, Quotas

AGGREGATE = "/enlace.v1.StatsService/Aggregate"


def test_two_replicas_share_one_exact_quota(live_federation_factory) -> None:  # type: ignore[no-untyped-def]
    live = live_federation_factory(("PAN", "CRI"))
    now = live.runtimes["PAN"].clock.now()
    agreement = Agreement(
        id="PAN-CRI",
        version=1,
        parties=("PAN", "CRI"),
        title="t",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
        grants=(
            Grant(
                holder="PAN",
                requester="CRI",
                service="stats",
                datasets=("encounters",),
                purposes=("quarterly_matrices",),
                dimensions=("nationality",),
                disclosure=Disclosure(profile="standard"),
                quotas=Quotas(per_day=50, per_quarter=None),
            ),
        ),
    )
    sign_and_install(agreement, live.runtimes, now)

    home = live.federation.homes["PAN"]
    first = live.federation.endpoint("PAN")
    second = f"127.0.0.1:{free_port()}"
    replicas = [NodeProcess("PAN", home, first), NodeProcess("PAN", home, second)]
    replicas[0].start()
    replicas[1].start(extra_env={"ENLACE_LISTEN": second})
    try:
        deadline = time.monotonic() + 60
        for replica in replicas:
            replica.wait_ready(deadline)
        cri = live.runtimes["CRI"]
        clients = [PeerClient(cri, "PAN", endpoint=r.endpoint, timeout=30) for r in replicas]
        request = stats_pb2.AggregateRequest(
            dataset="encounters", measure="persons", dimensions=["nationality"], period="2023"
        )

        def call(i: int) -> str:
            try:
                clients[i % 2].call(
                    AGGREGATE, request, stats_pb2.AggregateResponse, purpose="quarterly_matrices"
                )
            except PeerError as exc:
                return exc.status_name
            return "OK"

        with ThreadPoolExecutor(max_workers=64) as pool:
            outcomes = list(pool.map(call, range(128)))
        for client in clients:
            client.close()
    finally:
        codes = [r.stop() for r in replicas]
    assert outcomes.count("OK") == 50
    assert outcomes.count("RESOURCE_EXHAUSTED") == 78
    assert codes == [0, 0]
