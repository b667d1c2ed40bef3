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
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping

from node.errors import ConfigError
from node.store import Store

DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
STATE_KEY = "manifests.retention_days"
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


def purge_expired(store: Store, now: dt.datetime) -> list[str]:
    """Delete the manifests expired at ``now``; their ids, each logged and in the trail."""
    purged = store.manifests.purge(now)
    for manifest_id in purged:
        log.info("manifest %s purged: retention period ended", manifest_id)
    return purged
