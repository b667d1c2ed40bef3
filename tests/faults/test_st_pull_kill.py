"""SIGKILL of the Secretariat in the middle of its pull of the members' tables.

Why: the ST's scheduled pull (``enlace st pull``, :mod:`node.secretariat.pull`) writes one
result per (member, table, period) as the answers arrive, from several worker threads at once.
A node killed there must come back with what DESIGN §2 promises: the store is consistent (its
audit chain and signed checkpoints verify, SQLite's integrity check passes), every result that
was committed before the kill is still there unchanged, the interrupted pull is not reported
as finished, and a new pull completes the period with exactly one result per member and table.

The members (PAN, CRI, HND) are real ``enlace serve`` processes; the ST (CRM) runs the real CLI
in a child process, which is killed once a random number of results has been committed (read
by this process through a connection of its own, so "committed" means visible to any reader).
Both backends; slow (tens of seconds).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from faults.support import Output, cli, start
from node.cli.audit_cmd import verify_log
from node.demo.agreements import sign_and_install, stats_grant
from node.demo.federation import LocalFederation, create_federation
from node.demo.processes import NodeProcess
from node.ingest.pipeline import ingest
from node.records.generate import generate
from node.runtime import NodeRuntime, open_runtime
from policies.agreement import Agreement, Quotas

MEMBERS = ("PAN", "CRI", "HND")
ST = "CRM"
PERIOD = "2024Q2"
#: The pulled matrices (M05 is regional-only: a share round, not a pull).
MATRICES = ("M01", "M02", "M03", "M04", "M06", "M07", "M08")
TOTAL = len(MEMBERS) * len(MATRICES)
ROUNDS = 4

#: (member, table) → what identifies the stored answer.
Results = dict[tuple[str, str], tuple[str, str, str]]


@dataclass
class StFederation:
    fed: LocalFederation
    nodes: list[NodeProcess]
    reader: Engine

    @property
    def home(self) -> str:
        return str(self.fed.homes[ST].root)

    def committed(self) -> Results:
        """The results any reader of the ST's database sees now."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT member, table_id, status, pull_id, cells FROM st_results "
                    "WHERE period = :period"
                ),
                {"period": PERIOD},
            ).all()
        return {
            (m, t): (s, p, c if isinstance(c, str) else json.dumps(c, sort_keys=True))
            for m, t, s, p, c in rows
        }


def _build(root: Path, urls: Callable[[], str]) -> LocalFederation:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fed = create_federation(
        root / "fed", MEMBERS, now, database_urls={c: urls() for c in (*MEMBERS, ST)}
    )
    runtimes: dict[str, NodeRuntime] = {c: open_runtime(fed.homes[c]) for c in (*MEMBERS, ST)}
    try:
        for n, member in enumerate(MEMBERS):
            out = root / "data" / member.lower()
            generate(member, 1500, 40 + n, out)
            ingest(runtimes[member].store, "encounters", [out / "encounters.csv"], now=now)
            start_at = now - dt.timedelta(days=1)
            grant = dataclasses.replace(stats_grant(member, ST), quotas=Quotas(None, None))
            agreement = Agreement(
                f"{member}-{ST}-STATS",
                1,
                (member, ST),
                f"Cuadros {member} → ST",
                start_at,
                start_at + dt.timedelta(days=30),
                (grant,),
            )
            sign_and_install(agreement, runtimes, now)
    finally:
        for runtime in runtimes.values():
            runtime.close()
    return fed


@pytest.fixture
def st_federation(
    tmp_path: Path, database_url_factory: Callable[[], str]
) -> Iterator[StFederation]:
    fed = _build(tmp_path, database_url_factory)
    nodes = [NodeProcess(m, fed.homes[m], fed.endpoint(m)) for m in MEMBERS]
    reader = create_engine(fed.homes[ST].database_url())
    try:
        for node in nodes:
            node.start({"ENLACE_LOG_LEVEL": "WARNING"})
        for node in nodes:
            node.wait_ready(time.monotonic() + 60)
        yield StFederation(fed, nodes, reader)
    finally:
        reader.dispose()
        for node in nodes:
            node.stop()


def _pull_args(home: str) -> list[str]:
    chosen = [arg for m in MATRICES for arg in ("--matrix", m)]
    return ["st", "pull", "--home", home, "--period", PERIOD, *chosen, "--json"]


def _kill_mid_pull(live: StFederation, after: int) -> tuple[Results, bool]:
    """Start a pull, SIGKILL it once ``after`` more results are committed; what was committed
    just before the kill, and whether the pull had already finished by then."""
    before = live.committed()
    pull = start(["-m", "node.cli.main", *_pull_args(live.home)])
    output = Output(pull)
    deadline = time.monotonic() + 120
    seen = before
    while pull.poll() is None and time.monotonic() < deadline:
        seen = live.committed()
        if sum(before.get(k) != v for k, v in seen.items()) >= after:
            break
        time.sleep(0.01)
    finished = pull.poll() is not None
    output.kill()
    assert finished or pull.returncode == -signal.SIGKILL
    return seen, finished


def _check_st_store(live: StFederation) -> tuple[Results, list[tuple[str, str]]]:
    """Audit chain, checkpoints and head verify; SQLite intact; (results, [(pull, status)])."""
    runtime = open_runtime(live.fed.homes[ST])
    try:
        verify_log(runtime)
        if runtime.store.backend == "sqlite":
            with runtime.store.engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        pulls = [(p.pull_id, p.status) for p in runtime.store.secretariat.pulls(limit=100)]
    finally:
        runtime.close()
    return live.committed(), pulls


@pytest.mark.slow
def test_sigkill_during_an_st_pull_loses_no_committed_result_and_a_new_pull_completes(
    st_federation: StFederation,
) -> None:
    live = st_federation
    rng = random.Random(23)
    interrupted: set[str] = set()
    known: set[str] = set()
    for _ in range(ROUNDS):
        acknowledged, finished = _kill_mid_pull(live, rng.randint(1, TOTAL - 2))
        stored, pulls = _check_st_store(live)
        lost = {k for k, v in acknowledged.items() if stored.get(k) != v}
        assert not lost, f"committed results lost or changed by the kill: {sorted(lost)}"
        ((this_pull, status),) = [(p, s) for p, s in pulls if p not in known]
        known.add(this_pull)
        # An interrupted pull is never reported as finished; a finished one says complete. A
        # pull may also record its end in the instant between the last check and the kill.
        assert status in (("complete",) if finished else ("running", "complete")), status
        if status == "running":
            interrupted.add(this_pull)
    killed_mid_pull = len(interrupted)
    assert killed_mid_pull >= ROUNDS // 2, "the kills did not land inside the pulls"
    # Work resumes: a new pull completes the period, one result per member and table.
    done = cli(*_pull_args(live.home))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout)
    assert report["status"] == "complete", report
    stored, pulls = _check_st_store(live)
    assert len(stored) == TOTAL and {s for s, _p, _c in stored.values()} == {"complete"}
    assert {p for _s, p, _c in stored.values()} == {report["pull"]["pull_id"]}
    assert {s for p, s in pulls if p in interrupted} == {"running"}
    # The members that answered the killed pulls still verify their own chains.
    for node in live.nodes:
        node.stop()
    for member in MEMBERS:
        runtime = open_runtime(live.fed.homes[member])
        try:
            verify_log(runtime)
            assert any(
                e.record.peer == ST and e.record.status == "OK" for e in runtime.store.iter_audit()
            )
        finally:
            runtime.close()


@pytest.mark.slow
def test_retrying_a_pull_killed_mid_way_asks_the_members_it_still_lacks(
    st_federation: StFederation,
) -> None:
    live = st_federation
    _acknowledged, finished = _kill_mid_pull(live, 3)
    assert not finished
    (killed, status), *_ = _check_st_store(live)[1]
    assert status == "running"
    done = cli("st", "pull", "--home", live.home, "--retry", "--pull-id", killed, "--json")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    (report,) = json.loads(done.stdout)["retried"]
    stored, _pulls = _check_st_store(live)
    answered = {k for k, (s, p, _c) in stored.items() if p == killed and s == "complete"}
    assert report["status"] == "complete" and len(answered) == TOTAL, (report, len(answered))
