"""``enlace directory``: how directory key holders build, sign, check and publish the directory.

Why a command group: the directory is changed by people (the Secretariat and the countries
holding directory keys), on different machines, passing one JSON file around. Each step is a
command that does one thing and says what happens next (e.g. adding a member clears the
signatures, because they covered the old body).

Invariants: private key files are written once, mode 0600, never overwritten, and refused
when readable by others; every file write is atomic; ``publish`` installs nothing that does
not verify (as a root on an empty home, as an update otherwise).
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from crypto.errors import CryptoError
from crypto.signing import SigningKey, key_id
from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    err_console,
    id_column,
    member_country,
    print_json,
    text_column,
)
from node.cli.files import read_text_file
from node.errors import ConfigError, InvalidArgumentError
from node.trust.authoring import add_member, new_directory, remove_member, sign_directory
from node.trust.directory import (
    FEDERATION,
    Directory,
    DirectoryKey,
    count_signatures,
    verify_root,
    verify_update,
)
from node.trust.freshness import (
    DIRECTORY_FILE,
    check_freshness,
    install_directory,
    read_directory,
    write_atomic,
)
from node.trust.member import MemberDescriptor, format_time, strict_json_loads

app = typer.Typer(
    help="Create, sign, verify, inspect and publish the federation directory.",
    no_args_is_help=True,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")

DirArg = Annotated[Path, typer.Argument(help="Directory JSON file.", show_default=False)]
ExpectHash = Annotated[
    str, typer.Option("--expect-hash", help="Pinned SHA-256 of the directory body (root only).")
]


def _say(message: str) -> None:
    """One message per line: never re-wrapped, so hashes and paths stay copyable."""
    console.print(message, soft_wrap=True, highlight=False, markup=False)


def _warn(message: str) -> None:
    err_console.print(message, style="yellow", soft_wrap=True, highlight=False, markup=False)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --- key files ---------------------------------------------------------------------------


def write_key_file(path: Path, key: SigningKey) -> None:
    """Write the 32-byte seed as hex, mode 0600; refuse to replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists", hint="directory keys are never overwritten; pick a new path"
        ) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(key.seed.hex() + "\n")


def read_key_file(path: Path) -> SigningKey:
    """Load a directory key, refusing files that others could read."""
    try:
        mode = path.stat().st_mode
        raw = read_text_file(path).strip()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"key file {path} is accessible by other users", hint=f"run: chmod 600 {path}"
        )
    if not _HEX64.fullmatch(raw):
        raise ConfigError(f"{path} is not a directory key file (64 hex digits expected)")
    return SigningKey(bytes.fromhex(raw))


def _public_key_spec(spec: str) -> DirectoryKey:
    """``--key-pub``: a ``.pub`` file written by ``keygen``, a file with bare hex, or hex."""
    path, given = Path(spec), spec
    if path.is_file():
        raw = read_text_file(path).strip()
        if raw.startswith("{"):
            return DirectoryKey.from_dict(strict_json_loads(raw, str(path)), str(path))
        if _HEX64.fullmatch(raw) and not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidArgumentError(
                f"{path} looks like a private key file (mode 0600)",
                field="--key-pub",
                hint="pass the .pub file written by 'keygen', or the public key in hex",
            )
        spec = raw
    if not _HEX64.fullmatch(spec):
        raise InvalidArgumentError(
            f"{given!r} is neither a public key file nor 64 hex digits", field="--key-pub"
        )
    try:
        public = bytes.fromhex(spec)
        return DirectoryKey.from_public_key(public, holder=f"key {key_id(public)}")
    except CryptoError as exc:
        raise InvalidArgumentError(str(exc), field="--key-pub") from None


def _save(path: Path, directory: Directory) -> None:
    write_atomic(path, directory.to_json().encode())


def _signature_summary(directory: Directory) -> dict[str, Any]:
    count = count_signatures(directory, directory.directory_keys, directory.threshold)
    return {
        "threshold": directory.threshold,
        "valid": list(count.valid),
        "invalid": list(count.invalid),
        "unlisted": list(count.unknown),
    }


# --- commands ----------------------------------------------------------------------------


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Private key file to create (mode 0600).")],
    holder: Annotated[str, typer.Option("--holder", help="Who holds the key.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Generate a directory key; writes FILE (private) and FILE.pub (public entry)."""
    with cli_errors(as_json):
        pub_path = out.with_name(out.name + ".pub")
        if pub_path.exists():
            raise ConfigError(f"{pub_path} already exists", hint="pick a new --out path")
        key = SigningKey.generate()
        write_key_file(out, key)
        entry = DirectoryKey.from_public_key(key.public_key, holder or f"key {key.key_id}")
        pub_path.write_text(json.dumps(entry.to_dict(), indent=2, sort_keys=True) + "\n")
        if as_json:
            print_json({**entry.to_dict(), "key_file": str(out), "public_file": str(pub_path)})
        else:
            _say(f"directory key {key.key_id} written to {out} (mode 0600)")
            _say(f"public entry written to {pub_path}; share that file, never {out}")


@app.command()
def new(
    *,
    out: Annotated[Path, typer.Option("--out", help="Directory file to create.")],
    key_pub: Annotated[
        list[str] | None,
        typer.Option("--key-pub", help="Directory key: .pub file or hex (repeat)."),
    ] = None,
    threshold: Annotated[int | None, typer.Option("--threshold", min=1)] = None,
    expires_in_days: Annotated[int, typer.Option("--expires-in-days", min=1)] = 90,
    version: Annotated[int | None, typer.Option("--version", min=1)] = None,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="Carry members and keys over from here.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create an unsigned directory (a first one, or the next version of --previous)."""
    with cli_errors(as_json):
        if out.exists() and not force:
            raise ConfigError(f"{out} already exists", hint="use --force to overwrite it")
        prev = read_directory(previous) if previous else None
        keys = [_public_key_spec(s) for s in key_pub or []]
        if not keys and prev is None:
            raise InvalidArgumentError("at least one directory key is needed", field="--key-pub")
        if threshold is None:
            if prev is None:
                raise InvalidArgumentError("required for a first directory", field="--threshold")
            threshold = prev.threshold
        if version is None:
            version = prev.version + 1 if prev else 1
        if prev is not None and version <= prev.version:
            raise InvalidArgumentError(
                f"must be greater than the previous v{prev.version}", field="--version"
            )
        issued = _now()
        directory = new_directory(
            version=version,
            issued_at=issued,
            expires_at=issued + timedelta(days=expires_in_days),
            threshold=threshold,
            directory_keys=keys or (prev.directory_keys if prev else ()),
            members=prev.members if prev else (),
            federation=prev.federation if prev else FEDERATION,
        )
        _save(out, directory)
        if as_json:
            print_json({"file": str(out), "version": directory.version, "hash": directory.hash})
        else:
            _say(
                f"directory v{directory.version} written to {out}: "
                f"{len(directory.members)} member(s), {len(directory.directory_keys)} key(s), "
                f"threshold {directory.threshold}, expires {format_time(directory.expires_at)}"
            )
            _say("next: add members, then collect signatures with 'sign'")


def _announce_unsigned(before: Directory, after: Directory, what: str, as_json: bool) -> None:
    cleared = len(before.signatures)
    if as_json:
        print_json({"changed": what, "version": after.version, "signatures_cleared": cleared})
        return
    _say(f"{what} in directory v{after.version}")
    if cleared:
        _say(
            f"{cleared} signature(s) cleared: they covered the previous body; "
            "collect them again with 'enlace directory sign'"
        )


@app.command("add-member")
def add_member_cmd(
    directory_file: DirArg,
    member: Annotated[Path, typer.Option("--member", help="A member.json descriptor.")],
    as_json: JsonOption = False,
) -> None:
    """Add a member descriptor (or replace the one of the same country)."""
    with cli_errors(as_json):
        before = read_directory(directory_file)
        try:
            descriptor = MemberDescriptor.from_json(member.read_bytes())
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read {member}: {exc.strerror}") from None
        if "member" in descriptor.roles:
            member_country(descriptor.country, "country", secretariat=False)
        replaced = any(m.country == descriptor.country for m in before.members)
        after = add_member(before, descriptor)
        _save(directory_file, after)
        verb = "replaced" if replaced else "added"
        _announce_unsigned(
            before, after, f"{verb} {descriptor.country} ({descriptor.name})", as_json
        )


@app.command("remove-member")
def remove_member_cmd(
    directory_file: DirArg,
    country: Annotated[str, typer.Option("--country", help="ISO 3166 alpha-3 code.")],
    as_json: JsonOption = False,
) -> None:
    """Remove a member (e.g. to revoke its keys and certificate)."""
    with cli_errors(as_json):
        before = read_directory(directory_file)
        after = remove_member(before, country)
        _save(directory_file, after)
        _announce_unsigned(before, after, f"removed {country}", as_json)


@app.command()
def sign(
    directory_file: DirArg,
    key: Annotated[Path, typer.Option("--key", help="Directory key file (from keygen).")],
    as_json: JsonOption = False,
) -> None:
    """Add this key's signature over the directory body."""
    with cli_errors(as_json):
        signing_key = read_key_file(key)
        signed = sign_directory(read_directory(directory_file), signing_key)
        _save(directory_file, signed)
        summary = _signature_summary(signed)
        listed = any(k.key_id == signing_key.key_id for k in signed.directory_keys)
        if as_json:
            print_json({"key_id": signing_key.key_id, "listed": listed, **summary})
            return
        _say(
            f"signed v{signed.version} with key {signing_key.key_id}: "
            f"{len(summary['valid'])} of {signed.threshold} required signature(s)"
        )
        if not listed:
            _warn(
                f"note: key {signing_key.key_id} is not listed in v{signed.version}; its "
                "signature counts only towards the previous version's threshold"
            )


@app.command()
def verify(
    directory_file: DirArg,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="Verify as an update of this version.")
    ] = None,
    expect_hash: ExpectHash = "",
    as_json: JsonOption = False,
) -> None:
    """Verify signatures, threshold, version and expiry; exit 1 with the reason if invalid."""
    with cli_errors(as_json):
        candidate = read_directory(directory_file)
        now = _now()
        if previous is not None:
            trusted = read_directory(previous)
            if expect_hash:
                verify_root(candidate, now, expected_hash=expect_hash)
            verify_update(trusted, candidate, now)
        else:
            verify_root(candidate, now, expected_hash=expect_hash)
        fresh = check_freshness(candidate, now)
        report: dict[str, Any] = {
            "valid": True,
            "version": candidate.version,
            "hash": candidate.hash,
            "issued_at": format_time(candidate.issued_at),
            "expires_at": format_time(candidate.expires_at),
            "freshness": fresh.state.value,
            "members": [m.country for m in candidate.members],
            "signatures": _signature_summary(candidate),
        }
        if previous is not None:
            old = count_signatures(candidate, trusted.directory_keys, trusted.threshold)
            report["previous"] = {
                "version": trusted.version,
                "threshold": trusted.threshold,
                "valid": list(old.valid),
            }
        if as_json:
            print_json(report)
            return
        sigs = report["signatures"]
        _say(f"directory v{candidate.version} OK")
        _say(f"  hash {candidate.hash}")
        _say(f"  {fresh.message}")
        _say(f"  members: {', '.join(report['members']) or '(none)'}")
        _say(f"  signatures: {len(sigs['valid'])} valid / threshold {sigs['threshold']}")
        if previous is not None:
            p = report["previous"]
            _say(
                f"  signatures by v{p['version']} keys: {len(p['valid'])} valid / "
                f"threshold {p['threshold']}"
            )


def _member_row(m: MemberDescriptor) -> dict[str, Any]:
    return {
        "country": m.country,
        "name": m.name,
        "roles": list(m.roles),
        "endpoint": m.endpoint,
        "signing_keys": [
            {
                "key_id": k.key_id,
                "not_before": format_time(k.not_before),
                "not_after": format_time(k.not_after),
            }
            for k in m.signing_keys
        ],
        "tls_fingerprint": m.tls_fingerprint,
        "focal_points": [f.to_dict() for f in m.focal_points],
    }


@app.command()
def show(directory_file: DirArg, as_json: JsonOption = False) -> None:
    """List the members of a directory (no verification; use 'verify' for that)."""
    with cli_errors(as_json):
        d = read_directory(directory_file)
        summary = _signature_summary(d)
        if as_json:
            print_json(
                {
                    "federation": d.federation,
                    "version": d.version,
                    "hash": d.hash,
                    "issued_at": format_time(d.issued_at),
                    "expires_at": format_time(d.expires_at),
                    "directory_keys": [k.to_dict() for k in d.directory_keys],
                    "signatures": summary,
                    "members": [_member_row(m) for m in d.members],
                }
            )
            return
        table = FittedTable(title=Text(f"{d.federation} directory v{d.version}"))
        for column in ("country", "name", "roles", "endpoint"):
            text_column(table, column)
        id_column(table, "key ids")
        for m in d.members:
            cells = (
                m.country,
                m.name,
                ", ".join(m.roles),
                m.endpoint,
                "\n".join(k.key_id for k in m.signing_keys),
            )
            table.add_row(*(Text(c) for c in cells))  # data, never markup
        console.print(table)
        # Whole, one per line, never wrapped: operators read them out over the phone. A table
        # column of 71 characters would squeeze every other column at 80 columns.
        if d.members:
            _say("TLS fingerprints:")
        for m in d.members:
            _say(f"  {m.country}  {m.tls_fingerprint}")
        _say(
            f"expires {format_time(d.expires_at)}; signatures "
            f"{len(summary['valid'])} valid / threshold {d.threshold}; hash {d.hash}"
        )


@app.command()
def publish(
    directory_file: DirArg,
    home: HomeOption,
    expect_hash: ExpectHash = "",
    as_json: JsonOption = False,
) -> None:
    """Verify and install as HOME/directory.json (an update of the copy there, if any)."""
    with cli_errors(as_json):
        candidate = read_directory(directory_file)
        had_copy = (home / DIRECTORY_FILE).exists()
        trusted, changed = install_directory(home, candidate, _now(), expected_hash=expect_hash)
        if as_json:
            print_json(
                {
                    "version": trusted.version,
                    "hash": trusted.hash,
                    "installed": changed,
                    "path": str(home / DIRECTORY_FILE),
                }
            )
        elif not changed:
            _say(f"directory v{trusted.version} is already installed; nothing to do")
        else:
            how = "as an update" if had_copy else "as the root of trust (pin its hash)"
            _say(f"installed directory v{trusted.version} in {home} {how}")
            _say(f"  hash {trusted.hash}")
