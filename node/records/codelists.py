"""The regional code lists every node maps its local codes onto.

Why: statistics from eleven national systems can only be added up when every cell is labelled
with the same codes. The lists live in the package (``codelists_data/*.json``, Spanish and
English labels), are versioned as a bundle (:data:`CODELISTS_VERSION`), and are published with
every answer that uses them, so a receiver can tell which edition a sender counted with.

Invariants:
* A :class:`CodeList` is immutable; its ``codes`` mapping keeps the order of the data file.
* :meth:`CodeList.validate` returns the code unchanged or raises :class:`UnknownCodeError`
  (never a bool, never a silent fix), naming the list and suggesting close codes.
* The data files are read only from the installed package; nothing here touches the network or
  the node's database. A malformed data file is a packaging fault and raises
  :class:`~node.errors.ConfigError` at first use.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

from node.errors import ConfigError, InvalidArgumentError

CODELISTS_VERSION = "2026.1"

CODELIST_NAMES: tuple[str, ...] = (
    "event_type",
    "nationality",
    "nationality_basis",
    "sex",
    "age_group",
    "care",
    "vulnerability",
    "document_type",
    "alert_type",
    "member",
)

#: The eleven members of the Regional Conference on Migration, in the order of the data file.
REGIONAL_MEMBERS: tuple[str, ...] = (
    "BLZ",
    "CAN",
    "CRI",
    "SLV",
    "GTM",
    "HND",
    "MEX",
    "NIC",
    "PAN",
    "DOM",
    "USA",
)

UNKNOWN_AGE_GROUP = "_U"

Language = Literal["es", "en"]

_AGE_RANGE_RE = re.compile(r"^Y(\d+)T(\d+)$", re.ASCII)
_AGE_OPEN_RE = re.compile(r"^Y_GE(\d+)$", re.ASCII)


class UnknownCodeError(InvalidArgumentError, ValueError):
    """A code that is not in the named list; ``suggestions`` holds close valid codes."""

    def __init__(self, list_name: str, code: object, suggestions: Sequence[str] = ()) -> None:
        self.list_name = list_name
        self.code = code
        self.suggestions = tuple(suggestions)
        if self.suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        else:
            hint = f"see docs/code-lists.md for the codes of {list_name!r}"
        super().__init__(f"unknown code {code!r}", field=list_name, hint=hint)


@dataclass(frozen=True)
class CodeEntry:
    """One code with its Spanish and English labels."""

    code: str
    label_es: str
    label_en: str

    def label(self, language: Language = "es") -> str:
        return self.label_es if language == "es" else self.label_en


def _fold(text: str) -> str:
    """Case- and accent-insensitive form used only for suggestions."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def suggest_codes(wanted: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Candidates that differ from ``wanted`` only by case, by order (``PNA`` → ``PAN``) or by
    a close spelling, best first."""
    folded = _fold(wanted)
    pool = {_fold(c): c for c in candidates}
    found = [pool[folded]] if folded in pool else []
    found += [c for f, c in pool.items() if f != folded and sorted(f) == sorted(folded)]
    found += [pool[f] for f in difflib.get_close_matches(folded, list(pool), n=limit, cutoff=0.6)]
    return list(dict.fromkeys(found))[:limit]


@dataclass(frozen=True)
class CodeList:
    """A named, versioned, immutable list of codes."""

    name: str
    version: str
    codes: Mapping[str, CodeEntry] = field(hash=False)
    description_es: str = ""
    description_en: str = ""

    def __post_init__(self) -> None:
        frozen = MappingProxyType(dict(self.codes))
        for key, entry in frozen.items():
            if key != entry.code:
                raise ConfigError(
                    f"code list {self.name!r}: key {key!r} holds entry {entry.code!r}",
                    hint="each key must equal its entry's code",
                )
        object.__setattr__(self, "codes", frozen)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.codes

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def validate(self, code: object) -> str:
        """Return ``code`` if it belongs to this list; otherwise raise :class:`UnknownCodeError`."""
        if isinstance(code, str) and code in self.codes:
            return code
        raise UnknownCodeError(self.name, code, self.suggest(code))

    def entry(self, code: object) -> CodeEntry:
        return self.codes[self.validate(code)]

    def label(self, code: object, language: Language = "es") -> str:
        return self.entry(code).label(language)

    def suggest(self, code: object, limit: int = 3) -> list[str]:
        """Valid codes close to ``code`` by spelling or by label (e.g. 'Panama' -> 'PAN')."""
        if not isinstance(code, str) or not code.strip():
            return []
        found = suggest_codes(code, self.codes, limit)
        wanted = _fold(code)
        labels: dict[str, str] = {}
        for entry in self.codes.values():
            labels.setdefault(_fold(entry.label_es), entry.code)
            labels.setdefault(_fold(entry.label_en), entry.code)
        for match in difflib.get_close_matches(wanted, list(labels), n=limit, cutoff=0.75):
            found.append(labels[match])
        unique = list(dict.fromkeys(found))
        return unique[:limit]


def _data_error(name: str, problem: str) -> ConfigError:
    return ConfigError(
        f"packaged code list {name!r} is malformed: {problem}",
        hint="reinstall crm-enlace; the code list data files are part of the package",
    )


@functools.cache
def _load_document(name: str) -> dict[str, Any]:
    resource = resources.files("node.records") / "codelists_data" / f"{name}.json"
    try:
        document = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _data_error(name, str(exc)) from exc
    if not isinstance(document, dict):
        raise _data_error(name, "top level is not an object")
    return document


@functools.cache
def _load(name: str) -> CodeList:
    document = _load_document(name)
    if document.get("name") != name:
        raise _data_error(name, f"declares name {document.get('name')!r}")
    version = document.get("version")
    raw_codes = document.get("codes")
    if not isinstance(version, str) or not isinstance(raw_codes, list) or not raw_codes:
        raise _data_error(name, "needs a string 'version' and a non-empty 'codes' list")
    codes: dict[str, CodeEntry] = {}
    for position, raw in enumerate(raw_codes):
        if not isinstance(raw, dict):
            raise _data_error(name, f"codes[{position}] is not an object")
        code, label_es, label_en = raw.get("code"), raw.get("es"), raw.get("en")
        if not all(isinstance(v, str) and v for v in (code, label_es, label_en)):
            raise _data_error(name, f"codes[{position}] needs non-empty 'code', 'es' and 'en'")
        assert isinstance(code, str) and isinstance(label_es, str) and isinstance(label_en, str)
        if code in codes:
            raise _data_error(name, f"code {code!r} appears twice")
        codes[code] = CodeEntry(code, label_es, label_en)
    description = document.get("description")
    desc = description if isinstance(description, dict) else {}
    return CodeList(
        name=name,
        version=version,
        codes=codes,
        description_es=str(desc.get("es", "")),
        description_en=str(desc.get("en", "")),
    )


def codelist(name: str) -> CodeList:
    """The regional code list called ``name``; unknown names raise :class:`UnknownCodeError`."""
    if name not in CODELIST_NAMES:
        suggestions = difflib.get_close_matches(name, CODELIST_NAMES, n=3)
        raise UnknownCodeError("codelists", name, suggestions)
    return _load(name)


def all_codelists() -> dict[str, CodeList]:
    """Every regional code list, by name, in :data:`CODELIST_NAMES` order."""
    return {name: _load(name) for name in CODELIST_NAMES}


@functools.cache
def iso_alpha2_to_alpha3() -> Mapping[str, str]:
    """ISO 3166-1 alpha-2 → alpha-3, from the same data file as the nationality list."""
    mapping: dict[str, str] = {}
    for raw in _load_document("nationality")["codes"]:
        alpha2 = raw.get("alpha2")
        if alpha2 is not None:
            if not isinstance(alpha2, str) or len(alpha2) != 2 or alpha2 in mapping:
                raise _data_error("nationality", f"bad or repeated alpha2 {alpha2!r}")
            mapping[alpha2] = str(raw["code"])
    return MappingProxyType(mapping)


@functools.cache
def _age_bounds() -> tuple[tuple[int, int | None, str], ...]:
    bounds: list[tuple[int, int | None, str]] = []
    for code in codelist("age_group"):
        closed, open_ended = _AGE_RANGE_RE.match(code), _AGE_OPEN_RE.match(code)
        if closed:
            bounds.append((int(closed.group(1)), int(closed.group(2)), code))
        elif open_ended:
            bounds.append((int(open_ended.group(1)), None, code))
        elif code != UNKNOWN_AGE_GROUP:
            raise _data_error("age_group", f"code {code!r} is neither YaTb, Y_GEa nor _U")
    return tuple(sorted(bounds))


def age_group_for(age: int | None) -> str:
    """The age-group code for completed years ``age``; ``None`` (unknown) gives ``_U``."""
    if age is None:
        return UNKNOWN_AGE_GROUP
    if isinstance(age, bool) or not isinstance(age, int) or age < 0:
        raise InvalidArgumentError(
            f"age {age!r} is not a non-negative whole number of years",
            field="age",
            hint="pass completed years, or None when the age is unknown",
        )
    for low, high, code in _age_bounds():
        if low <= age and (high is None or age <= high):
            return code
    raise _data_error("age_group", f"no group covers age {age}")


@dataclass(frozen=True)
class IcaoStateCodes:
    """The ICAO Doc 9303 state codes beyond ISO 3166-1 (``codelists_data/icao_state_codes.json``).

    ``special``: codes printed on documents (British nationality classes, UN, EU, regional
    organisations, Kosovo, the specimen state UTO); ``aliases``: ICAO spellings of an ISO code
    (``D`` for Germany); ``legacy``: withdrawn codes with one successor, rewritten to it;
    ``historic``: withdrawn codes without a single successor, kept as printed;
    ``nationality_of``: the regional nationality a special code stands for (GBD → GBR).
    """

    version: str
    special: Mapping[str, CodeEntry] = field(hash=False)
    aliases: Mapping[str, str] = field(hash=False)
    legacy: Mapping[str, str] = field(hash=False)
    historic: Mapping[str, CodeEntry] = field(hash=False)
    nationality_of: Mapping[str, str] = field(hash=False)


def _entries(name: str, raw: object) -> dict[str, CodeEntry]:
    if not isinstance(raw, list):
        raise _data_error(name, "expected a list of code entries")
    entries: dict[str, CodeEntry] = {}
    for item in raw:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("code", "es", "en")
        ):
            raise _data_error(name, f"bad entry {item!r}")
        entries[item["code"]] = CodeEntry(item["code"], item["es"], item["en"])
    return entries


def _string_map(name: str, raw: object) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise _data_error(name, "expected an object of code -> code")
    return dict(raw)


@functools.cache
def icao_state_codes() -> IcaoStateCodes:
    """The packaged ICAO state codes (see :class:`IcaoStateCodes`)."""
    name = "icao_state_codes"
    document = _load_document(name)
    special_raw = document.get("special")
    nationality_of = {
        item["code"]: item["nationality"]
        for item in (special_raw if isinstance(special_raw, list) else [])
        if isinstance(item, dict) and isinstance(item.get("nationality"), str)
    }
    return IcaoStateCodes(
        version=str(document.get("version", "")),
        special=MappingProxyType(_entries(name, special_raw)),
        aliases=MappingProxyType(_string_map(name, document.get("aliases"))),
        legacy=MappingProxyType(_string_map(name, document.get("legacy"))),
        historic=MappingProxyType(_entries(name, document.get("historic"))),
        nationality_of=MappingProxyType(nationality_of),
    )
