"""Colours of the kit's figures: one colour per scheduler on every chart of a page, and a
client palette that does not repeat below :data:`N_DISTINCT` clients.

Schedulers get colours by their position in the page's list of run labels (the same list
is passed to every figure of a page), clients by their position in the run's client list.
Lines that may coincide get a dash pattern as well (:func:`dash`), so overlapping curves
stay distinguishable.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.colors as pc

__all__ = ["CLIENT_PALETTE", "N_DISTINCT", "SCHEDULER_PALETTE", "client_colors", "dash", "scheduler_colors"]

SCHEDULER_PALETTE: tuple[str, ...] = tuple(pc.qualitative.D3) + tuple(pc.qualitative.Dark2)
"""Colours of schedulers (runs) on a page, in order (18 distinct)."""

CLIENT_PALETTE: tuple[str, ...] = tuple(pc.qualitative.Dark24) + tuple(pc.qualitative.Light24)
"""Colours of clients: 48 distinct hex colours (plotly's Dark24 then Light24)."""

N_DISTINCT = len(CLIENT_PALETTE)
"""Clients that get pairwise different colours."""

_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def scheduler_colors(labels: Sequence[str]) -> dict[str, str]:
    """``label -> colour`` for the runs of one page, in the given order (labels repeat the
    palette only past 18 schedulers; duplicates keep their first colour)."""
    out: dict[str, str] = {}
    for lab in labels:
        if lab not in out:
            out[lab] = SCHEDULER_PALETTE[len(out) % len(SCHEDULER_PALETTE)]
    return out


def client_colors(clients: Sequence[str]) -> dict[str, str]:
    """``client -> colour``; pairwise different for fewer than :data:`N_DISTINCT` + 1 clients."""
    out: dict[str, str] = {}
    for c in clients:
        if c not in out:
            out[c] = CLIENT_PALETTE[len(out) % len(CLIENT_PALETTE)]
    return out


def dash(k: int) -> str:
    """The ``k``-th line dash pattern (cycles through six), so that coinciding lines differ."""
    return _DASHES[k % len(_DASHES)]
