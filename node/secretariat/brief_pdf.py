"""The monthly brief as PDF, laid out with ReportLab's platypus from the same view as the HTML.

ReportLab installs from PyPI wheels alone (no Pango, Cairo or other system library), so any
Secretariat node, and CI on a fresh machine, can render the brief. The PDF is built from
:class:`~node.secretariat.brief_view.BriefView`, not by converting the HTML, so both carry the
same figures while each gets a layout suited to its medium.

Invariants:
* Text is set in DejaVu Sans, the font matplotlib ships and draws the charts with, embedded as
  a subset: every Spanish character, "—" and the no-break space print the same everywhere.
* Charts are the PNG renderings of the very figures the HTML shows as SVG.
* Every page carries the footer "page X of Y" in the brief's language; rendering is
  deterministic (``invariant``: fixed creation date and document id) for the same view.
* Streams are written binary (Flate only, no ASCII85): ``rl_config.useA85`` is switched off
  while the brief is built and restored afterwards; either setting yields a valid PDF, so a
  concurrent ReportLab user is not harmed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    ListFlowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from node.errors import InternalError
from node.secretariat.brief_view import BriefView, Section
from node.secretariat.brief_view import Table as ViewTable

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
ACCENT = colors.HexColor("#0B4F8A")
INK = colors.HexColor("#1F2933")
MUTED = colors.HexColor("#616E7C")
RULE = colors.HexColor("#D9DEE3")
BAND = colors.HexColor("#F3F6F9")
WARN = colors.HexColor("#9A3412")
PARTIAL = colors.HexColor("#8A5A00")
MARGIN = 18 * mm
FRAME_WIDTH = A4[0] - 2 * MARGIN


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(ttf / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(ttf / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
    )


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=13, textColor=INK)
    return {
        "body": base,
        "org": ParagraphStyle("org", base, fontName=FONT_BOLD, fontSize=9.5, textColor=ACCENT),
        "title": ParagraphStyle(
            "title", base, fontName=FONT_BOLD, fontSize=17, leading=21, spaceBefore=4, spaceAfter=4
        ),
        "subtitle": ParagraphStyle("subtitle", base, fontSize=11, leading=14),
        "generated": ParagraphStyle("generated", base, fontSize=8.5, textColor=MUTED),
        "h2": ParagraphStyle(
            "h2",
            base,
            fontName=FONT_BOLD,
            fontSize=12.5,
            leading=16,
            textColor=ACCENT,
            spaceBefore=12,
            spaceAfter=5,
        ),
        "h3": ParagraphStyle(
            "h3", base, fontName=FONT_BOLD, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3
        ),
        "caption": ParagraphStyle(
            "caption", base, fontSize=8, leading=10.5, textColor=MUTED, spaceAfter=4
        ),
        "cell": ParagraphStyle("cell", base, fontSize=8, leading=10),
        "cell_bold": ParagraphStyle("cell_bold", base, fontName=FONT_BOLD, fontSize=8, leading=10),
        "cell_bold_num": ParagraphStyle(
            "cell_bold_num", base, fontName=FONT_BOLD, fontSize=8, leading=10, alignment=TA_RIGHT
        ),
        "cell_num": ParagraphStyle("cell_num", base, fontSize=8, leading=10, alignment=TA_RIGHT),
        "small": ParagraphStyle("small", base, fontSize=7, leading=8.5, alignment=TA_RIGHT),
        "small_left": ParagraphStyle("small_left", base, fontSize=7, leading=8.5),
        "small_bold": ParagraphStyle(
            "small_bold", base, fontName=FONT_BOLD, fontSize=7, leading=8.5, alignment=TA_RIGHT
        ),
        "small_bold_left": ParagraphStyle(
            "small_bold_left", base, fontName=FONT_BOLD, fontSize=7, leading=8.5
        ),
    }


def _text(value: str) -> str:
    return escape(value).replace("\n", "<br/>")


def _footer(canvas: Canvas, left: str, label: str) -> None:
    width, _height = A4
    canvas.saveState()
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.6)
    canvas.line(MARGIN, 14 * mm, width - MARGIN, 14 * mm)
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawString(MARGIN, 10 * mm, left)
    canvas.drawRightString(width - MARGIN, 10 * mm, label)
    canvas.restoreState()


def _table(
    tbl: ViewTable,
    styles: dict[str, ParagraphStyle],
    widths: list[float],
    *,
    small: bool = False,
    coverage: bool = False,
) -> Table:
    head_num, head_left = (
        (styles["small_bold"], styles["small_bold_left"])
        if small
        else (styles["cell_bold_num"], styles["cell_bold"])
    )
    num, left = (
        (styles["small"], styles["small_left"]) if small else (styles["cell_num"], styles["cell"])
    )
    header = [
        Paragraph(_text(h), head_num if tbl.numeric[i] else head_left)
        for i, h in enumerate(tbl.header)
    ]
    body = [
        [Paragraph(_text(c), num if tbl.numeric[i] else left) for i, c in enumerate(row)]
        for row in tbl.rows
    ]
    table = Table([header, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    commands: list[Any] = [
        ("BACKGROUND", (0, 0), (-1, 0), BAND),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, 1), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3 if small else 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3 if small else 4),
    ]
    if coverage:
        for i in range(len(tbl.rows)):
            css = tbl.row_class(i)
            if "status-missing" in css or "late" in css:
                commands.append(("BACKGROUND", (1, i + 1), (1, i + 1), colors.HexColor("#FDF1EC")))
            elif "status-partial" in css:
                commands.append(("BACKGROUND", (1, i + 1), (1, i + 1), colors.HexColor("#FDF6E3")))
    table.setStyle(TableStyle(commands))
    return table


def _widths(tbl: ViewTable, kind: str) -> list[float]:
    if kind == "monthly":
        first = 31 * mm
        rest = (FRAME_WIDTH - first) / (len(tbl.header) - 1)
        return [first] + [rest] * (len(tbl.header) - 1)
    if kind == "coverage":
        return [m * mm for m in (36, 36, 30, 24)] + [FRAME_WIDTH - 126 * mm]
    if kind == "stranded":
        return [70 * mm, 32 * mm]
    return [70 * mm, 30 * mm, 30 * mm, 28 * mm]


def _section(
    number: int, section: Section, styles: dict[str, ParagraphStyle], images: bool
) -> list[Flowable]:
    head: list[Flowable] = [Paragraph(f"{number}. {_text(section.title)}", styles["h2"])]
    if section.chart is not None:
        chart = section.chart
        height = FRAME_WIDTH * chart.height_in / chart.width_in
        if images:
            head.append(Image(io.BytesIO(chart.png), width=FRAME_WIDTH, height=height))
        else:
            head.append(Spacer(FRAME_WIDTH, height))
        head.append(Paragraph(_text(section.caption), styles["caption"]))
    else:
        head.append(Paragraph(f"<i>{_text(section.empty)}</i>", styles["caption"]))
    out: list[Flowable] = []
    if section.table is not None:
        kind = {"unknown": "monthly", "stranded": "stranded"}.get(section.key, "comparison")
        small = kind == "monthly"
        table = _table(section.table, styles, _widths(section.table, kind), small=small)
        if len(section.table.rows) <= 12:
            out.append(KeepTogether([*head, table]))
        else:
            out.extend([KeepTogether(head), table])
    else:
        out.append(KeepTogether(head))
    return out


def _masthead(view: BriefView, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    summary: list[Flowable] = [Paragraph(_text(view.labels["summary"]), styles["h3"])]
    for index, line in enumerate(view.summary):
        summary.append(Paragraph(_text(line), styles["body"]))
        if index == 1 and view.highlights:
            items = [Paragraph(_text(h), styles["body"]) for h in view.highlights]
            summary.append(
                ListFlowable(
                    items,
                    bulletType="bullet",
                    start="•",
                    leftIndent=12,
                    bulletFontName=FONT,
                    bulletFontSize=9.5,
                    spaceBefore=1,
                    spaceAfter=1,
                )
            )
    box = Table([[summary]], colWidths=[FRAME_WIDTH])
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), BAND),
                ("LINEBEFORE", (0, 0), (0, -1), 3, ACCENT),
                ("LEFTPADDING", (0, 0), (-1, -1), 10),
                ("RIGHTPADDING", (0, 0), (-1, -1), 10),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    rule = Table([[""]], colWidths=[FRAME_WIDTH], rowHeights=[2])
    rule.setStyle(TableStyle([("LINEABOVE", (0, 0), (-1, 0), 2, ACCENT)]))
    return [
        Paragraph(_text(view.secretariat), styles["org"]),
        Paragraph(_text(view.title), styles["title"]),
        Paragraph(_text(view.subtitle), styles["subtitle"]),
        Paragraph(_text(view.generated), styles["generated"]),
        Spacer(1, 4),
        rule,
        Spacer(1, 6),
        box,
    ]


def _story(view: BriefView, styles: dict[str, ParagraphStyle], images: bool) -> list[Flowable]:
    story = _masthead(view, styles)
    for number, section in enumerate(view.sections, start=1):
        story.extend(_section(number, section, styles, images))
    coverage_title = f"{len(view.sections) + 1}. {_text(view.labels['sec_coverage'])}"
    story.append(Paragraph(coverage_title, styles["h2"]))
    story.append(_table(view.coverage, styles, _widths(view.coverage, "coverage"), coverage=True))
    story.append(Paragraph(_text(view.labels["sec_notes"]), styles["h2"]))
    notes = [Paragraph(_text(n), styles["body"]) for n in view.notes]
    story.append(
        ListFlowable(
            notes,
            bulletType="1",
            bulletFormat="%s.",
            leftIndent=16,
            bulletFontName=FONT,
            bulletFontSize=9.5,
        )
    )
    if view.annex:
        story.extend([PageBreak(), Paragraph(_text(view.labels["sec_annex"]), styles["h2"])])
        for heading, tbl in view.annex:
            story.append(Paragraph(_text(heading), styles["h3"]))
            story.append(_table(tbl, styles, _widths(tbl, "monthly"), small=True))
    return story


def _build(view: BriefView, total: int | None) -> tuple[bytes, int]:
    styles = _styles()
    left = f"{view.secretariat} · {view.subtitle}"

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        page = canvas.getPageNumber()
        label = view.labels["page"].format(page=page, pages=total if total else page)
        _footer(canvas, left, label)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=22 * mm,
        title=f"{view.title} — {view.period_label}",
        author=view.secretariat,
        subject=view.subtitle,
        creator="crm-enlace",
        lang=view.language,
        invariant=1,
    )
    doc.build(_story(view, styles, total is not None), onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue(), doc.page


def write_pdf(view: BriefView, path: Path) -> None:
    """Lay the brief out on A4 pages and write it to ``path``.

    Laid out twice: the first pass counts the pages for the "page X of Y" footer, with blank
    boxes of the same size in place of the charts (neither the footer nor the boxes change
    the flow, so the second pass breaks pages at the same places).
    """
    _register_fonts()
    saved = rl_config.useA85
    rl_config.useA85 = 0  # binary streams: ASCII85 only inflates them, slowly, in pure Python
    try:
        _first, pages = _build(view, None)
        pdf, pages_again = _build(view, pages)
    finally:
        rl_config.useA85 = saved
    if pages_again != pages:
        raise InternalError(f"brief layout changed between passes ({pages} → {pages_again} pages)")
    path.write_bytes(pdf)
