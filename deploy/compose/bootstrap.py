"""Bootstrap of the compose federation: node homes for three countries and the ST, one directory.

Why a one-shot job: a federation cannot start from nothing on its own. Each node needs a home
(`enlace init`), and every node needs the same signed directory listing all of them before
`enlace serve` accepts a single connection. In a real federation these steps happen on
different machines, by different people (see docs/operator-guide.md §2–§4); in the compose
file they happen here, once, in one container that holds the throwaway directory keys. The
federation it builds is for staging and training, never for real records.

It drives the `enlace` commands themselves (in this process, so the packages are imported
once), so it exercises exactly what operators run.

Layout under ROOT (a volume; each node mounts only its own sub-path)::

    ROOT/pan/ ROOT/cri/ ROOT/hnd/    member homes, endpoint <iso3 lower case>:PORT
    ROOT/crm/                        the Secretariat (roles secretariat)
    ROOT/directory-keys/             three directory keys, 2-of-3 threshold
    ROOT/directory-v1.json           the signed directory installed in every home

Invariants: re-running it changes nothing (a finished home or directory is left as it is);
a home half made by an interrupted run (keys without node.toml) stops it with the path, never
with a silent re-initialisation; it exits non-zero on the first failing command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SECRETARIAT = "CRM"
THRESHOLD = 2
DIRECTORY_FILE = "directory-v1.json"
KEYS_DIR = "directory-keys"


class BootstrapError(Exception):
    """A step failed; the message names the command or the path to look at."""


def enlace(*args: str) -> None:
    """Run one `enlace` command in this process; raise when it exits non-zero."""
    import typer

    from node.cli.main import app

    command = typer.main.get_command(app)
    code = command.main(args=list(args), prog_name="enlace", standalone_mode=False)
    if code not in (None, 0):
        raise BootstrapError(f"`enlace {' '.join(args)}` exited with code {code}")


def parse_countries(value: str) -> list[str]:
    """Member countries, upper case, unique, in order; the Secretariat is added separately."""
    countries: list[str] = []
    for raw in value.split(","):
        code = raw.strip().upper()
        if not code:
            continue
        if len(code) != 3 or not code.isalpha():
            raise BootstrapError(f"{raw.strip()!r} is not an ISO 3166 alpha-3 code")
        if code == SECRETARIAT:
            raise BootstrapError("CRM is the Secretariat and is always added; list members only")
        if code not in countries:
            countries.append(code)
    if len(countries) < 2:
        raise BootstrapError("a federation needs at least two member countries")
    return countries


def init_node(root: Path, country: str, port: int) -> Path:
    """Create ROOT/<iso3> with `enlace init` unless it is already complete."""
    home = root / country.lower()
    if (home / "node.toml").exists():
        print(f"{country}: home {home} exists; kept", flush=True)
        return home
    if (home / "keys").exists():
        raise BootstrapError(
            f"{home} holds keys but no node.toml: an earlier run was interrupted; "
            "inspect it, then remove it to start this node again"
        )
    roles = "secretariat" if country == SECRETARIAT else "member"
    name = (
        "Secretaría Técnica de la CRM"
        if country == SECRETARIAT
        else f"Migration authority of {country} (staging)"
    )
    enlace(
        "init",
        "--home",
        str(home),
        "--country",
        country,
        "--name",
        name,
        "--endpoint",
        f"{country.lower()}:{port}",
        "--roles",
        roles,
    )
    return home


def directory_keys(root: Path, holders: Sequence[str]) -> list[Path]:
    """One directory key per holder under ROOT/directory-keys (created once)."""
    keys_dir = root / KEYS_DIR
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    paths = []
    for holder in holders:
        path = keys_dir / f"{holder.lower()}.key"
        if not path.exists():
            enlace("directory", "keygen", "--out", str(path), "--holder", f"{holder} (staging)")
        paths.append(path)
    return paths


def build_directory(root: Path, homes: Sequence[Path], keys: Sequence[Path], days: int) -> Path:
    """Write ROOT/directory-v1.json with every member, signed by THRESHOLD of the keys."""
    final = root / DIRECTORY_FILE
    if final.exists():
        enlace("directory", "verify", str(final))
        return final
    draft = root / f".{DIRECTORY_FILE}.draft"
    pubs = [arg for key in keys for arg in ("--key-pub", f"{key}.pub")]
    enlace(
        "directory",
        "new",
        "--out",
        str(draft),
        "--threshold",
        str(THRESHOLD),
        "--expires-in-days",
        str(days),
        "--version",
        "1",
        "--force",
        *pubs,
    )
    for home in homes:
        enlace("directory", "add-member", str(draft), "--member", str(home / "member.json"))
    for key in keys[:THRESHOLD]:
        enlace("directory", "sign", str(draft), "--key", str(key))
    enlace("directory", "verify", str(draft))
    os.replace(draft, final)
    return final


def publish(directory: Path, homes: Sequence[Path]) -> None:
    """Install the directory in every home, pinned to the hash of the file just verified."""
    from node.trust.freshness import read_directory

    pinned = read_directory(directory).hash
    for home in homes:
        if (home / "directory.json").exists():
            continue
        enlace("directory", "publish", str(directory), "--home", str(home), "--expect-hash", pinned)


def bootstrap(root: Path, countries: Sequence[str], port: int, days: int) -> list[Path]:
    """Every step, each skipped when already done; returns the homes."""
    root.mkdir(parents=True, exist_ok=True)
    homes = [init_node(root, country, port) for country in [*countries, SECRETARIAT]]
    keys = directory_keys(root, [SECRETARIAT, *countries[:2]])
    directory = build_directory(root, homes, keys, days)
    publish(directory, homes)
    return homes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("BOOTSTRAP_ROOT", ".")))
    parser.add_argument("--countries", default=os.environ.get("ENLACE_FEDERATION", "PAN,CRI,HND"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ENLACE_PORT", "7001")))
    parser.add_argument(
        "--expires-in-days",
        type=int,
        default=int(os.environ.get("ENLACE_DIRECTORY_DAYS", "90")),
    )
    args = parser.parse_args(argv)
    try:
        countries = parse_countries(args.countries)
        homes = bootstrap(args.root, countries, args.port, args.expires_in_days)
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(home.name.upper() for home in homes)
    print(f"bootstrap: federation ready under {args.root}: {names}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
