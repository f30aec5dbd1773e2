"""One builder for the kit's self-contained HTML pages (``analyze``, ``check``, ``detect``,
``reproduce``, ``sweep``): a title, an intro note, then sections of HTML or plotly figures.

plotly.js is embedded once, with the first figure, so a page opens without network access.
Callers write the page with the kit's atomic writer (all or nothing).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["BASE_CSS", "html_page", "html_table", "is_empty"]

BASE_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px}
table{border-collapse:collapse;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l{text-align:left}.note{color:#555;font-size:0.9em}.empty{color:#555;font-style:italic}"""
"""Style shared by every page; a page adds its own classes with ``css``."""

Cell = object
"""A table cell: any value (shown with ``str``), or ``(value, css_class)``."""


def html_table(head: Sequence[str], rows: Sequence[Sequence[Cell]], *, left: int = 1,
               row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; the first ``left`` columns are left-aligned, the rest right-aligned.

    Args:
        head: column titles.
        rows: one sequence of cells per row; a cell ``(value, css_class)`` gets that class.
        left: number of leading left-aligned (text) columns.
        row_classes: a CSS class per row (``""`` for none).
    """
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = []
    for k, r in enumerate(rows):
        cls = f" class='{row_classes[k]}'" if row_classes and row_classes[k] else ""
        cells = []
        for i, c in enumerate(r):
            c, extra = c if isinstance(c, tuple) and len(c) == 2 else (c, "")
            classes = " ".join(x for x in ("l" if i < left else "", extra) if x)
            attr = f' class="{classes}"' if classes else ""
            cells.append(f"<td{attr}>{html.escape(str(c))}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def is_empty(fig) -> bool:
    """True when a plotly figure has no data point and no annotation (it would draw blank axes)."""
    def n(v):
        try:
            return len(v)
        except TypeError:
            return 0

    has_points = any(n(getattr(t, "x", None)) or n(getattr(t, "y", None)) or n(getattr(t, "values", None))
                     for t in fig.data)
    return not has_points and not fig.layout.annotations


def html_page(title: str, sections: Sequence[tuple[str, object]], *, intro: str = "", css: str = "") -> str:
    """A self-contained HTML page.

    Args:
        title: page title and ``<h1>``.
        sections: ``(heading, body)`` pairs; ``body`` is an HTML string or a plotly figure;
            an empty heading adds no ``<h2>``. A figure with nothing to draw (:func:`is_empty`)
            is replaced by a sentence (its title), never shown as blank axes. Figures get the
            ids ``figure-0``, ``figure-1``, ... so the same sections give the same bytes.
        intro: a note under the title (plain text, escaped).
        css: extra style rules after :data:`BASE_CSS`.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{BASE_CSS}\n{css}</style></head><body><h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p class='note'>{html.escape(intro)}</p>")
    first, n_fig = True, 0
    for head, body in sections:
        if head:
            parts.append(f"<h2>{html.escape(head)}</h2>")
        if isinstance(body, str):
            parts.append(body)
        elif is_empty(body):
            title = getattr(getattr(body.layout, "title", None), "text", None) or "this figure"
            parts.append(f"<p class='empty'>{html.escape(title)}: nothing to draw.</p>")
        else:
            parts.append(body.to_html(full_html=False, include_plotlyjs=first, default_width="100%",
                                      div_id=f"figure-{n_fig}"))  # not plotly's random id: same input, same bytes
            first = False
            n_fig += 1
    parts.append("</body></html>")
    return "\n".join(parts)
