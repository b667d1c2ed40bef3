"""The node's equivalence table (cuadro de equivalencias)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.errors import ConfigError
from node.records.codelists import CODELISTS_VERSION, UnknownCodeError
from node.records.equivalence import (
    EquivalenceError,
    EquivalenceTable,
    load_equivalence,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "equivalence-pan.yaml"


def _minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "node": "CRI",
        "version": "1",
        "mappings": {"sex": {"1": "M", "2": "F"}, "event_type": {"APREH": "encounter"}},
        "border_posts": {"PC": {"name": "Paso Canoas", "kind": "land", "regional_code": "CRI-PCA"}},
    }
    data.update(overrides)
    return data


def test_the_example_table_loads_and_translates() -> None:
    table = load_equivalence(EXAMPLE)
    assert table.node == "PAN"
    assert table.translate("event_type", "APREHENDIDO") == "encounter"
    assert table.translate("event_type", "PRESENTADO") == "encounter"
    assert table.translate("sex", "2") == "F"
    assert table.translate("sex", 2) == "F"
    assert table.translate("nationality", "DESCONOCIDA") == "XXX"
    assert table.translate("nationality", "HTI") == "HTI"  # passthrough
    assert table.translate_border_post("ERM-LB") == "PAN-LAJ"
    assert table.border_post("PTY").kind == "air"


def test_yaml_numbers_become_text_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("node: CRI\nversion: '1'\nmappings:\n  sex:\n    1: M\n    2: F\n")
    table = load_equivalence(path)
    assert table.translate("sex", "1") == "M"


def test_unmapped_codes_raise_with_suggestions() -> None:
    table = EquivalenceTable.from_mapping(_minimal())
    with pytest.raises(UnknownCodeError) as caught:
        table.translate("event_type", "APREHN")
    assert "APREH" in caught.value.suggestions
    with pytest.raises(UnknownCodeError):
        table.translate("care", "ALBERGUE")  # list not mapped at all
    with pytest.raises(UnknownCodeError):
        table.translate("nationality", "HTI")  # no passthrough here
    with pytest.raises(UnknownCodeError):
        table.translate("sexo", "1")  # not a list
    with pytest.raises(UnknownCodeError) as post:
        table.border_post("PCX")
    assert "PC" in post.value.suggestions


def test_passthrough_still_validates() -> None:
    table = EquivalenceTable.from_mapping(_minimal(passthrough=["nationality"]))
    assert table.translate("nationality", "NPL") == "NPL"
    with pytest.raises(UnknownCodeError) as caught:
        table.translate("nationality", "NEP")
    assert caught.value.list_name == "nationality"


def test_public_dict_is_stable_json_and_reads_back() -> None:
    table = load_equivalence(EXAMPLE)
    public = table.to_public_dict()
    encoded = json.dumps(public, sort_keys=False, ensure_ascii=False)
    assert encoded == json.dumps(load_equivalence(EXAMPLE).to_public_dict(), ensure_ascii=False)
    assert list(public) == sorted(public)
    assert public["codelists_version"] == CODELISTS_VERSION
    assert public["format"] == "crm-enlace/equivalence-table"
    assert list(public["mappings"]["sex"]) == sorted(public["mappings"]["sex"])
    assert EquivalenceTable.from_mapping(json.loads(encoded)) == table


def _post(**fields: Any) -> dict[str, Any]:
    post = {"name": "X", "kind": "land", "regional_code": "CRI-AAA", **fields}
    return _minimal(border_posts={"X": {k: v for k, v in post.items() if v is not None}})


def _key_of_error(data: dict[str, Any]) -> EquivalenceError:
    with pytest.raises(EquivalenceError) as caught:
        EquivalenceTable.from_mapping(data)
    assert isinstance(caught.value, ConfigError)
    return caught.value


def test_bad_regional_code_names_the_yaml_key_and_suggests() -> None:
    error = _key_of_error(_minimal(mappings={"event_type": {"APREH": "encounterr"}}))
    assert error.key == "mappings.event_type.APREH"
    assert "'encounter'" in str(error)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (_minimal(mappings={"evnt_type": {"A": "encounter"}}), "mappings.evnt_type"),
        (_minimal(mappings={"sex": {True: "M"}}), "mappings.sex.True"),
        (_minimal(mappings={"sex": {1.5: "M"}}), "mappings.sex.1.5"),
        (_minimal(mappings={"sex": ["M"]}), "mappings.sex"),
        (_minimal(mappings={"sex": {1: "M", "1": "F"}}), "mappings.sex.1"),
        (_minimal(node="ESP"), "node"),
        (_minimal(version=2026.1), "version"),
        (_minimal(extra=1), "extra"),
        (_minimal(passthrough=["nacionalidad"]), "passthrough[0]"),
        (_post(kind="river"), "border_posts.X.kind"),
        (_post(regional_code="PAN-XXX"), "border_posts.X.regional_code"),
        (_post(regional_code="CRI-X"), "border_posts.X.regional_code"),
        (_post(name=None), "border_posts.X.name"),
        (_post(km=3), "border_posts.X.km"),
        (
            _minimal(
                border_posts={
                    "X": {"name": "X", "kind": "land", "regional_code": "CRI-AAA"},
                    "Y": {"name": "Y", "kind": "sea", "regional_code": "CRI-AAA"},
                }
            ),
            "border_posts.Y.regional_code",
        ),
    ],
)
def test_invalid_tables_name_the_key(data: dict[str, Any], key: str) -> None:
    assert _key_of_error(data).key == key


def test_boolean_keys_get_a_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("node: CRI\nversion: '1'\nmappings:\n  nationality_basis:\n    true: unknown\n")
    with pytest.raises(EquivalenceError) as caught:
        load_equivalence(path)
    assert "quote" in caught.value.hint


def test_yaml_1_1_words_stay_text(tmp_path: Path) -> None:
    """Read strictly, NO, yes, on and dates are the local codes they look like."""
    path = tmp_path / "t.yaml"
    path.write_text(
        "node: CRI\nversion: 2026-01-01\nmappings:\n  nationality_basis:\n"
        "    NO: unknown\n    yes: declared\n    on: documented\n"
    )
    table = load_equivalence(path)
    assert table.version == "2026-01-01"
    assert dict(table.mappings["nationality_basis"]) == {
        "NO": "unknown",
        "on": "documented",
        "yes": "declared",
    }


DUPLICATES = """node: PAN
version: "2026-1"
mappings:
  event_type:
    APREHENDIDO: detention
    DEPORTADO: deportation
    APREHENDIDO: encounter
"""


@pytest.mark.parametrize(
    "text, line, key",
    [
        (DUPLICATES, 7, "mappings.event_type.APREHENDIDO"),
        ("node: PAN\nversion: '1'\nnode: CRI\n", 3, "node"),
        (
            "node: PAN\nversion: '1'\nborder_posts:\n  LB:\n    name: Lajas Blancas\n"
            "    kind: land\n    kind: air\n    regional_code: PAN-LAJ\n",
            7,
            "border_posts.LB.kind",
        ),
    ],
)
def test_a_key_written_twice_is_refused_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    path = tmp_path / "equivalence.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EquivalenceError) as caught:
        load_equivalence(path)
    assert str(caught.value).startswith(f"{path}:{line}:{key}: duplicate key")
    assert "write each key once" in caught.value.hint


@pytest.mark.parametrize("written, read", [("01", 1), ("0x1F", 31), ("1_000", 1000), ("+2", 2)])
def test_a_code_yaml_would_turn_into_another_number_is_refused(
    tmp_path: Path, written: str, read: int
) -> None:
    path = tmp_path / "equivalence.yaml"
    path.write_text(f"node: PAN\nversion: '1'\nmappings:\n  sex:\n    {written}: F\n")
    with pytest.raises(EquivalenceError) as caught:
        load_equivalence(path)
    message = f"{path}:5:mappings.sex.{written}: {written} would be read as the number {read}"
    assert str(caught.value).startswith(message)
    assert "quote the local code" in caught.value.hint
    path.write_text(f"node: PAN\nversion: '1'\nmappings:\n  sex:\n    '{written}': F\n    08: M\n")
    table = load_equivalence(path)
    assert (table.translate("sex", written), table.translate("sex", "08")) == ("F", "M")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(EquivalenceError, match="cannot be read"):
        load_equivalence(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("node: [unclosed\n")
    with pytest.raises(EquivalenceError, match="not valid YAML"):
        load_equivalence(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text(yaml.safe_dump(["a", "b"]))
    with pytest.raises(EquivalenceError, match="mapping"):
        load_equivalence(scalar)
