"""Rich display in Jupyter: one compact HTML table for every result type, verdicts coloured.

The result classes (``SimResult``, summaries, gap results, bound verdicts, detection reports,
reproduce outcomes) get a ``_repr_html_`` that calls :func:`html_table` and a
``to_frame()`` / ``to_pandas()`` that returns the same rows as a pandas DataFrame, so a
notebook shows a result by leaving it as the last expression of a cell. One path: every
``_repr_html_`` here goes through :func:`html_table`, every colour through :func:`verdict_color`.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Mapping

import pandas as pd

__all__ = ["Shown", "Summary", "Table", "html_table", "kv_frame", "show", "verdict_color"]

# exact verdict strings of the kit first, then key words (lower case)
_EXACT = {
    "holds": "good", "reproduced": "good", "benign": "good",
    "VIOLATED": "bad", "not reproduced": "bad", "harmful": "bad",
    "published claim violated": "warn", "refuted candidate exceeded": "warn", "same direction": "warn",
    "hotspot": "warn", "holds (vacuous)": "muted", "no bound": "muted", "not applicable": "muted",
}
_WORDS = (("not reproduced", "bad"), ("violated", "warn"), ("exceeded", "warn"), ("confirmed", "bad"),
          ("harm", "bad"), ("holds", "good"), ("reproduced", "good"), ("flagged", "warn"))
_COLOURS = {"good": ("#1a7f37", "#dafbe1"), "bad": ("#cf222e", "#ffebe9"), "warn": ("#9a6700", "#fff8c5"),
            "muted": ("#57606a", "#f6f8fa")}
VERDICT_COLUMNS = ("status", "verdict", "regime", "state")
"""Columns whose cells are coloured by :func:`verdict_color`."""


def verdict_color(text) -> tuple[str, str] | None:
    """(text colour, background) for a verdict string of the kit, or None if it is not one.

    ``holds`` / ``reproduced`` / ``benign``: green; ``VIOLATED`` (a proved bound failed) /
    ``not reproduced`` / ``harmful``: red; a refuted published or candidate bound exceeded,
    ``same direction``, ``hotspot``: amber; ``no bound`` / ``not applicable``: grey."""
    if not isinstance(text, str):
        return None
    kind = _EXACT.get(text) or _EXACT.get(text.strip())
    if kind is None:
        low = text.lower()
        kind = next((k for w, k in _WORDS if w in low), None)
    return _COLOURS.get(kind) if kind else None


def _fmt(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "&ndash;"
        if math.isinf(v):
            return "&infin;"
        a = abs(v)
        if 1e4 <= a < 1e12:  # counts of tokens / service units: digits, not an exponent
            return f"{v:,.0f}"
        return f"{v:.4g}" if (a == 0 or 1e-3 <= a < 1e4) else f"{v:.3e}"
    if isinstance(v, list | tuple):
        return html.escape(", ".join(str(_fmt(x)) for x in v))
    return html.escape(str(v))


def html_table(data, *, title: str | None = None, verdict_columns: Iterable[str] = VERDICT_COLUMNS,
               max_rows: int = 30, index: bool = False) -> str:
    """A compact HTML table.

    Args:
        data: a DataFrame, a list of dicts (rows), or a mapping (shown as two columns,
            ``field`` and ``value``).
        title: caption above the table.
        verdict_columns: columns whose cells are coloured with :func:`verdict_color` (for a
            mapping: rows whose field is one of them).
        max_rows: rows shown (the rest is counted in a last line).
        index: show the DataFrame index.
    Returns:
        An HTML fragment (inline styles only, so it renders the same in JupyterLab, VS Code
        and a static HTML export).
    """
    df = kv_frame(data) if isinstance(data, Mapping) else data
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(list(df))
    vcols = set(verdict_columns)
    is_kv = isinstance(data, Mapping)
    cell = "padding:2px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top"
    out = ['<div class="fairsched-table" style="font-size:0.88em">']
    if title:
        out.append(f'<div style="font-weight:600;margin:2px 0">{html.escape(title)}</div>')
    out.append('<table style="border-collapse:collapse"><thead><tr>')
    cols = list(df.columns)
    heads = ([df.index.name or ""] if index else []) + [str(c) for c in cols]
    out += [f'<th style="{cell};background:#f6f8fa">{html.escape(h)}</th>' for h in heads]
    out.append("</tr></thead><tbody>")
    for k, (idx, row) in enumerate(df.iterrows()):
        if k >= max_rows:
            out.append(f'<tr><td colspan="{len(heads)}" style="{cell};color:#57606a">'
                       f"&hellip; {len(df) - max_rows} more rows</td></tr>")
            break
        out.append("<tr>")
        if index:
            out.append(f'<td style="{cell};font-weight:600">{_fmt(idx)}</td>')
        colour_row = is_kv and str(row.iloc[0]) in vcols
        for c in cols:
            v = row[c]
            style = cell
            if (c in vcols or (colour_row and c == cols[-1])) and (col := verdict_color(v)):
                style += f";color:{col[0]};background:{col[1]};font-weight:600"
            out.append(f'<td style="{style}">{_fmt(v)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def kv_frame(d: Mapping) -> pd.DataFrame:
    """A mapping as a two-column DataFrame (``field``, ``value``)."""
    return pd.DataFrame({"field": [str(k) for k in d], "value": list(d.values())})


class Summary(dict):
    """A run summary (:func:`fairsched.analysis.metrics.summarize`): a plain dict (JSON as
    before) that shows itself as a table in Jupyter."""

    def to_frame(self) -> pd.DataFrame:
        """One row, one column per metric."""
        return pd.DataFrame([dict(self)])

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        return html_table(self, title=f"summary: {self.get('label', '')}")


class Table(list):
    """A list of result rows (verdicts, outcomes) that shows itself as one table.

    ``frame`` turns the list into a DataFrame (default: ``pd.DataFrame(list)``)."""

    def __init__(self, items=(), frame=None, title: str | None = None):
        super().__init__(items)
        self._frame = frame
        self._title = title

    def to_frame(self) -> pd.DataFrame:
        return self._frame(list(self)) if self._frame else pd.DataFrame(list(self))

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        return html_table(self.to_frame(), title=self._title)


class Shown:
    """Any table (a DataFrame, a list of row dicts, or a mapping) shown with :func:`html_table`:
    what a notebook leaves as a cell's last expression instead of printing it."""

    def __init__(self, data, title: str | None = None, **options):
        self.data, self.title, self.options = data, title, options

    def to_frame(self) -> pd.DataFrame:
        if isinstance(self.data, pd.DataFrame):
            return self.data
        return kv_frame(self.data) if isinstance(self.data, Mapping) else pd.DataFrame(list(self.data))

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        return html_table(self.data, title=self.title, **self.options)

    def __repr__(self) -> str:  # a plain-text front end (nbmake, a terminal) still reads it
        head = f"{self.title}\n" if self.title else ""
        return head + self.to_frame().to_string(index=self.options.get("index", False))


def show(data, title: str | None = None, **options) -> Shown:
    """``data`` (DataFrame, rows or mapping) as the kit's compact table, verdicts coloured.

    Args:
        data: a DataFrame, a list of dicts (rows), or a mapping (two columns ``field``/``value``).
        title: caption above the table.
        options: passed to :func:`html_table` (``verdict_columns``, ``max_rows``, ``index``).
    """
    return Shown(data, title, **options)
