"""A serving node's log at INFO holds what happened, not two scheduler lines per job run.

APScheduler logs "Running job …" and "… executed successfully" at INFO for every run; the
filter ``enlace serve`` puts on its log handlers (:class:`ThirdPartyFilter`) leaves them out
below DEBUG, as every library's INFO lines (``test_serve_log_noise`` checks a served node).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest

from node.ops.logging_json import ThirdPartyFilter
from node.server.jobs import NodeJobs


def test_job_runs_leave_no_scheduler_lines_at_info(live, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ThirdPartyFilter())  # as on the served node's handlers
    jobs = NodeJobs(live.runtimes["PAN"])
    ran = threading.Event()
    jobs.observers.append(lambda job, outcome, seconds: ran.set())
    jobs.start()
    try:
        for job in jobs.scheduler.get_jobs():  # every job due now, not in a minute
            job.modify(next_run_time=dt.datetime.now(dt.UTC))
        assert ran.wait(15), "no job ran within 15 s"
    finally:
        jobs.shutdown()
    scheduler_lines = [r for r in caplog.records if r.name.startswith("apscheduler")]
    assert not [r for r in scheduler_lines if r.levelno < logging.WARNING]
