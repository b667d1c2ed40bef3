"""Stand up a local federation: node homes, directory keys, a signed directory, installed.

Used by ``enlace demo`` and by the integration tests, so both exercise exactly the steps an
operator performs with the CLI (``init``, ``directory new/add-member/sign/publish``).
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crypto.keys import write_private
from crypto.signing import SigningKey
from node.home import NodeHome, init_home
from node.trust.authoring import add_member, new_directory, sign_directory
from node.trust.directory import Directory, DirectoryKey
from node.trust.freshness import install_directory

NAMES = {
    "BLZ": "Immigration and Nationality Department, Belize",
    "CAN": "Immigration, Refugees and Citizenship Canada",
    "CRI": "Dirección General de Migración y Extranjería, Costa Rica",
    "SLV": "Dirección General de Migración y Extranjería, El Salvador",
    "GTM": "Instituto Guatemalteco de Migración",
    "HND": "Instituto Nacional de Migración, Honduras",
    "MEX": "Instituto Nacional de Migración, México",
    "NIC": "Dirección General de Migración y Extranjería, Nicaragua",
    "PAN": "Servicio Nacional de Migración, Panamá",
    "DOM": "Dirección General de Migración, República Dominicana",
    "USA": "Department of Homeland Security, United States",
    "CRM": "Secretaría Técnica de la Conferencia Regional sobre Migración",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalFederation:
    root: Path
    homes: dict[str, NodeHome]
    directory: Directory
    directory_keys: tuple[SigningKey, ...]

    def endpoint(self, country: str) -> str:
        return self.directory.member(country).endpoint


def create_federation(
    root: Path,
    countries: Sequence[str],
    now: dt.datetime,
    *,
    secretariat: str = "CRM",
    helper: str = "",
    threshold: int = 2,
    valid_days: int = 90,
    host: str = "127.0.0.1",
    database_urls: dict[str, str] | None = None,
) -> LocalFederation:
    """Create one home per country (plus the ST) and install a threshold-signed directory."""
    root.mkdir(parents=True, exist_ok=True)
    homes: dict[str, NodeHome] = {}
    everyone = [*countries, *([secretariat] if secretariat else []), *([helper] if helper else [])]
    for country in everyone:
        roles: tuple[str, ...] = ("member",)
        if country == secretariat:
            roles = ("secretariat",)
        elif country == helper:
            roles = ("helper",)
        homes[country] = init_home(
            root / country.lower(),
            country=country,
            name=NAMES.get(country, country),
            endpoint=f"{host}:{free_port(host)}",
            roles=roles,
            now=now,
            database_url=(database_urls or {}).get(country, ""),
        )
    keys = tuple(SigningKey.generate() for _ in range(max(threshold, 3)))
    for index, key in enumerate(keys):
        write_private(root / "directory-keys" / f"key{index + 1}.key", key.seed.hex().encode())
    directory = new_directory(
        version=1,
        issued_at=now,
        expires_at=now + dt.timedelta(days=valid_days),
        threshold=threshold,
        directory_keys=[
            DirectoryKey.from_public_key(k.public_key, f"directory key {i + 1}")
            for i, k in enumerate(keys)
        ],
    )
    for home in homes.values():
        directory = add_member(directory, home.member())
    for key in keys[:threshold]:
        directory = sign_directory(directory, key)
    (root / "directory.json").write_text(directory.to_json(), encoding="utf-8")
    for home in homes.values():
        install_directory(home.root, directory, now)
    return LocalFederation(root, homes, directory, keys)
