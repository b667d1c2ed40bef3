"""``enlace doctor``: the checks an operator runs before calling anyone, each with its fix.

Why: the failures that stop a federation node are few and boring — a clock drifting away
from its peers, an expired directory or certificate, a migration not applied, a full disk, a
peer that moved — and each has one known remedy. Every check returns a :class:`Check` naming
what was looked at, ``ok`` / ``warn`` / ``fail``, what was found, and the command or action
that fixes it.

Invariants:
* Checks only read: the database is opened *without* applying migrations (so pending ones
  are seen), nothing is written except the audit entries of the signed pings peers answer.
* One failing check never hides the others: every check runs inside its own guard, and an
  exception becomes a ``fail`` naming it.
* ``fail`` means traffic is refused now or will be within days; ``warn`` means act soon.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url, text

from crypto.envelope import parse_time
from crypto.errors import EncodingError
from crypto.keys import certificate_fingerprint, certificate_not_after
from enlace.v1 import node_pb2
from node.client import PeerClient
from node.clock import Clock
from node.errors import EnlaceError, PeerError, StoreError
from node.home import NodeHome
from node.ops.rotation import (
    ALARM_BEFORE,
    expiry_report,
    home_signing_keys,
    own_entry,
    pending_tls,
    select_signing_key,
)
from node.peer_checks import printable
from node.runtime import DirectoryHolder, NodeRuntime
from node.store import database, open_store
from node.store.failures import reported_failure
from node.trust.directory import Directory, DirectoryLookupError
from node.trust.freshness import FreshnessState
from node.trust.member import format_time

OK, WARN, FAIL = "ok", "warn", "fail"
DISK_WARN_BYTES = 1 << 30
DISK_FAIL_BYTES = 100 << 20


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def open_for_checks(home: NodeHome, clock: Clock) -> NodeRuntime:
    """A runtime whose store is opened without migrating (doctor must see what is pending).

    A database that cannot even be opened (a damaged SQLite file) is the ``database`` check's
    finding, not the end of the doctor: the runtime then holds an :class:`_UnopenedStore`,
    whose engine only names the database (the disk check needs its folder) and whose every
    other use raises what opening it raised."""
    config = home.config()
    url = home.database_url(config)
    try:
        store: Any = open_store(url, migrate=False)
    except StoreError as exc:
        store = _UnopenedStore(database.make_engine(url), exc)
    return NodeRuntime(
        home=home,
        config=config,
        signing_key=home.signing_key(),
        store=store,
        directory=DirectoryHolder.from_file(home.directory_path, config),
        clock=clock,
    )


class _UnopenedStore:
    def __init__(self, engine: Engine, failure: StoreError) -> None:
        self.engine, self.failure = engine, failure

    def close(self) -> None:
        self.engine.dispose()

    def __getattr__(self, name: str) -> Any:
        raise StoreError(self.failure.message, hint=self.failure.hint)


def _days(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


def check_database(runtime: NodeRuntime) -> list[Check]:
    if isinstance(runtime.store, _UnopenedStore):
        failure = runtime.store.failure
        return [Check("database", FAIL, failure.message, failure.hint)]
    engine = runtime.store.engine
    where = make_url(engine.url).render_as_string(hide_password=True)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    current = database.current_revision(engine)
    head = database.head_revision()
    checks = [Check("database", OK, f"{engine.dialect.name} at {where} answers")]
    if current == head:
        checks.append(Check("migrations", OK, f"schema at revision {head} (latest)"))
    elif current is None or current < head:
        checks.append(
            Check(
                "migrations",
                FAIL,
                f"schema at revision {current or 'none'}, this software needs {head}",
                "back up (enlace backup), then start `enlace serve`: it applies pending "
                "migrations before serving",
            )
        )
    else:
        checks.append(
            Check(
                "migrations",
                FAIL,
                f"schema at revision {current}, newer than this software's {head}",
                "install the crm-enlace version that wrote this database",
            )
        )
    return checks


def check_directory(runtime: NodeRuntime, now: dt.datetime) -> list[Check]:
    directory = runtime.directory.peek()
    if directory is None:
        return [
            Check(
                "directory",
                FAIL,
                "no federation directory installed",
                "enlace directory publish FILE --home HOME --expect-hash HASH",
            )
        ]
    fresh = runtime.directory.freshness(now)  # raises beyond the grace period
    status = {FreshnessState.VALID: OK, FreshnessState.WARNING: WARN}.get(fresh.state, FAIL)
    fix = "" if status == OK else "ask the directory administrators for the next version"
    return [Check("directory", status, fresh.message, fix)]


def check_keys(runtime: NodeRuntime, now: dt.datetime) -> list[Check]:
    home, country = runtime.home, runtime.config.country
    directory = runtime.directory.peek()
    entry = own_entry(directory, country)
    checks: list[Check] = []
    held = home_signing_keys(home)
    if entry is None:
        return [
            Check(
                "signing-key",
                FAIL,
                f"{country} is not listed in the installed directory",
                "send HOME/member.json to the directory administrators",
            )
        ]
    active = select_signing_key(held, entry, now, runtime.signing_key)
    listed = entry.signing_key(active.key_id)
    if listed is None or not listed.valid_at(now):
        checks.append(
            Check(
                "signing-key",
                FAIL,
                f"no key held in {home.root / 'keys'} is listed and valid now for {country}",
                "enlace rotate-signing-key, then have the directory republished",
            )
        )
    else:
        last = max((k for k in entry.signing_keys if k.key_id in held), key=lambda k: k.not_after)
        left = last.not_after - now
        status = WARN if left <= ALARM_BEFORE else OK
        checks.append(
            Check(
                "signing-key",
                status,
                f"signing with {active.key_id}; keys valid until {format_time(last.not_after)} "
                f"({_days(left)})",
                "enlace rotate-signing-key" if status == WARN else "",
            )
        )
    waiting = [k for k in held if entry.signing_key(k) is None]
    member = home.member()
    unpublished = [k.key_id for k in member.signing_keys if k.key_id in waiting]
    if unpublished:
        checks.append(
            Check(
                "signing-rotation",
                WARN,
                f"key {', '.join(unpublished)} is in member.json but not in the directory",
                "send HOME/member.json to the directory administrators to publish it",
            )
        )
    own_pem = home.keys.load_tls()[1]
    fingerprint = certificate_fingerprint(own_pem)
    expires = certificate_not_after(own_pem)
    if fingerprint not in entry.tls_fingerprints:
        checks.append(
            Check(
                "tls-certificate",
                FAIL,
                f"served certificate {fingerprint[:23]}… is not pinned in the directory",
                "send HOME/member.json to the directory administrators",
            )
        )
    else:
        left = expires - now
        status = FAIL if left <= dt.timedelta(0) else WARN if left <= ALARM_BEFORE else OK
        checks.append(
            Check(
                "tls-certificate",
                status,
                f"certificate valid until {format_time(expires)} ({_days(left)})",
                "enlace rotate-tls" if status != OK else "",
            )
        )
    pending = pending_tls(home)
    if pending is not None:
        pinned = pending.fingerprint in entry.tls_fingerprints
        checks.append(
            Check(
                "tls-rotation",
                OK if pinned else WARN,
                f"next certificate activates at {format_time(pending.activate_at)}; "
                + ("pinned in the directory" if pinned else "not yet in the directory"),
                "" if pinned else "send HOME/member.json to the directory administrators",
            )
        )
    return checks


def check_disclosure(runtime: NodeRuntime, now: dt.datetime) -> list[Check]:
    """Statistics grants in force whose disclosure control a requester can get round by
    differencing or averaging answers (:mod:`policies.weaknesses`); this node's data only."""
    from node.agreements import AgreementBook
    from policies.in_force import agreement_status
    from policies.weaknesses import disclosure_weaknesses

    view = AgreementBook(runtime).current(now)
    me = runtime.config.country
    found: list[str] = []
    for verified in view.agreements:
        if agreement_status(verified, view.revocations, now, others=view.agreements):
            continue  # not in force: nothing is released under it
        agreement = verified.agreement
        found += [
            f"{agreement.label()} {w.line()}" for w in disclosure_weaknesses(agreement, holder=me)
        ]
    if not found:
        return [Check("disclosure", OK, "no statistics grant in force relies on thresholds alone")]
    return [
        Check(
            "disclosure",
            WARN,
            "; ".join(found),
            "agree a new version with the other party (`enlace policy new` drafts cell-key "
            "noise); `enlace policy show FILE` lists each weakness",
        )
    ]


def check_agreement_keys(runtime: NodeRuntime, now: dt.datetime) -> list[Check]:
    """Installed agreements signed with a key the directory retires soon (or has retired).

    An agreement counts only while both parties' signatures verify with keys valid now. When
    a party rotates its signing key, the old key stays listed for ``--retire-after-days``
    (seven by default); an agreement not re-signed with the new key by then stops allowing
    anything, under every grant. The operator must hear it while there is time."""
    from policies.signatures import load_signed_agreement

    directory = runtime.directory.current(now)
    me = runtime.config.country
    found: list[tuple[dt.timedelta, str, str]] = []
    for stored in runtime.store.policies.agreements():
        signed = load_signed_agreement(stored.document)
        agreement = signed.agreement
        if agreement.valid_until <= now:
            continue  # over anyway
        for party, signature in sorted(signed.signatures.items()):
            try:
                key = directory.member(party).signing_key(signature.key_id)
            except DirectoryLookupError:  # no longer a member: no key of it counts
                key = None
            left = (key.not_after - now) if key is not None else dt.timedelta(0)
            if left > ALARM_BEFORE:
                continue
            when = "is not listed" if key is None else (
                f"ends {format_time(key.not_after)}" if left > dt.timedelta(0)
                else f"ended {format_time(key.not_after)}"
            )  # fmt: skip
            who = "this node" if party == me else party
            found.append(
                (left, f"{agreement.label()}: {who}'s signature key {signature.key_id} {when}",
                 party)
            )  # fmt: skip
    if not found:
        return [Check("agreement-signatures", OK, "every installed agreement's keys stay valid")]
    found.sort(key=lambda f: f[0])
    status = FAIL if found[0][0] <= dt.timedelta(0) else WARN
    mine = any(party == me for _, _, party in found)
    fix = (
        "re-sign with the node's current key (`enlace policy sign FILE --home HOME`) and "
        "install the copy on both nodes"
        if mine
        else "ask the other party to re-sign with its new key and send the copy to install"
    )
    return [Check("agreement-signatures", status, "; ".join(f[1] for f in found), fix)]


def check_peer_expiry(runtime: NodeRuntime, directory: Directory, now: dt.datetime) -> Check:
    report = expiry_report(runtime.home, directory, runtime.config.country)
    peers = [e for e in report if e.kind.startswith("peer_")]
    soon = [e for e in peers if e.remaining(now) <= ALARM_BEFORE]
    if not soon:
        keys = sum(1 for e in peers if e.kind == "peer_signing_key")
        members = len({e.subject.split("/")[0] for e in peers})
        return Check(
            "peer-credentials",
            OK,
            f"{members} peer(s): {keys} signing key(s) and {len(peers) - keys} TLS "
            "certificate(s) current",
        )
    worst = min(soon, key=lambda e: e.expires_at)
    status = FAIL if worst.remaining(now) <= dt.timedelta(0) else WARN
    names = ", ".join(f"{e.kind} {e.subject} {format_time(e.expires_at)}" for e in soon)
    return Check("peer-credentials", status, names, "ask those members to rotate (enlace rotate-…)")


def check_disk(runtime: NodeRuntime) -> list[Check]:
    places = {runtime.home.root}
    url = make_url(runtime.store.engine.url)
    if url.get_backend_name() == "sqlite" and url.database:
        places.add(Path(url.database).parent)
    checks = []
    for place in sorted(places):
        usage = shutil.disk_usage(place)
        free = usage.free
        status = FAIL if free < DISK_FAIL_BYTES else WARN if free < DISK_WARN_BYTES else OK
        checks.append(
            Check(
                f"disk {place}",
                status,
                f"{free / (1 << 30):.1f} GiB free of {usage.total / (1 << 30):.1f} GiB",
                "" if status == OK else "free space or grow the volume; the audit log only grows",
            )
        )
    return checks


def probe_peer(runtime: NodeRuntime, country: str, timeout: float) -> Check:
    """Ping one peer: reachability, latency, and our clock against theirs."""
    window = runtime.config.skew_seconds
    try:
        with PeerClient(runtime, country, timeout=timeout) as client:
            sent = runtime.clock.now()
            reply = client.call(
                "/enlace.v1.NodeService/Ping", node_pb2.PingRequest(), node_pb2.PingResponse
            )
            received = runtime.clock.now()
    except PeerError as exc:
        if "apart, the limit is" in exc.message:
            return Check(
                f"peer {country}",
                FAIL,
                f"refused our clock: {exc.message}",
                "synchronise this host's clock (NTP: timedatectl, chronyc tracking)",
            )
        return Check(
            f"peer {country}",
            FAIL,
            str(exc),
            f"check {country}'s endpoint and your firewall; `enlace peers`; ask its operator",
        )
    middle = sent + (received - sent) / 2
    try:
        skew = (parse_time(reply.message.server_time) - middle).total_seconds()
    except EncodingError:  # signed, but not the protocol's time form: the peer's fault
        return Check(
            f"peer {country}",
            FAIL,
            f"answered with a server time that is not RFC 3339 UTC: "
            f"{printable(reply.message.server_time, 40)!r}",
            f"ask {country}'s operator: its node does not follow the protocol",
        )
    status = FAIL if abs(skew) > window else WARN if abs(skew) > window / 4 else OK
    return Check(
        f"peer {country}",
        status,
        f"reachable in {reply.elapsed_ms:.1f} ms; clock skew {skew:+.2f} s (limit ±{window} s)",
        ""
        if status == OK
        else f"synchronise this host's clock (NTP); if it is right, tell {country}'s operator",
    )


def _guard(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    try:
        return check()
    except EnlaceError as exc:
        return [Check(name, FAIL, exc.message, exc.hint)]
    except Exception as exc:  # a check that crashes is a finding, not the end of the run
        failure = reported_failure(exc)  # the database's words and advice, never its SQL
        if failure is not None:
            return [Check(name, FAIL, failure.message, failure.hint)]
        return [Check(name, FAIL, f"{exc.__class__.__name__}: {exc}", "")]


def run_checks(runtime: NodeRuntime, *, peers: bool = True, timeout: float = 3.0) -> list[Check]:
    """Every check, in a stable order: local state first, then one line per peer."""
    now = runtime.clock.now()
    checks = _guard("database", lambda: check_database(runtime))
    checks += _guard("directory", lambda: check_directory(runtime, now))
    checks += _guard("signing-key", lambda: check_keys(runtime, now))
    directory = runtime.directory.peek()
    if directory is not None:
        checks += _guard("peer-credentials", lambda: [check_peer_expiry(runtime, directory, now)])
    checks += _guard("disk", lambda: check_disk(runtime))
    stored = not any(c.status == FAIL and c.name == "database" for c in checks)
    if directory is not None and stored:
        checks += _guard("agreement-signatures", lambda: check_agreement_keys(runtime, now))
        checks += _guard("disclosure", lambda: check_disclosure(runtime, now))
    usable = not any(c.status == FAIL and c.name in ("database", "directory") for c in checks)
    if peers and directory is not None and usable:
        others = [m.country for m in directory.members if m.country != runtime.config.country]
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(others)))) as pool:
            results = pool.map(
                lambda c: _guard(f"peer {c}", lambda: [probe_peer(runtime, c, timeout)]), others
            )
            for result in results:
                checks += result
    return checks


def summary(checks: list[Check]) -> dict[str, Any]:
    counts = {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL)}
    return {"status": FAIL if counts[FAIL] else WARN if counts[WARN] else OK, **counts}
