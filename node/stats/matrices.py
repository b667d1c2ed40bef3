"""The CRM quarterly matrices ("cuadros") as named, versioned table definitions.

Why named: members agreed in 2016 to fill the same tables every quarter; a definition fixes
what each table counts so that every node computes it the same way and the Secretariat can
add them up. Changing a definition means a new :data:`MATRICES_VERSION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from node.errors import InvalidArgumentError

MATRICES_VERSION = "crm-matrices-2026.1"

ARRIVAL_EVENTS = ("irregular_entry", "encounter", "detention")
ASYLUM_EVENTS = ("asylum_application", "asylum_rejected", "asylum_granted")


@dataclass(frozen=True)
class MatrixDefinition:
    id: str
    title_es: str
    title_en: str
    measure: str
    dimensions: tuple[str, ...]
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    note_es: str = ""


_DEFINITIONS = (
    MatrixDefinition(
        "M01",
        "Personas extrarregionales por nacionalidad y trimestre",
        "Extra-regional persons by nationality and quarter",
        "persons",
        ("nationality", "quarter"),
        {"event_type": ARRIVAL_EVENTS},
        "Personas distintas por celda (una persona con varios eventos cuenta una vez).",
    ),
    MatrixDefinition(
        "M02",
        "Personas por nacionalidad y base de la nacionalidad (presunta, desconocida…)",
        "Persons by nationality and nationality basis (presumed, unknown…)",
        "persons",
        ("nationality", "nationality_basis"),
        {"event_type": ARRIVAL_EVENTS},
    ),
    MatrixDefinition(
        "M03",
        "Personas por sexo y grupo de edad",
        "Persons by sex and age group",
        "persons",
        ("sex", "age_group"),
        {"event_type": ARRIVAL_EVENTS},
    ),
    MatrixDefinition(
        "M04",
        "Eventos por puesto fronterizo y tipo de evento",
        "Events by border post and event type",
        "events",
        ("border_post", "event_type"),
    ),
    MatrixDefinition(
        "M05",
        "Personas varadas con trato humanitario, por nacionalidad",
        "Stranded persons given humanitarian treatment, by nationality",
        "persons",
        ("nationality",),
        {"event_type": ("stranded",)},
        "Cuadro propuesto por Costa Rica (2016): documentadas, ni detenidas ni devueltas.",
    ),
    MatrixDefinition(
        "M06",
        "Solicitudes y decisiones de asilo por nacionalidad",
        "Asylum applications and decisions by nationality",
        "events",
        ("nationality", "event_type"),
        {"event_type": ASYLUM_EVENTS},
    ),
    MatrixDefinition(
        "M07",
        "Atención brindada (incluida salud) por nacionalidad",
        "Care provided (including health) by nationality",
        "persons",
        ("care_provided", "nationality"),
        note_es="Una persona que recibió varios tipos de atención cuenta en cada uno.",
    ),
    MatrixDefinition(
        "M08",
        "Retornos: deportaciones y retornos voluntarios asistidos por nacionalidad",
        "Returns: deportations and assisted voluntary returns by nationality",
        "events",
        ("nationality", "event_type"),
        {"event_type": ("deportation", "assisted_voluntary_return")},
    ),
)

MATRICES: Mapping[str, MatrixDefinition] = MappingProxyType({m.id: m for m in _DEFINITIONS})


def matrix(matrix_id: str) -> MatrixDefinition:
    try:
        return MATRICES[matrix_id.upper()]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown matrix {matrix_id!r}",
            field="matrix",
            hint=f"one of {', '.join(MATRICES)} ({MATRICES_VERSION})",
        ) from None
