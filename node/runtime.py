"""What a running node holds: configuration, keys, store, trusted directory and clock.

Why one object: the server, the peer client, the scheduler and the CLI all need the same
handful of things, and tests need to build them with a :class:`~node.clock.ManualClock` and a
throwaway database. :func:`open_runtime` is the only place that wires them together.

Invariants:
* :meth:`DirectoryHolder.current` never returns a directory whose signatures did not verify,
  and raises once the trusted copy is past its grace period; within grace it logs a warning.
* Replacing the directory goes through :func:`node.trust.directory.verify_update`, so a node
  can only move forward along a properly signed chain.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto.signing import SigningKey
from node.clock import Clock, SystemClock
from node.config import NodeConfig
from node.errors import ConfigError
from node.home import NodeHome
from node.store import Store, open_store
from node.trust.directory import Directory, parse_directory_json, verify_root, verify_update
from node.trust.freshness import Freshness, check_freshness

log = logging.getLogger("node.directory")


class DirectoryHolder:
    """The node's trusted directory, replaced only by verified successors."""

    def __init__(self, directory: Directory | None, path: Path | None, config: NodeConfig) -> None:
        self._directory = directory
        self._path = path
        self._grace = dt.timedelta(days=config.directory_grace_days)
        self._warn = dt.timedelta(days=config.directory_warn_days)
        self._lock = threading.Lock()
        self._last_state = ""

    @classmethod
    def from_file(cls, path: Path, config: NodeConfig) -> DirectoryHolder:
        if not path.exists():
            return cls(None, path, config)
        directory = parse_directory_json(path.read_bytes())
        # Signatures are checked as of issuance; expiry and grace are freshness's concern.
        verify_root(directory, directory.issued_at)
        return cls(directory, path, config)

    def freshness(self, now: dt.datetime) -> Freshness:
        return check_freshness(self._require(), now, self._grace, self._warn)

    def current(self, now: dt.datetime) -> Directory:
        directory = self._require()
        state = check_freshness(directory, now, self._grace, self._warn)
        if state.state not in ("valid", self._last_state):
            log.warning("directory v%s: %s", directory.version, state.message)
        self._last_state = state.state
        return directory

    def peek(self) -> Directory | None:
        return self._directory

    def _require(self) -> Directory:
        if self._directory is None:
            raise ConfigError(
                "this node holds no federation directory",
                hint="publish one with `enlace directory publish FILE --home HOME`",
            )
        return self._directory

    def offer(self, candidate: Directory, now: dt.datetime) -> bool:
        """Adopt ``candidate`` if it verifies as a successor; True when it replaced the copy."""
        with self._lock:
            trusted = self._directory
            adopted = (
                verify_root(candidate, now)
                if trusted is None
                else verify_update(trusted, candidate, now)
            )
            if trusted is not None and adopted is trusted:
                return False
            self._directory = adopted
            if self._path is not None:
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(adopted.to_json(), encoding="utf-8")
                os.replace(tmp, self._path)
            log.info("directory updated to v%s (%s)", adopted.version, adopted.hash[:16])
            return True


@dataclass
class NodeRuntime:
    home: NodeHome
    config: NodeConfig
    signing_key: SigningKey
    store: Store
    directory: DirectoryHolder
    clock: Clock
    # Later capabilities (records, agreements…) add what GetInfo publishes about them.
    info_providers: list[Callable[[Any], None]] = field(default_factory=list)

    def close(self) -> None:
        self.store.close()


def open_runtime(
    home: NodeHome, clock: Clock | None = None, *, database_url: str | None = None
) -> NodeRuntime:
    from node.ingest import info_provider

    config = home.config()
    store = open_store(database_url or home.database_url(config))
    runtime = NodeRuntime(
        home=home,
        config=config,
        signing_key=home.signing_key(),
        store=store,
        directory=DirectoryHolder.from_file(home.directory_path, config),
        clock=clock or SystemClock(),
    )
    runtime.info_providers.append(info_provider(runtime))
    return runtime
