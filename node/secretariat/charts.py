"""Charts of the monthly brief, drawn once and rendered twice: SVG for HTML, PNG for PDF.

Figures are built on :class:`matplotlib.figure.Figure` directly (the Agg/SVG canvases, never
``pyplot``), so rendering holds no global figure state and works on a headless node.

Invariants:
* An unpublished value (``None``) is never drawn as 0: a line is broken at that month (every
  published point carries a marker, so an isolated month stays visible), and a bar is replaced
  by the "—" mark with the words "not published".
* Axis numbers and month names follow the brief's language (:mod:`node.secretariat.i18n`).
* Output is deterministic for the same data: SVG ids are salted with the chart's name (unique
  within one HTML page) and the date/software metadata are left out.
* A chart with nothing published is not drawn at all (:func:`build_charts` omits it); the
  template says so in words instead of showing an empty frame.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from node.secretariat.brief_data import BriefData, Language
from node.secretariat.i18n import (
    COUNTRIES,
    UNPUBLISHED,
    country_name,
    format_int,
    format_share,
    month_tick,
    t,
)

# Okabe–Ito: distinguishable with the common colour-vision deficiencies; markers differ too,
# so the lines stay apart on a grey-scale printout.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D1F", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAX_LINES = 8
WIDTH_IN = 6.8
PNG_DPI = 200
INK = "#1F2933"
GRID = "#D9DEE3"
_ID = re.compile(r'\s(id)="([^"]+)"')
_HREF = re.compile(r'((?:xlink:)?href)="#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")


@dataclass(frozen=True)
class Chart:
    """One rendered chart: inline SVG markup for HTML and PNG bytes for PDF."""

    key: str
    title: str
    svg: str
    png: bytes
    width_in: float
    height_in: float


def reporting_name(data: BriefData, code: str) -> str:
    """A member's name in the brief's language; the directory's name for codes not listed."""
    member = data.member(code)
    if code in COUNTRIES or member is None:
        return country_name(data.language, code)
    return member.name


def ranked(
    series: Mapping[str, Sequence[tuple[str, int | None]]], months: Sequence[str]
) -> list[str]:
    """Codes ordered by their published total over ``months`` (largest first, then code)."""
    window = set(months)

    def total(code: str) -> int:
        return sum(v for m, v in series[code] if v is not None and m in window)

    return sorted(series, key=lambda code: (-total(code), code))


def aligned(points: Sequence[tuple[str, int | float | None]], months: Sequence[str]) -> list[float]:
    """Values on the chart's months, NaN where unpublished or absent (NaN breaks a line)."""
    by_month = dict(points)
    out: list[float] = []
    for month in months:
        value = by_month.get(month)
        out.append(math.nan if value is None else float(value))
    return out


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#9AA5B1")
    ax.tick_params(colors=INK, labelsize=8)
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)


def _figure(height_in: float) -> Figure:
    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained", facecolor="white")


def _lines(
    language: Language,
    series: Mapping[str, Sequence[tuple[str, int | None]]],
    codes: Sequence[str],
    months: Sequence[str],
    names: Mapping[str, str],
) -> Figure:
    fig = _figure(3.3)
    ax = fig.add_subplot()
    _style(ax)
    x = list(range(len(months)))
    for i, code in enumerate(codes):
        ax.plot(
            x,
            aligned(series[code], months),
            color=PALETTE[i % len(PALETTE)],
            marker=MARKERS[i % len(MARKERS)],
            markersize=4,
            linewidth=1.6,
            label=names.get(code, code),
        )
    ax.set_xticks(x, [month_tick(language, m, first=i == 0) for i, m in enumerate(months)])
    ax.set_xlim(-0.4, len(months) - 0.6)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_int(language, v)))
    ax.set_ylabel(t(language, "axis_persons"), fontsize=8, color=INK)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=8,
        handlelength=2.2,
    )
    return fig


def _bars(language: Language, stranded: Mapping[str, int | None]) -> Figure:
    published = sorted(
        ((c, v) for c, v in stranded.items() if v is not None), key=lambda cv: (-cv[1], cv[0])
    )
    hidden = sorted(c for c, v in stranded.items() if v is None)
    rows = [(c, v) for c, v in published] + [(c, None) for c in hidden]
    fig = _figure(max(1.6, 0.62 + 0.27 * len(rows)))
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    y = list(range(len(rows)))
    values = [float(v) if v is not None else 0.0 for _c, v in rows]
    top = max((v for v in values), default=0.0) or 1.0
    bars = ax.barh(y, values, color=PALETTE[0], height=0.62)
    for (_code, value), bar in zip(rows, bars, strict=True):
        centre = bar.get_y() + bar.get_height() / 2
        if value is None:
            bar.set_visible(False)
            text = f"{UNPUBLISHED}  {t(language, 'not_published')}"
            ax.text(top * 0.01, centre, text, va="center", fontsize=8, color="#616E7C")
        else:
            label = format_int(language, value)
            ax.text(value + top * 0.01, centre, label, va="center", fontsize=8, color=INK)
    ax.set_yticks(y, [country_name(language, c) for c, _v in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_int(language, v)))
    return fig


def _share(
    language: Language, points: Sequence[tuple[str, float | None]], months: Sequence[str]
) -> Figure:
    fig = _figure(2.5)
    ax = fig.add_subplot()
    _style(ax)
    x = list(range(len(months)))
    values = aligned(points, months)
    ax.plot(x, values, color=PALETTE[3], marker="o", markersize=4, linewidth=1.8)
    ax.fill_between(x, values, color=PALETTE[3], alpha=0.08)
    ax.set_xticks(x, [month_tick(language, m, first=i == 0) for i, m in enumerate(months)])
    ax.set_xlim(-0.4, len(months) - 0.6)
    peak = max((v for v in values if not math.isnan(v)), default=0.0)
    ax.set_ylim(0, min(1.0, max(0.1, peak * 1.25)))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_share(language, v, 0)))
    ax.set_ylabel(t(language, "axis_share"), fontsize=8, color=INK)
    return fig


def _scoped(svg: str, key: str) -> str:
    """Prefix every id of one chart's SVG (and the references to them) with ``key``.

    Several SVGs share one HTML page, and matplotlib numbers ids per figure (``axes_1``,
    glyph ``DejaVuSans-30``…); without a prefix they would collide across charts.
    """
    svg = _ID.sub(lambda m: f'{m.group(1)}="{key}-{m.group(2)}"', svg)
    svg = _HREF.sub(lambda m: f'{m.group(1)}="#{key}-{m.group(2)}"', svg)
    return _URL.sub(lambda m: f"url(#{key}-{m.group(1)})", svg)


def _render(key: str, title: str, language: Language, fig: Figure) -> Chart:
    width, height = (float(v) for v in fig.get_size_inches())
    # Lay the figure out once, then freeze it: both renderings share the same geometry.
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    with matplotlib.rc_context({"svg.hashsalt": f"brief-{key}", "svg.fonttype": "path"}):
        svg_buf = io.StringIO()
        fig.savefig(svg_buf, format="svg", metadata={"Date": None})
    svg = svg_buf.getvalue()
    svg = _scoped(svg[svg.index("<svg") :], f"brief-{key}")
    label = escape(t(language, "chart_alt", title=title), quote=True)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" class="chart" ', 1)
    png_buf = io.BytesIO()
    fig.savefig(png_buf, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return Chart(key, title, svg, png_buf.getvalue(), width, height)


def publishes(points: Sequence[tuple[str, int | float | None]], months: Sequence[str]) -> bool:
    window = set(months)
    return any(v is not None and m in window for m, v in points)


def build_charts(data: BriefData) -> dict[str, Chart]:
    """The brief's charts that have something published: ``trend``, ``country``,
    ``stranded``, ``unknown`` (each key present only when its chart is drawn)."""
    lang = data.language
    months = data.months
    charts: dict[str, Chart] = {}
    codes = [c for c in ranked(data.trend, months) if publishes(data.trend[c], months)]
    if codes:
        names = {c: country_name(lang, c) for c in codes}
        fig = _lines(lang, data.trend, codes[:MAX_LINES], months, names)
        charts["trend"] = _render("trend", t(lang, "sec_trend"), lang, fig)
    reporting = [
        c for c in ranked(data.by_country, months) if publishes(data.by_country[c], months)
    ]
    if reporting:
        names = {c: reporting_name(data, c) for c in reporting}
        fig = _lines(lang, data.by_country, reporting[:MAX_LINES], months, names)
        charts["country"] = _render("country", t(lang, "sec_country"), lang, fig)
    if any(v is not None for v in data.stranded.values()):
        fig = _bars(lang, data.stranded)
        charts["stranded"] = _render("stranded", t(lang, "sec_stranded"), lang, fig)
    if publishes(data.unknown_presumed_share, months):
        fig = _share(lang, data.unknown_presumed_share, months)
        charts["unknown"] = _render("unknown", t(lang, "sec_unknown"), lang, fig)
    return charts
