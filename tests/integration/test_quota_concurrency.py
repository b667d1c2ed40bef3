"""Quotas are counted exactly: concurrent callers, threads and processes, never exceed them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

from node.store import open_store
from policies.agreement import Grant, Quotas
from policies.errors import QuotaExceeded
from policies.quota import check_quota, quota_scope, quota_windows

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
GRANT = Grant(
    holder="PAN",
    requester="CRI",
    service="match",
    datasets=("travel_documents",),
    purposes=("identity_verification",),
    quotas=Quotas(per_day=50, per_quarter=None),
)


def attempt(store, units: int = 1) -> bool:  # type: ignore[no-untyped-def]
    windows = quota_windows(NOW)
    try:
        store.policies.consume_quota(
            quota_scope("PAN-CRI", GRANT),
            [w.key for w in windows.values()],
            units,
            lambda used: check_quota(GRANT, used, units, NOW),
        )
    except QuotaExceeded:
        return False
    return True


def test_64_concurrent_callers_never_exceed_the_quota(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(lambda _: attempt(store), range(200)))
        assert sum(results) == 50
        used = store.policies.quota_usage(quota_scope("PAN-CRI", GRANT), ["2026-11-28"])
        assert used == {"2026-11-28": 50}
        # The next day the quota is available again; the past window is never consulted.
        next_day = NOW + dt.timedelta(days=1)
        windows = quota_windows(next_day)
        store.policies.consume_quota(
            quota_scope("PAN-CRI", GRANT),
            [w.key for w in windows.values()],
            1,
            lambda used: check_quota(GRANT, used, 1, next_day),
        )
    finally:
        store.close()


WORKER = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from node.store import open_store
    sys.path.insert(0, sys.argv[2])
    from test_quota_concurrency import attempt
    store = open_store(sys.argv[1], migrate=False)
    with ThreadPoolExecutor(max_workers=32) as pool:
        ok = sum(pool.map(lambda _: attempt(store), range(100)))
    store.close()
    print(ok)
    """
)


def test_two_processes_on_one_database_never_exceed_the_quota(database_url: str) -> None:
    open_store(database_url).close()  # migrate once
    here = str(__import__("pathlib").Path(__file__).parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, database_url, here],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    granted = 0
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        granted += int(out.strip())
    assert granted == 50
    store = open_store(database_url, migrate=False)
    try:
        used = store.policies.quota_usage(quota_scope("PAN-CRI", GRANT), ["2026-11-28"])
    finally:
        store.close()
    assert json.loads(json.dumps(used)) == {"2026-11-28": 50}


def test_a_refused_request_counts_nothing(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert attempt(store, units=40)
        assert not attempt(store, units=11)  # 40 + 11 > 50: refused, nothing added
        assert attempt(store, units=10)
        assert store.policies.quota_usage(quota_scope("PAN-CRI", GRANT), ["2026-11-28"]) == {
            "2026-11-28": 50
        }
    finally:
        store.close()
