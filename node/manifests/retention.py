"""How long screened manifests are kept, and the purge of the expired ones.

Why: passenger data may be kept only as long as the law and the carrier agreements allow
(commonly days to weeks for API data not linked to a case). Each stored manifest gets its
``expires_at`` when it is saved, from the retention in force at that moment; a later change of
the retention applies to manifests saved afterwards. The retention is, in order of precedence,
the ``ENLACE_MANIFEST_RETENTION_DAYS`` environment variable, the value set with
``enlace screen retention --days N`` (kept in the node's state table), or
:data:`DEFAULT_RETENTION_DAYS`.

Invariants:
* A retention is a whole number of days between 1 and :data:`MAX_RETENTION_DAYS`; anything
  else raises :class:`~node.errors.ConfigError` naming its source.
* :func:`purge_expired` deletes every manifest expired at ``now`` with its travellers, appends a
  ``purged`` event per manifest to the trail, and logs one line per manifest; ``now`` is passed
  in (time is injected).
* The report files a screening wrote (:func:`record_reports`: path and SHA-256 in the trail)
  are deleted with their manifest — they list the same travellers — unless they changed since
  they were written: a file the operator edited or replaced is theirs, and is named in the
  purge's result as left in place. Files the node did not write (the manifest itself) are
  never touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from node.errors import ConfigError
from node.store import Store

DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
STATE_KEY = "manifests.retention_days"
REPORTS_EVENT = "reports"
REPORTS_DELETED_EVENT = "reports_deleted"
ENV_VAR = "ENLACE_MANIFEST_RETENTION_DAYS"

log = logging.getLogger("enlace.manifests")


def _days(text: str, source: str) -> int:
    try:
        days = int(text.strip())
    except ValueError:
        raise ConfigError(
            f"manifest retention {text!r} from {source} is not a number of days",
            hint=f"use a whole number between 1 and {MAX_RETENTION_DAYS}",
        ) from None
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise ConfigError(
            f"manifest retention of {days} days from {source} is outside 1-{MAX_RETENTION_DAYS}",
            hint=f"use a whole number between 1 and {MAX_RETENTION_DAYS}",
        )
    return days


def retention_days(store: Store, environ: Mapping[str, str] | None = None) -> int:
    """The retention in force (see the module docstring for the precedence)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR, "").strip():
        return _days(env[ENV_VAR], ENV_VAR)
    stored = store.get_state(STATE_KEY)
    if stored is not None:
        return _days(stored[0], "the node state")
    return DEFAULT_RETENTION_DAYS


def set_retention_days(store: Store, days: int, now: dt.datetime) -> int:
    """Keep ``days`` as this node's manifest retention (for manifests saved from now on)."""
    checked = _days(str(days), "the command line")
    store.put_state(STATE_KEY, str(checked), now)
    return checked


def expiry(store: Store, now: dt.datetime, environ: Mapping[str, str] | None = None) -> dt.datetime:
    return now + dt.timedelta(days=retention_days(store, environ))


@dataclass
class Purge:
    """What a purge removed: the manifests, the report files deleted with them, and the report
    files left in place with why (``(path, reason)``)."""

    manifests: list[str] = field(default_factory=list)
    reports_deleted: list[str] = field(default_factory=list)
    reports_kept: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "purged": self.manifests,
            "reports_deleted": self.reports_deleted,
            "reports_kept": [{"path": p, "reason": r} for p, r in self.reports_kept],
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_reports(store: Store, manifest_id: str, paths: Sequence[Path], now: dt.datetime) -> None:
    """Note in the trail which report files this screening wrote, so that they are deleted
    with it (see the module's invariants)."""
    files = [{"path": str(p.resolve()), "sha256": _sha256(p)} for p in paths]
    store.manifests.record(manifest_id, now, REPORTS_EVENT, {"files": files})


def _reports(store: Store, manifest_id: str) -> list[tuple[Path, str]]:
    """The report files the screening ``manifest_id`` wrote: (path, SHA-256 when written)."""
    return [
        (Path(str(entry["path"])), str(entry["sha256"]))
        for event in store.manifests.events(manifest_id)
        if event.action == REPORTS_EVENT
        for entry in event.detail.get("files", [])
    ]


def _delete_reports(
    store: Store,
    manifest_id: str,
    now: dt.datetime,
    purge: Purge,
    kept_by_others: dict[tuple[str, str], str],
) -> None:
    """Delete what ``manifest_id``'s screening wrote and nobody changed since.

    ``kept_by_others`` maps (path, SHA-256) to the manifest, not expired, whose screening
    wrote those very bytes there later (the same ``--out`` used again): that file is left
    for that manifest's own purge.
    """
    deleted: list[str] = []
    kept: list[tuple[str, str]] = []
    for path, written in _reports(store, manifest_id):
        try:
            now_sha = _sha256(path)
            if now_sha != written:
                later = kept_by_others.get((str(path), now_sha))
                kept.append((str(path), (
                    f"rewritten by the screening kept as {later}; it goes with that one"
                    if later else "changed since the screening wrote it"
                )))  # fmt: skip
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # already gone: nothing left to delete
        except OSError as exc:
            kept.append((str(path), f"could not be deleted: {exc.strerror}"))
            continue
        log.info("report %s of manifest %s deleted: retention period ended", path, manifest_id)
        deleted.append(str(path))
    for name, reason in kept:
        log.warning("report %s of manifest %s left in place: %s", name, manifest_id, reason)
    if deleted or kept:
        detail = {"deleted": deleted, "kept": [{"path": p, "reason": r} for p, r in kept]}
        store.manifests.record(manifest_id, now, REPORTS_DELETED_EVENT, detail)
    purge.reports_deleted += deleted
    purge.reports_kept += kept


def purge_expired(store: Store, now: dt.datetime) -> Purge:
    """Delete the manifests expired at ``now`` and the report files written for them; each
    deletion is logged and in the trail."""
    purge = Purge()
    stored = store.manifests.stored()
    expired = [m.manifest_id for m in stored if m.expires_at < now]
    kept_by_others = {
        (str(path), sha): m.manifest_id
        for m in stored
        if expired and m.expires_at >= now
        for path, sha in _reports(store, m.manifest_id)
    }
    # Reports first: if the process dies in between, the manifest is still there to find them
    # next time (a report already deleted is simply not found again).
    for manifest_id in expired:
        _delete_reports(store, manifest_id, now, purge, kept_by_others)
    purge.manifests = store.manifests.purge(now)
    for manifest_id in purge.manifests:
        log.info("manifest %s purged: retention period ended", manifest_id)
    return purge
