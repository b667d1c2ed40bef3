"""Numbers, dates and codes are read from ASCII only, wherever they come from.

Why: Python's ``int()``, ``str.isdigit()`` and a ``\\d`` in a pattern all accept the digits of
other scripts (Arabic-Indic ``٢٠٢٦``, full-width ``２０２６``), so text that no operator typed
as a date, and that no peer's node would write, used to be read as one: the same date in two
spellings, a port number the gRPC target would then fail on, a birth date nobody can search
for. Each reader below takes the ASCII form and refuses the others, naming what it expected.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_config import MINIMAL, write
from test_directory import make_member

from node.config import load_config
from node.errors import ConfigError, EnlaceError, InvalidArgumentError
from node.manifests.model import TravellerError, resolve_birth_date
from node.records.dates import InvalidDateError, parse_partial_date
from node.secretariat.brief_data import parse_month
from node.stats.query import parse_period
from node.trust.directory import DirectoryFormatError
from node.trust.member import MemberDescriptor
from policies.canonical import parse_timestamp
from policies.errors import AgreementFormatError

SCRIPTS = {
    "arabic-indic": str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
    "full-width": str.maketrans("0123456789", "０１２３４５６７８９"),
    "devanagari": str.maketrans("0123456789", "०१२३४५६७८९"),
}
REFERENCE = dt.date(2026, 3, 1)
_FIRST_NUMBER = re.compile(r"[0-9]+")


def _member_endpoint(endpoint: str) -> object:
    data = make_member("GTM").to_dict()
    data["endpoint"] = endpoint
    return MemberDescriptor.from_dict(data)


# (what is read, ASCII text, how it is read, what refuses the other scripts)
READERS: list[tuple[str, str, Callable[[str], object], type[Exception]]] = [
    ("partial date", "1985-04-12", parse_partial_date, InvalidDateError),
    ("statistics period", "2026", parse_period, InvalidArgumentError),
    ("brief month", "2026-10", parse_month, InvalidArgumentError),
    ("agreement timestamp", "2026-01-01T00:00:00Z", parse_timestamp, AgreementFormatError),
    (
        "manifest birth date",
        "850412",
        lambda text: resolve_birth_date(text, REFERENCE),
        TravellerError,
    ),
    ("directory endpoint", "pan.example:7001", _member_endpoint, DirectoryFormatError),
]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize(
    ("what", "ascii_text", "read", "refusal"), READERS, ids=[r[0] for r in READERS]
)
def test_other_scripts_digits_are_refused(
    what: str,
    ascii_text: str,
    read: Callable[[str], object],
    refusal: type[Exception],
    script: str,
) -> None:
    read(ascii_text)  # the ASCII spelling is accepted
    # Only the first number changes script: the rest of the text stays as a reader expects.
    other = _FIRST_NUMBER.sub(lambda m: m[0].translate(SCRIPTS[script]), ascii_text, count=1)
    assert other != ascii_text
    with pytest.raises(refusal):
        read(other)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENLACE_LISTEN", "0.0.0.0:7001".translate(SCRIPTS["arabic-indic"])),
        ("ENLACE_ENDPOINT", "127.0.0.1:٧٠٠١"),
        ("ENLACE_COUNTRY", "ÑÍC"),
    ],
)
def test_node_configuration_reads_ports_and_country_codes_in_ascii(
    tmp_path: Path, variable: str, value: str
) -> None:
    write(tmp_path, MINIMAL)
    environ: dict[str, Any] = {"ENLACE_COUNTRY": "HND", "ENLACE_ENDPOINT": "127.0.0.1:7003"}
    load_config(tmp_path, environ=environ)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, environ={**environ, variable: value})
    assert isinstance(refused.value, EnlaceError)
