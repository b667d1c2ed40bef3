"""How a node's local copy of the directory ages, and how it is replaced on disk.

Why: when trust data expires, traffic stops — the first complaint of X-Road operators. So a
node does not fall off a cliff at ``expires_at``: it warns well before (``warning``), keeps
working on its last valid copy for a grace period after expiry while warning loudly
(``grace``), and only then refuses (:class:`~node.trust.directory.DirectoryExpiredError`).

Invariants:

* :func:`check_freshness` is pure: ``now`` is passed in, and nothing here reads the clock.
* Accepting a *new* directory never uses the grace period: :func:`install_directory` takes only
  a candidate that verifies as a root (first install) or as an update of the copy on disk, and
  is unexpired at ``now``.
* The file ``HOME/directory.json`` is replaced atomically (temporary file in the same folder,
  fsync, ``os.replace``): a crash leaves either the old or the new copy, never half of one.
* A copy on disk that cannot be read or does not carry its own threshold of signatures is an
  error, never silently replaced: it is the node's trust anchor.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from node.trust.directory import (
    Directory,
    DirectoryExpiredError,
    DirectorySignatureError,
    count_signatures,
    parse_directory_json,
    verify_root,
    verify_update,
)
from node.trust.member import DirectoryFormatError, format_time

DIRECTORY_FILE = "directory.json"
DEFAULT_GRACE = timedelta(days=7)
DEFAULT_WARN_BEFORE = timedelta(days=14)


class FreshnessState(StrEnum):
    VALID = "valid"
    WARNING = "warning"  # expires within ``warn_before``: refresh now
    GRACE = "grace"  # expired, still used within the grace period: refresh urgently


@dataclass(frozen=True)
class Freshness:
    """Where a directory stands at ``now``; :attr:`message` is meant for operators' logs."""

    state: FreshnessState
    version: int
    expires_at: datetime
    grace_ends: datetime
    remaining: timedelta  # until expires_at; negative once expired

    @property
    def message(self) -> str:
        expiry = format_time(self.expires_at)
        if self.state is FreshnessState.GRACE:
            return (
                f"directory v{self.version} EXPIRED at {expiry}; working on the last valid copy "
                f"until {format_time(self.grace_ends)} — refresh the directory now"
            )
        days = self.remaining.days
        if self.state is FreshnessState.WARNING:
            return f"directory v{self.version} expires in {days} day(s), at {expiry}; refresh it"
        return f"directory v{self.version} valid until {expiry}"


def check_freshness(
    directory: Directory,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    warn_before: timedelta = DEFAULT_WARN_BEFORE,
) -> Freshness:
    """Classify ``directory`` at ``now``; raise once it is expired beyond ``grace``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if grace < timedelta(0) or warn_before < timedelta(0):
        raise ValueError("grace and warn_before must not be negative")
    grace_ends = directory.expires_at + grace
    remaining = directory.expires_at - now
    if now >= grace_ends:
        raise DirectoryExpiredError(
            f"directory v{directory.version} expired at {format_time(directory.expires_at)} "
            f"and its grace period ended at {format_time(grace_ends)}",
            hint="install a newer directory with 'enlace directory publish'",
        )
    if now >= directory.expires_at:
        state = FreshnessState.GRACE
    elif remaining <= warn_before:
        state = FreshnessState.WARNING
    else:
        state = FreshnessState.VALID
    return Freshness(state, directory.version, directory.expires_at, grace_ends, remaining)


def read_directory(path: Path) -> Directory:
    """Parse a directory file; unreadable files are format errors naming the path."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DirectoryFormatError(
            f"cannot read {path}: {exc.strerror or exc}", field="directory"
        ) from None
    return parse_directory_json(raw)


def load_trusted(
    home: Path,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    warn_before: timedelta = DEFAULT_WARN_BEFORE,
) -> tuple[Directory, Freshness]:
    """The node's installed directory and its freshness; raises if unusable at ``now``."""
    directory = read_directory(home / DIRECTORY_FILE)
    count = count_signatures(directory, directory.directory_keys, directory.threshold)
    if not count.met:
        raise DirectorySignatureError(
            f"{home / DIRECTORY_FILE} carries {len(count.valid)} valid signature(s) of "
            f"{directory.threshold} required; the file was altered",
            hint="re-install the directory from the Secretariat",
        )
    return directory, check_freshness(directory, now, grace, warn_before)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def install_directory(
    home: Path, candidate: Directory, now: datetime, *, expected_hash: str = ""
) -> tuple[Directory, bool]:
    """Verify ``candidate`` against ``HOME/directory.json`` and install it.

    Returns the directory now trusted and whether the file changed (re-installing the
    trusted version is a no-op). Without an installed copy, the candidate must verify as a
    root; ``expected_hash`` pins it.
    """
    target = home / DIRECTORY_FILE
    if target.exists():
        trusted = read_directory(target)
        if expected_hash:
            verify_root(candidate, now, expected_hash=expected_hash)
        accepted = verify_update(trusted, candidate, now)
        if accepted is trusted:
            return trusted, False
    else:
        accepted = verify_root(candidate, now, expected_hash=expected_hash)
    write_atomic(target, accepted.to_json().encode())
    return accepted, True
