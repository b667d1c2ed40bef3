"""Spanish and English wording and number/date formats for the monthly brief.

Spanish is the working language of the CRM and the default; English is available on request.
Formatting is done here, by hand, rather than through the C locale: the machines that render the
brief rarely have ``es_*`` locales installed, and the output must not depend on them.

Invariants:
* Every key exists in both languages (checked at import time), so switching language can never
  leave a string untranslated or fall back silently to the other language.
* ``None`` is formatted as the unpublished mark "—" by every number formatter; no formatter
  ever prints 0 for a missing value.
* Spanish groups thousands with a no-break space (12 345) and uses a decimal comma (12,5 %);
  English uses a comma and a decimal point (12,345; 12.5%).
"""

from __future__ import annotations

from datetime import UTC, datetime

from node.secretariat.brief_data import Language, parse_month

UNPUBLISHED = "—"
NBSP = "\u00a0"

STRINGS: dict[str, dict[Language, str]] = {
    "title": {
        "es": "Breve informe mensual regional sobre flujos migratorios extrarregionales",
        "en": "Monthly regional brief on extra-regional migration flows",
    },
    "subtitle": {
        "es": "Conferencia Regional sobre Migración (CRM) — {period}",
        "en": "Regional Conference on Migration (RCM) — {period}",
    },
    "generated": {"es": "Elaborado el {date}", "en": "Produced on {date}"},
    "page": {"es": "Página {page} de {pages}", "en": "Page {page} of {pages}"},
    "summary": {"es": "Resumen", "en": "Summary"},
    "summary_coverage": {
        "es": "De {total} países miembros, {complete} enviaron datos completos, {partial} "
        "datos parciales y {missing} ningún dato; {late} con retraso.",
        "en": "Of {total} member countries, {complete} sent complete data, {partial} partial "
        "data and {missing} none; {late} late.",
    },
    "summary_top": {
        "es": "Principales nacionalidades en {period}:",
        "en": "Main nationalities in {period}:",
    },
    "summary_none": {
        "es": "Ninguna cifra por nacionalidad publicable para {period}.",
        "en": "No publishable figure by nationality for {period}.",
    },
    "summary_share": {
        "es": "Proporción de nacionalidad desconocida o presunta en {period}: {share}.",
        "en": "Share of unknown or presumed nationality in {period}: {share}.",
    },
    "highlight": {
        "es": "{name}: {value} ({change} respecto de {previous})",
        "en": "{name}: {value} ({change} on {previous})",
    },
    "highlight_plain": {"es": "{name}: {value}", "en": "{name}: {value}"},
    "sec_trend": {"es": "Tendencia por nacionalidad", "en": "Trend by nationality"},
    "sec_country": {"es": "Por país informante", "en": "By reporting country"},
    "sec_stranded": {"es": "Personas varadas", "en": "Stranded persons"},
    "sec_unknown": {
        "es": "Nacionalidad desconocida o presunta",
        "en": "Unknown or presumed nationality",
    },
    "sec_coverage": {"es": "Cobertura", "en": "Coverage"},
    "sec_notes": {"es": "Notas", "en": "Notes"},
    "sec_annex": {"es": "Anexo: series mensuales", "en": "Annex: monthly series"},
    "cap_trend": {
        "es": "Total regional mensual de las {shown} nacionalidades principales, últimos 12 meses.",
        "en": "Monthly regional total of the {shown} main nationalities, last 12 months.",
    },
    "cap_country": {
        "es": "Total mensual por país informante, últimos 12 meses.",
        "en": "Monthly total by reporting country, last 12 months.",
    },
    "cap_stranded": {
        "es": "Personas varadas por nacionalidad en {period}.",
        "en": "Stranded persons by nationality in {period}.",
    },
    "cap_unknown": {
        "es": "Proporción de registros con nacionalidad desconocida o presunta, por mes.",
        "en": "Share of records with unknown or presumed nationality, by month.",
    },
    "cap_gaps": {
        "es": "Los huecos en las líneas son cifras no publicadas, no ceros.",
        "en": "Gaps in the lines are unpublished figures, not zeros.",
    },
    "cap_bars": {
        "es": "«—» marca una cifra no publicada; no es un cero.",
        "en": "“—” marks an unpublished figure; it is not a zero.",
    },
    "col_nationality": {"es": "Nacionalidad", "en": "Nationality"},
    "col_country": {"es": "País", "en": "Country"},
    "col_change": {"es": "Variación", "en": "Change"},
    "col_month": {"es": "Mes", "en": "Month"},
    "col_share": {"es": "Proporción", "en": "Share"},
    "col_persons": {"es": "Personas", "en": "Persons"},
    "col_status": {"es": "Estado", "en": "Status"},
    "col_matrices": {"es": "Matrices recibidas", "en": "Matrices received"},
    "col_as_of": {"es": "Datos al", "en": "Data as of"},
    "col_notes": {"es": "Observaciones", "en": "Remarks"},
    "status_complete": {"es": "Completo", "en": "Complete"},
    "status_partial": {"es": "Parcial", "en": "Partial"},
    "status_missing": {"es": "Sin datos", "en": "No data"},
    "late": {"es": "con retraso", "en": "late"},
    "none_received": {"es": "ninguna", "en": "none"},
    "no_data": {
        "es": "Sin cifras publicables para este periodo.",
        "en": "No publishable figures for this period.",
    },
    "axis_persons": {"es": "Personas (tránsitos)", "en": "Persons (transits)"},
    "axis_share": {"es": "Proporción", "en": "Share"},
    "not_published": {"es": "no publicado", "en": "not published"},
    "note_transits": {
        "es": "Las sumas regionales cuentan tránsitos, no personas únicas: una persona que "
        "atraviesa varios países se cuenta una vez en cada país que la registra.",
        "en": "Regional sums count transits, not unique persons: a person who crosses several "
        "countries is counted once in each country that records them.",
    },
    "note_confidential": {
        "es": "Las cifras suprimidas o no publicadas son confidenciales (una celda regional se "
        "publica solo con al menos 3 países y 5 personas) y se muestran como «—», nunca como 0.",
        "en": "Suppressed or unpublished figures are confidential (a regional cell is published "
        "only with at least 3 countries and 5 persons) and are shown as “—”, never as 0.",
    },
    "note_partial": {
        "es": "Un país con datos parciales o sin datos no contribuye a las celdas que faltan; "
        "las cifras pueden revisarse cuando lleguen sus matrices.",
        "en": "A country with partial or no data does not contribute to the missing cells; "
        "figures may be revised when its matrices arrive.",
    },
    "chart_alt": {"es": "Gráfico: {title}", "en": "Chart: {title}"},
    "lang_name": {"es": "español", "en": "English"},
}

MONTHS: dict[Language, tuple[str, ...]] = {
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

MONTHS_SHORT: dict[Language, tuple[str, ...]] = {
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

# Names of the CRM members and of the nationalities most often seen in extra-regional flows;
# any other code is shown as the code itself.
COUNTRIES: dict[str, tuple[str, str]] = {
    "BLZ": ("Belice", "Belize"),
    "CAN": ("Canadá", "Canada"),
    "CRI": ("Costa Rica", "Costa Rica"),
    "SLV": ("El Salvador", "El Salvador"),
    "GTM": ("Guatemala", "Guatemala"),
    "HND": ("Honduras", "Honduras"),
    "MEX": ("México", "Mexico"),
    "NIC": ("Nicaragua", "Nicaragua"),
    "PAN": ("Panamá", "Panama"),
    "DOM": ("República Dominicana", "Dominican Republic"),
    "USA": ("Estados Unidos", "United States"),
    "HTI": ("Haití", "Haiti"),
    "CUB": ("Cuba", "Cuba"),
    "IND": ("India", "India"),
    "NPL": ("Nepal", "Nepal"),
    "BGD": ("Bangladés", "Bangladesh"),
    "CHN": ("China", "China"),
    "CMR": ("Camerún", "Cameroon"),
    "COD": ("R. D. del Congo", "DR Congo"),
    "AGO": ("Angola", "Angola"),
    "SEN": ("Senegal", "Senegal"),
    "GIN": ("Guinea", "Guinea"),
    "AFG": ("Afganistán", "Afghanistan"),
    "PAK": ("Pakistán", "Pakistan"),
    "LKA": ("Sri Lanka", "Sri Lanka"),
    "ERI": ("Eritrea", "Eritrea"),
    "SOM": ("Somalia", "Somalia"),
    "GHA": ("Ghana", "Ghana"),
    "MRT": ("Mauritania", "Mauritania"),
    "UZB": ("Uzbekistán", "Uzbekistan"),
    "TUR": ("Turquía", "Türkiye"),
    "VNM": ("Viet Nam", "Viet Nam"),
    "VEN": ("Venezuela", "Venezuela"),
    "ECU": ("Ecuador", "Ecuador"),
    "COL": ("Colombia", "Colombia"),
    "XXA": ("Apátrida", "Stateless"),
    "XXB": ("Refugiado (Conv. 1951)", "Refugee (1951 Conv.)"),
    "XXC": ("Refugiado (otro)", "Refugee (other)"),
    "XXX": ("Nacionalidad no especificada", "Unspecified nationality"),
}


def _check_complete() -> None:
    for key, texts in STRINGS.items():
        if set(texts) != {"es", "en"}:
            raise RuntimeError(f"i18n key {key!r} is not translated into both languages")


_check_complete()


def t(language: Language, key: str, **values: object) -> str:
    """The string ``key`` in ``language`` with ``values`` substituted."""
    text = STRINGS[key][language]
    return text.format(**values) if values else text


def country_name(language: Language, code: str) -> str:
    """The display name of an alpha-3 code; the code itself when it is not in the list."""
    names = COUNTRIES.get(code)
    if names is None:
        return code
    return names[0] if language == "es" else names[1]


def _group(digits: str, sep: str) -> str:
    parts = []
    while len(digits) > 3:
        parts.append(digits[-3:])
        digits = digits[:-3]
    parts.append(digits)
    return sep.join(reversed(parts))


def format_int(language: Language, value: int | float | None) -> str:
    """12 345 (es) / 12,345 (en); "—" for an unpublished value."""
    if value is None:
        return UNPUBLISHED
    number = round(value)
    sign = "-" if number < 0 else ""
    return sign + _group(str(abs(number)), NBSP if language == "es" else ",")


def format_decimal(language: Language, value: float, places: int = 1) -> str:
    """A decimal number with the language's separators (12,5 / 12.5)."""
    text = f"{abs(value):.{places}f}"
    whole, _, frac = text.partition(".")
    sign = "-" if value < 0 and float(text) != 0 else ""
    body = _group(whole, NBSP if language == "es" else ",")
    if frac:
        body += ("," if language == "es" else ".") + frac
    return sign + body


def format_share(language: Language, share: float | None, places: int = 1) -> str:
    """A fraction as a percentage: 12,5 % (es, spaced as the RAE asks) / 12.5% (en)."""
    if share is None:
        return UNPUBLISHED
    number = format_decimal(language, share * 100, places)
    return f"{number}{NBSP}%" if language == "es" else f"{number}%"


def format_change(language: Language, current: int | None, previous: int | None) -> str:
    """Relative change from ``previous`` to ``current``; "—" unless both are published."""
    if current is None or previous is None or previous == 0:
        return UNPUBLISHED
    change = (current - previous) / previous
    text = format_share(language, abs(change))
    if round(change * 1000) == 0:
        return format_share(language, 0.0)
    return ("+" if change > 0 else "−") + text


def month_label(language: Language, month: str, *, short: bool = False) -> str:
    """``2026-10`` → "octubre de 2026" / "October 2026" (or "oct 2026" / "Oct 2026")."""
    year, mon = parse_month(month)
    if short:
        return f"{MONTHS_SHORT[language][mon - 1]} {year}"
    name = MONTHS[language][mon - 1]
    return f"{name} de {year}" if language == "es" else f"{name} {year}"


def month_tick(language: Language, month: str, first: bool) -> str:
    """A chart tick: the short month name, with the year under January and the first tick."""
    year, mon = parse_month(month)
    name = MONTHS_SHORT[language][mon - 1]
    return f"{name}\n{year}" if first or mon == 1 else name


def capitalise(text: str) -> str:
    """First letter upper-case (Spanish month names are lower-case inside a sentence)."""
    return text[:1].upper() + text[1:]


def format_date(language: Language, when: datetime | None) -> str:
    """3 de noviembre de 2026 / 3 November 2026; "—" when unknown."""
    if when is None:
        return UNPUBLISHED
    name = MONTHS[language][when.month - 1]
    if language == "es":
        return f"{when.day} de {name} de {when.year}"
    return f"{when.day} {name} {when.year}"


def format_datetime(language: Language, when: datetime | None) -> str:
    """The date plus the UTC time, e.g. "3 de noviembre de 2026, 14:05 UTC"."""
    if when is None:
        return UNPUBLISHED
    stamp = when.astimezone(UTC)
    return f"{format_date(language, stamp)}, {stamp:%H:%M} UTC"


def format_short_date(language: Language, when: datetime | None) -> str:
    """A compact date for table cells: "2 nov 2026" / "2 Nov 2026"; "—" when unknown."""
    if when is None:
        return UNPUBLISHED
    stamp = when.astimezone(UTC)
    return f"{stamp.day} {MONTHS_SHORT[language][stamp.month - 1]} {stamp.year}"
