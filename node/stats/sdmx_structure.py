"""The SDMX-ML 3.0 structure message the SDMX-CSV exports conform to (``docs/sdmx/dsd.xml``).

Why apart from :mod:`node.stats.export`: the data files are written on every export, the
structure only when the code lists change (its test compares ``docs/sdmx/dsd.xml`` with
:func:`structure_message` byte for byte, so a code list edited without the published file
fails CI). Both read the same dimensions and identifiers from :mod:`node.stats.export`.

Invariants:
* Every code list a dimension of :data:`~node.stats.export.SDMX_DIMENSIONS` names is in the
  message, with the project's codes plus ``_T`` (total) and ``_Z`` (not applicable), named in
  Spanish and English.
* The output depends only on the code lists and ``prepared`` (no clock).
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from node.records.codelists import CODELISTS_VERSION, REGIONAL_MEMBERS, codelist
from node.stats.export import (
    AGENCY,
    CONCEPT_SCHEME_ID,
    DATAFLOW_ID,
    DSD_ID,
    NOT_APPLICABLE,
    REGIONAL_AREA,
    SDMX_ATTRIBUTES,
    SDMX_DIMENSIONS,
    STRUCTURE_RELEASED,
    STRUCTURE_VERSION,
)
from node.stats.matrices import MATRICES, MATRICES_VERSION
from node.stats.query import TOTAL

_NS = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/"
_MES, _STR, _COM = f"{{{_NS}message}}", f"{{{_NS}structure}}", f"{{{_NS}common}}"
_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_URN = "urn:sdmx:org.sdmx.infomodel."

_CONCEPTS: dict[str, tuple[str, str]] = {
    "REF_AREA": ("País o región que publica", "Reporting country or region"),
    "EVENT_TYPE": ("Tipo de evento migratorio", "Migration event type"),
    "NATIONALITY": ("Nacionalidad", "Nationality"),
    "NATIONALITY_BASIS": ("Fundamento de la nacionalidad", "Basis of the nationality"),
    "SEX": ("Sexo", "Sex"),
    "AGE_GROUP": ("Grupo de edad", "Age group"),
    "BORDER_POST": ("Puesto fronterizo (código regional)", "Border post (regional code)"),
    "CARE_PROVIDED": ("Atención brindada", "Care provided"),
    "VULNERABILITY": ("Condición de vulnerabilidad", "Vulnerability"),
    "TIME_PERIOD": ("Periodo", "Time period"),
    "OBS_VALUE": ("Valor", "Observation value"),
    "OBS_STATUS": ("Estado de la observación", "Observation status"),
    "CONF_STATUS": ("Estado de confidencialidad", "Confidentiality status"),
    "UNIT_MEASURE": ("Unidad de medida", "Unit of measure"),
    "TABLE_ID": ("Cuadro CRM", "CRM matrix"),
    "N_CONTRIB": ("Países que contribuyen", "Contributing countries"),
}
_OWN_LISTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "CL_OBS_STATUS": (
        ("A", "Valor normal", "Normal value"),
        ("E", "Valor estimado (perturbado)", "Estimated value (perturbed)"),
        ("Q", "Valor faltante; suprimido", "Missing value; suppressed"),
    ),
    "CL_CONF_STATUS": (
        ("F", "Libre", "Free"),
        ("A", "Confidencialidad primaria", "Primary confidentiality"),
        ("D", "Confidencialidad secundaria", "Secondary confidentiality"),
    ),
    "CL_UNIT_MEASURE": (("PERSONS", "Personas", "Persons"), ("EVENTS", "Eventos", "Events")),
}
_SPECIAL = ((TOTAL, "Total", "Total"), (NOT_APPLICABLE, "No aplica", "Not applicable"))


def _named(parent: ET.Element, tag: str, attrs: dict[str, str], es: str, en: str) -> ET.Element:
    element = ET.SubElement(parent, f"{_STR}{tag}", attrs)
    for lang, text in (("en", en), ("es", es)):
        ET.SubElement(element, f"{_COM}Name", {_LANG: lang}).text = text
    return element


def _artefact(artefact_id: str, version: str) -> dict[str, str]:
    return {"id": artefact_id, "agencyID": AGENCY, "version": version}


def sdmx_codelists() -> dict[str, tuple[str, tuple[str, str], list[tuple[str, str, str]]]]:
    """Every code list of the DSD: id -> (version, (name es, name en), [(code, es, en)])."""
    members = codelist("member")
    area = [(c, members.label(c, "es"), members.label(c, "en")) for c in REGIONAL_MEMBERS]
    area.append((REGIONAL_AREA, "Región de la CRM (agregado)", "RCM region (aggregate)"))
    lists = {"CL_AREA": (CODELISTS_VERSION, ("País o región", "Country or region"), area)}
    for _, _, name in SDMX_DIMENSIONS:
        if name is not None:
            found = codelist(name)
            entries = [(e.code, e.label_es, e.label_en) for e in found.codes.values()]
            title = (found.description_es or name, found.description_en or name)
            lists[f"CL_{name.upper()}"] = (found.version, title, [*entries, *_SPECIAL])
    for cid, codes in _OWN_LISTS.items():
        lists[cid] = (STRUCTURE_VERSION, _CONCEPTS[cid.removeprefix("CL_")], list(codes))
    version = re.sub(r"^\D*", "", MATRICES_VERSION) or STRUCTURE_VERSION
    tables = [(m.id, m.title_es, m.title_en) for m in MATRICES.values()]
    lists["CL_TABLE"] = (version, ("Cuadros CRM", "CRM matrices"), tables)
    return lists


def component_codelists() -> dict[str, str | None]:
    """DSD component id -> the id of its code list (None: an uncoded text format)."""
    coded: dict[str, str | None] = {"REF_AREA": "CL_AREA"}
    for sdmx_id, _, name in SDMX_DIMENSIONS[1:]:
        coded[sdmx_id] = f"CL_{name.upper()}" if name else None
    coded.update(OBS_VALUE=None, OBS_STATUS="CL_OBS_STATUS", CONF_STATUS="CL_CONF_STATUS")
    coded.update(UNIT_MEASURE="CL_UNIT_MEASURE", TABLE_ID="CL_TABLE", N_CONTRIB=None)
    return coded


def structure_message(*, prepared: dt.datetime = STRUCTURE_RELEASED) -> bytes:
    """The DSD, its code lists, concepts and dataflow as an SDMX-ML 3.0 structure message
    (``docs/sdmx/dsd.xml``); ``prepared`` is the header's preparation time."""
    for prefix, uri in (("mes", "message"), ("str", "structure"), ("com", "common")):
        ET.register_namespace(prefix, _NS + uri)
    root = ET.Element(f"{_MES}Structure")
    header = ET.SubElement(root, f"{_MES}Header")
    for tag, text in (("ID", DSD_ID), ("Test", "false")):
        ET.SubElement(header, f"{_MES}{tag}").text = text
    ET.SubElement(header, f"{_MES}Prepared").text = prepared.strftime("%Y-%m-%dT%H:%M:%SZ")
    ET.SubElement(header, f"{_MES}Sender", {"id": AGENCY})
    structures = ET.SubElement(root, f"{_MES}Structures")
    lists, coded = sdmx_codelists(), component_codelists()
    codelists = ET.SubElement(structures, f"{_STR}Codelists")
    for cid, (version, (title_es, title_en), codes) in lists.items():
        element = _named(codelists, "Codelist", _artefact(cid, version), title_es, title_en)
        for code, es, en in codes:
            _named(element, "Code", {"id": code}, es, en)
    schemes = ET.SubElement(structures, f"{_STR}ConceptSchemes")
    scheme = _named(
        schemes, "ConceptScheme", _artefact(CONCEPT_SCHEME_ID, STRUCTURE_VERSION),
        "Conceptos de crm-enlace", "crm-enlace concepts",
    )  # fmt: skip
    for concept, (es, en) in _CONCEPTS.items():
        _named(scheme, "Concept", {"id": concept}, es, en)
    flow = _named(
        ET.SubElement(structures, f"{_STR}Dataflows"), "Dataflow",
        _artefact(DATAFLOW_ID, STRUCTURE_VERSION),
        "Flujos migratorios extrarregionales (cuadros CRM)",
        "Extra-regional migration flows (CRM matrices)",
    )  # fmt: skip
    dsd_ref = f"{AGENCY}:{DSD_ID}({STRUCTURE_VERSION})"
    ET.SubElement(flow, f"{_STR}Structure").text = f"{_URN}datastructure.DataStructure={dsd_ref}"
    dsd = _named(
        ET.SubElement(structures, f"{_STR}DataStructures"), "DataStructure",
        _artefact(DSD_ID, STRUCTURE_VERSION),
        "Estadísticas protegidas de crm-enlace", "crm-enlace protected statistics",
    )  # fmt: skip
    parts = ET.SubElement(dsd, f"{_STR}DataStructureComponents")

    def component(parent: ET.Element, tag: str, cid: str, text_type: str, **attrs: str) -> None:
        element = ET.SubElement(parent, f"{_STR}{tag}", {"id": cid, **attrs})
        concept = f"{AGENCY}:{CONCEPT_SCHEME_ID}({STRUCTURE_VERSION}).{cid}"
        identity = ET.SubElement(element, f"{_STR}ConceptIdentity")
        identity.text = f"{_URN}conceptscheme.Concept={concept}"
        shape = ET.SubElement(element, f"{_STR}LocalRepresentation")
        if (list_id := coded[cid]) is not None:
            target = f"{_URN}codelist.Codelist={AGENCY}:{list_id}({lists[list_id][0]})"
            ET.SubElement(shape, f"{_STR}Enumeration").text = target
        else:
            ET.SubElement(shape, f"{_STR}TextFormat", {"textType": text_type})
        if tag == "Attribute":
            relation = ET.SubElement(element, f"{_STR}AttributeRelationship")
            ET.SubElement(relation, f"{_STR}Observation")

    dims = ET.SubElement(parts, f"{_STR}DimensionList", {"id": "DimensionDescriptor"})
    for position, (sdmx_id, _, _) in enumerate(SDMX_DIMENSIONS[:-1], start=1):
        component(dims, "Dimension", sdmx_id, "String", position=str(position))
    component(dims, "TimeDimension", "TIME_PERIOD", "ObservationalTimePeriod")
    attributes = ET.SubElement(parts, f"{_STR}AttributeList", {"id": "AttributeDescriptor"})
    for cid in (*SDMX_ATTRIBUTES, "N_CONTRIB"):
        usage = "optional" if cid in ("TABLE_ID", "N_CONTRIB") else "mandatory"
        component(attributes, "Attribute", cid, "Integer", usage=usage)
    measures = ET.SubElement(parts, f"{_STR}MeasureList", {"id": "MeasureDescriptor"})
    component(measures, "Measure", "OBS_VALUE", "Integer", usage="optional")
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
