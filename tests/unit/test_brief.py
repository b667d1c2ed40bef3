"""The monthly regional brief: data model checks, formatting, HTML and PDF rendering.

The brief is rendered from a realistic period built here (eleven members, one missing, one
partial and late, several unpublished cells) in Spanish and in English, and the outputs are
read back: the HTML with the standard-library parser, the PDF with pypdf.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pypdf import PdfReader

from node.errors import InvalidArgumentError, StoreError
from node.secretariat.brief import render_brief
from node.secretariat.brief_data import (
    BriefData,
    CoverageRow,
    Language,
    MemberStatus,
    months_ending,
    shift_month,
)
from node.secretariat.brief_view import matrices_label
from node.secretariat.charts import aligned, build_charts
from node.secretariat.i18n import format_change, format_int, format_share, month_label

PERIOD = "2026-10"
MONTHS = months_ending(PERIOD, 12)
NBSP = "\u00a0"

MEMBERS = [
    ("BLZ", "Belice", "complete", False),
    ("CAN", "Canadá", "complete", False),
    ("CRI", "Costa Rica", "complete", False),
    ("SLV", "El Salvador", "complete", False),
    ("GTM", "Guatemala", "partial", True),
    ("HND", "Honduras", "complete", False),
    ("MEX", "México", "complete", False),
    ("NIC", "Nicaragua", "missing", True),
    ("PAN", "Panamá", "complete", False),
    ("DOM", "República Dominicana", "complete", False),
    ("USA", "Estados Unidos", "partial", False),
]

# Monthly regional transits by nationality: a base level and a seasonal swing; the cells the
# publication rule withheld are listed separately.
BASE = {
    "HTI": 14_250,
    "CUB": 9_870,
    "CHN": 4_120,
    "IND": 3_480,
    "GIN": 1_290,
    "SEN": 896,
    "CMR": 640,
    "BGD": 410,
    "NPL": 212,
    "AFG": 180,
    "COD": 95,
    "AGO": 31,
}
WITHHELD = {("NPL", PERIOD), ("COD", "2026-07"), ("AGO", "2026-03"), ("AGO", "2026-04")}


def _value(base: int, index: int) -> int:
    return round(base * (1 + 0.25 * math.sin(index / 1.7)))


def _trend() -> dict[str, list[tuple[str, int | None]]]:
    return {
        code: [
            (m, None if (code, m) in WITHHELD else _value(base, i)) for i, m in enumerate(MONTHS)
        ]
        for code, base in BASE.items()
    }


def _by_country() -> dict[str, list[tuple[str, int | None]]]:
    levels = {"PAN": 21_300, "CRI": 18_900, "HND": 16_400, "GTM": 12_100, "MEX": 24_700}
    out: dict[str, list[tuple[str, int | None]]] = {
        code: [(m, _value(level, i + 3)) for i, m in enumerate(MONTHS)]
        for code, level in levels.items()
    }
    # Guatemala sent nothing for the last two months yet; Nicaragua nothing at all.
    out["GTM"] = [(m, None if m >= "2026-09" else v) for m, v in out["GTM"]]
    out["NIC"] = [(m, None) for m in MONTHS]
    return out


def brief_data(language: Language = "es") -> BriefData:
    as_of = datetime(2026, 11, 2, 18, 30, tzinfo=UTC)
    members = [
        MemberStatus(code, name, None if status == "missing" else as_of, status, late)  # type: ignore[arg-type]
        for code, name, status, late in MEMBERS
    ]
    coverage = [
        CoverageRow(
            code,
            ("M01", "M02", "M03") if status == "partial" else tuple(f"M0{k}" for k in range(1, 9)),
            as_of,
            "M04–M08 pendientes" if status == "partial" else "",
        )
        for code, _name, status, _late in MEMBERS
        if status != "missing"
    ]
    shares: list[tuple[str, float | None]] = [
        (m, None if m == "2026-05" else 0.12 + 0.01 * i) for i, m in enumerate(MONTHS)
    ]
    return BriefData(
        period=PERIOD,
        language=language,
        generated_at=datetime(2026, 11, 3, 14, 5, tzinfo=UTC),
        secretariat="Secretaría Técnica de la CRM",
        members=members,
        trend=_trend(),
        by_country=_by_country(),
        stranded={"HTI": 420, "CUB": 315, "SEN": 118, "CMR": 85, "GIN": None, "COD": None},
        unknown_presumed_share=shares,
        coverage=coverage,
        notes=["Nicaragua no envió datos del periodo."],
    )


class _Tables(HTMLParser):
    """Collects each table of the page as rows of cell texts, keyed by its section id."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.tables: dict[str, list[list[str]]] = {}
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("id") or self.section
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables.setdefault(self.section, []).append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def row(rows: list[list[str]], first: str) -> list[str]:
    return next(r for r in rows if r and r[0] == first)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    out = tmp_path_factory.mktemp("brief")
    result = {}
    for lang in ("es", "en"):
        html_path, pdf_path = render_brief(brief_data(lang), out)  # type: ignore[arg-type]
        result[lang] = (html_path.read_text(encoding="utf-8"), pdf_path)
    return result


SECTIONS = {
    "es": [
        "Tendencia por nacionalidad",
        "Por país informante",
        "Personas varadas",
        "Nacionalidad desconocida o presunta",
        "Cobertura",
        "Notas",
    ],
    "en": [
        "Trend by nationality",
        "By reporting country",
        "Stranded persons",
        "Unknown or presumed nationality",
        "Coverage",
        "Notes",
    ],
}


@pytest.mark.parametrize("lang", ["es", "en"])
def test_html_has_the_sections_in_its_language_only(
    rendered: dict[str, tuple[str, Path]], lang: str
) -> None:
    html, _pdf = rendered[lang]
    other = "en" if lang == "es" else "es"
    headings = re.findall(r"<h2>(?:\d+\. )?([^<]+)</h2>", html)
    for title in SECTIONS[lang]:
        assert title in headings
    for title in SECTIONS[other]:
        assert title not in html
    assert f'<html lang="{lang}">' in html


@pytest.mark.parametrize("lang", ["es", "en"])
def test_html_is_self_contained_with_one_svg_per_chart(
    rendered: dict[str, tuple[str, Path]], lang: str
) -> None:
    html, _pdf = rendered[lang]
    assert html.count("<svg ") == 4
    assert "<link" not in html and "<script" not in html
    assert not re.search(r'\s(?:src|href)="(?!#)', html)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_coverage_lists_every_member_with_its_status(
    rendered: dict[str, tuple[str, Path]],
) -> None:
    es = tables(rendered["es"][0])["coverage"]
    en = tables(rendered["en"][0])["coverage"]
    assert [r[0] for r in es[1:]] == [name for _c, name, _s, _l in MEMBERS]
    assert row(es, "Nicaragua")[1:4] == ["Sin datos, con retraso", "ninguna", "—"]
    assert row(es, "Guatemala")[1:3] == ["Parcial, con retraso", "M01–M03"]
    assert row(es, "Panamá")[2] == "M01–M08"
    assert row(es, "Panamá")[1] == "Completo"
    assert row(es, "Panamá")[3] == "2 nov 2026"
    assert row(en, "Nicaragua")[1:3] == ["No data, late", "none"]
    assert row(en, "United States")[1] == "Partial"
    assert row(en, "Panama")[3] == "2 Nov 2026"


def test_unpublished_cells_show_a_dash_never_zero(rendered: dict[str, tuple[str, Path]]) -> None:
    html = rendered["es"][0]
    found = tables(html)
    nepal = row(found["trend"], "Nepal")
    published_before = _value(BASE["NPL"], 10)
    assert nepal[1:4] == [format_int("es", published_before), "—", "—"]
    assert row(found["stranded"], "Guinea")[1] == "—"
    assert row(found["stranded"], "Haití")[1] == "420"
    assert row(found["country"], "Nicaragua")[1:] == ["—", "—", "—"]
    annex = found["annex"]
    angola = row(annex, "Angola")
    assert angola[1 + MONTHS.index("2026-03")] == "—"
    assert angola[1 + MONTHS.index("2026-04")] == "—"
    assert "0" not in angola[1:]
    share = row(found["unknown"], "Proporción")
    assert share[1 + MONTHS.index("2026-05")] == "—"


def test_figures_are_formatted_per_language(rendered: dict[str, tuple[str, Path]]) -> None:
    haiti_now = _value(BASE["HTI"], 11)
    haiti_before = _value(BASE["HTI"], 10)
    es, en = tables(rendered["es"][0]), tables(rendered["en"][0])
    assert row(es["trend"], "Haití")[1:3] == [
        f"{haiti_before // 1000}{NBSP}{haiti_before % 1000:03d}",
        f"{haiti_now // 1000}{NBSP}{haiti_now % 1000:03d}",
    ]
    assert row(en["trend"], "Haiti")[2] == f"{haiti_now // 1000},{haiti_now % 1000:03d}"
    assert row(es["trend"], "Haití")[3] == format_change("es", haiti_now, haiti_before)
    assert "oct 2026" in es["trend"][0] and "Oct 2026" in en["trend"][0]


def pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(path)
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return len(reader.pages), re.sub(r"\s+", " ", text.replace(NBSP, " "))


@pytest.mark.parametrize("lang", ["es", "en"])
def test_pdf_has_pages_headings_and_figures(
    rendered: dict[str, tuple[str, Path]], lang: str
) -> None:
    _html, pdf = rendered[lang]
    assert pdf.read_bytes().startswith(b"%PDF-")
    pages, text = pdf_text(pdf)
    assert pages >= 2
    for title in SECTIONS[lang]:
        assert title in text
    haiti_now = format_int(lang, _value(BASE["HTI"], 11)).replace(NBSP, " ")
    assert haiti_now in text
    label = "Página 1 de" if lang == "es" else "Page 1 of"
    assert f"{label} {pages}" in text
    assert month_label(lang, PERIOD).lower() in text.lower()


def test_output_names_and_no_leftover_temporary_files(
    rendered: dict[str, tuple[str, Path]],
) -> None:
    pdf = rendered["en"][1]
    assert pdf.name == "brief-2026-10-en.pdf"
    assert sorted(p.name for p in pdf.parent.iterdir()) == [
        "brief-2026-10-en.html",
        "brief-2026-10-en.pdf",
        "brief-2026-10-es.html",
        "brief-2026-10-es.pdf",
    ]


@pytest.mark.slow
def test_rendering_is_reproducible(rendered: dict[str, tuple[str, Path]], tmp_path: Path) -> None:
    html, pdf = rendered["en"]
    html_again, pdf_again = render_brief(brief_data("en"), tmp_path)
    assert html_again.read_text(encoding="utf-8") == html
    assert pdf_again.read_bytes() == pdf.read_bytes()


def test_a_period_with_nothing_published_renders_without_charts(tmp_path: Path) -> None:
    data = brief_data("es")
    empty = BriefData(
        period=data.period,
        language="es",
        generated_at=data.generated_at,
        secretariat=data.secretariat,
        members=data.members,
        trend={c: [(m, None) for m, _v in s] for c, s in data.trend.items()},
        by_country={},
        stranded={"HTI": None},
        unknown_presumed_share=[],
    )
    assert build_charts(empty) == {}
    html_path, pdf_path = render_brief(empty, tmp_path)
    html = html_path.read_text(encoding="utf-8")
    assert "<svg" not in html
    assert html.count("Sin cifras publicables para este periodo.") == 4
    assert "Ninguna cifra por nacionalidad publicable" in html
    pages, text = pdf_text(pdf_path)
    assert pages >= 1 and "Cobertura" in text


def test_an_unusable_output_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot create"):
        render_brief(brief_data("es"), blocker / "out")


def test_charts_break_lines_at_unpublished_months() -> None:
    values = aligned(
        [("2026-01", 5), ("2026-02", None), ("2026-04", 7)], months_ending("2026-04", 4)
    )
    assert values[0] == 5.0 and values[3] == 7.0
    assert math.isnan(values[1]) and math.isnan(values[2])


def test_matrices_label_joins_runs() -> None:
    assert matrices_label(["M01", "M02", "M03", "M05", "M06", "M08"]) == "M01–M03, M05, M06, M08"
    assert matrices_label(["M02"]) == "M02"
    assert matrices_label(["M01", "M02", "X", "Y"]) == "M01, M02, X, Y"
    assert matrices_label([]) == ""


def test_formatters() -> None:
    assert format_int("es", 12_345) == f"12{NBSP}345"
    assert format_int("en", 1_234_567) == "1,234,567"
    assert format_int("es", None) == format_int("en", None) == "—"
    assert format_share("es", 0.125) == f"12,5{NBSP}%"
    assert format_share("en", 0.125) == "12.5%"
    assert format_change("es", 110, 100) == f"+10,0{NBSP}%"
    assert format_change("en", 90, 100) == "−10.0%"
    assert format_change("en", 90, None) == "—"
    assert month_label("es", "2026-01") == "enero de 2026"
    assert shift_month("2026-01", -1) == "2025-12"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"generated_at": datetime(2026, 11, 3)}, "generated_at"),
        ({"period": "2026-13"}, "period"),
        ({"language": "fr"}, "language"),
        ({"stranded": {"HTI": -1}}, "stranded[HTI]"),
        ({"stranded": {"haiti": 3}}, "stranded"),
        ({"trend": {"HTI": [("2026-11", 5)]}}, "trend[HTI][0]"),
        ({"trend": {"HTI": [("2026-05", 5), ("2026-04", 5)]}}, "trend[HTI][1]"),
        ({"unknown_presumed_share": [("2026-05", 1.5)]}, "unknown_presumed_share[0]"),
        ({"coverage": [CoverageRow("ARG")]}, "coverage"),
    ],
)
def test_invalid_data_is_rejected_naming_the_field(change: dict[str, object], field: str) -> None:
    base = brief_data("es")
    kwargs: dict[str, object] = {
        "period": base.period,
        "language": base.language,
        "generated_at": base.generated_at,
        "secretariat": base.secretariat,
        "members": base.members,
        "trend": base.trend,
        "by_country": base.by_country,
        "stranded": base.stranded,
        "unknown_presumed_share": base.unknown_presumed_share,
        "coverage": base.coverage,
    }
    kwargs.update(change)
    with pytest.raises(InvalidArgumentError) as info:
        BriefData(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
