"""Quota windows (UTC day, calendar quarter) and limits; the counting itself is the node's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from policies.agreement import Grant, Quotas
from policies.errors import QuotaExceeded
from policies.quota import check_quota, quota_scope, quota_windows, remaining


def match_grant(per_day: int | None = 10, per_quarter: int | None = 100) -> Grant:
    return Grant(
        holder="PAN",
        requester="CRI",
        service="match",
        datasets=("travel_documents",),
        purposes=("identity_verification",),
        quotas=Quotas(per_day, per_quarter),
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "day", "quarter"),
    [
        (utc(2026, 3, 14, 9, 30), ("2026-03-14", utc(2026, 3, 14), utc(2026, 3, 15)),
         ("2026-Q1", utc(2026, 1, 1), utc(2026, 4, 1))),
        (utc(2026, 3, 31, 23, 59, 59, 999999), ("2026-03-31", utc(2026, 3, 31), utc(2026, 4, 1)),
         ("2026-Q1", utc(2026, 1, 1), utc(2026, 4, 1))),
        (utc(2026, 4, 1), ("2026-04-01", utc(2026, 4, 1), utc(2026, 4, 2)),
         ("2026-Q2", utc(2026, 4, 1), utc(2026, 7, 1))),
        (utc(2026, 9, 30, 12), ("2026-09-30", utc(2026, 9, 30), utc(2026, 10, 1)),
         ("2026-Q3", utc(2026, 7, 1), utc(2026, 10, 1))),
        (utc(2026, 12, 31, 23), ("2026-12-31", utc(2026, 12, 31), utc(2027, 1, 1)),
         ("2026-Q4", utc(2026, 10, 1), utc(2027, 1, 1))),
        (utc(2028, 2, 29, 1), ("2028-02-29", utc(2028, 2, 29), utc(2028, 3, 1)),
         ("2028-Q1", utc(2028, 1, 1), utc(2028, 4, 1))),
        # 20:00 in Costa Rica on 31 March is already 1 April, Q2, in UTC.
        (datetime(2026, 3, 31, 20, tzinfo=timezone(timedelta(hours=-6))),
         ("2026-04-01", utc(2026, 4, 1), utc(2026, 4, 2)),
         ("2026-Q2", utc(2026, 4, 1), utc(2026, 7, 1))),
    ],
)  # fmt: skip
def test_windows_are_utc_day_and_calendar_quarter(
    now: datetime, day: tuple[str, datetime, datetime], quarter: tuple[str, datetime, datetime]
) -> None:
    windows = quota_windows(now)
    assert tuple(windows["day"]) == day
    assert tuple(windows["quarter"]) == quarter
    for window in windows.values():
        assert window.start <= now < window.end


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quota_windows(datetime(2026, 1, 1))


def test_daily_quota_exhausted_then_restored_next_day() -> None:
    grant = match_grant(per_day=10, per_quarter=None)
    today = utc(2026, 3, 14, 18)
    used = {quota_windows(today)["day"].key: 9}
    check_quota(grant, used, 1, today)
    with pytest.raises(QuotaExceeded) as info:
        check_quota(grant, used, 2, today)
    err = info.value
    assert (err.quota, err.limit, err.used, err.units) == ("day", 10, 9, 2)
    assert err.resets_at == utc(2026, 3, 15)
    assert "2026-03-15T00:00:00Z" in str(err)
    # Same counters, next day: yesterday's counter is not consulted any more.
    check_quota(grant, used, 10, utc(2026, 3, 15))


def test_quarterly_quota_exhausted_then_restored_next_quarter() -> None:
    grant = match_grant(per_day=None, per_quarter=100)
    now = utc(2026, 6, 30, 23, 59)
    used = {quota_windows(now)["quarter"].key: 100}
    with pytest.raises(QuotaExceeded) as info:
        check_quota(grant, used, 1, now)
    assert (info.value.quota, info.value.resets_at) == ("quarter", utc(2026, 7, 1))
    check_quota(grant, used, 1, utc(2026, 7, 1))


def test_when_both_are_spent_the_later_reset_is_reported() -> None:
    now = utc(2026, 5, 10)
    windows = quota_windows(now)
    used = {windows["day"].key: 10, windows["quarter"].key: 100}
    with pytest.raises(QuotaExceeded) as info:
        check_quota(match_grant(), used, 1, now)
    assert info.value.quota == "quarter" and info.value.resets_at == windows["quarter"].end


def test_unlimited_zero_and_oversized_requests() -> None:
    now = utc(2026, 5, 10)
    check_quota(match_grant(None, None), {quota_windows(now)["day"].key: 10**12}, 10**6, now)
    with pytest.raises(QuotaExceeded):
        check_quota(match_grant(per_day=0), {}, 1, now)
    with pytest.raises(QuotaExceeded) as info:
        check_quota(match_grant(per_day=10), {}, 11, now)
    assert "at most 10 elements per request" in str(info.value)


def test_remaining_per_window() -> None:
    now = utc(2026, 5, 10)
    windows = quota_windows(now)
    used = {windows["day"].key: 4, windows["quarter"].key: 120, "2026-05-09": 10}
    assert remaining(match_grant(), used, now) == {"day": 6, "quarter": 0}
    assert remaining(match_grant(None, 5), {}, now) == {"day": None, "quarter": 5}


@pytest.mark.parametrize("units", [0, -1, True])
def test_units_must_be_positive(units: int) -> None:
    with pytest.raises(ValueError, match="units"):
        check_quota(match_grant(), {}, units, utc(2026, 1, 1))


def test_negative_counter_is_refused() -> None:
    now = utc(2026, 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        check_quota(match_grant(), {quota_windows(now)["day"].key: -1}, 1, now)


def test_scope_is_shared_across_versions_but_not_directions_or_services() -> None:
    g = match_grant()
    assert quota_scope("PAN-CRI-1", g) == quota_scope("PAN-CRI-1", match_grant(5, 5))
    reverse = Grant("CRI", "PAN", "match", ("a",), ("b",), Quotas(1, 1))
    assert quota_scope("PAN-CRI-1", g) != quota_scope("PAN-CRI-1", reverse)
    assert quota_scope("PAN-CRI-1", g) != quota_scope("PAN-CRI-2", g)
