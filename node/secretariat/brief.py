"""Render the Secretariat's monthly regional brief to HTML and PDF.

The CRM members asked the Technical Secretariat in 2016 for a *brief monthly regional report on
migration flows*. :func:`render_brief` turns one :class:`BriefData` (already protected by the
regional publication rule) into two files in ``out_dir``:

* ``brief-YYYY-MM-LANG.html`` — a single self-contained page (inline CSS, inline SVG charts, no
  external request), readable in any browser and printable;
* ``brief-YYYY-MM-LANG.pdf`` — A4, laid out by :mod:`node.secretariat.brief_pdf`.

Both come from the same :class:`~node.secretariat.brief_view.BriefView` and the same chart
figures, so they never disagree. Spanish is the default language; English on request
(``BriefData.language``).

Invariants:
* Unpublished values are "—" in every table and gaps in every chart, never 0.
* Files are written atomically (temporary file, then rename): a failed render leaves any
  earlier brief of the same period and language untouched.
* The same data renders to byte-identical files (no clock is read here: the date printed is
  ``BriefData.generated_at``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from node.errors import StoreError
from node.secretariat.brief_data import BriefData
from node.secretariat.brief_pdf import write_pdf
from node.secretariat.brief_view import BriefView, build_view
from node.secretariat.charts import build_charts

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "brief.html.j2"
STYLESHEET = "brief.css"


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )


def render_html(view: BriefView) -> str:
    """The brief as one self-contained HTML document."""
    env = _environment()
    css = (TEMPLATES / STYLESHEET).read_text(encoding="utf-8")
    return env.get_template(TEMPLATE).render(view=view, css=css)


def brief_paths(data: BriefData, out_dir: Path) -> tuple[Path, Path]:
    """Where :func:`render_brief` writes the HTML and the PDF for ``data``."""
    stem = f"brief-{data.period}-{data.language}"
    return out_dir / f"{stem}.html", out_dir / f"{stem}.pdf"


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def render_brief(data: BriefData, out_dir: Path) -> tuple[Path, Path]:
    """Write the brief for ``data`` as HTML and PDF into ``out_dir``; return both paths."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create {out_dir}: {exc.strerror}", hint="choose a writable output directory"
        ) from exc
    charts = build_charts(data)
    view = build_view(data, charts)
    html_path, pdf_path = brief_paths(data, out_dir)
    html = render_html(view)
    try:
        _atomic(html_path, lambda p: _write_text(p, html))
        _atomic(pdf_path, lambda p: write_pdf(view, p))
    except OSError as exc:
        raise StoreError(
            f"cannot write the brief into {out_dir}: {exc.strerror}",
            hint="check the directory's permissions and free space",
        ) from exc
    return html_path, pdf_path
