"""The three explorers: ipywidgets controls wired to the plain functions of
:mod:`fairsched.explore.fairness`, :mod:`~fairsched.explore.hotspot` and
:mod:`~fairsched.explore.cost`, drawn as one plotly figure each (a ``go.Figure`` updated in place and shown in an
``ipywidgets.Output``: the front end's plotly renderer draws it, so it works wherever plotly
figures display).

Why not plotly's ``FigureWidget``: with plotly 7.1 (its anywidget-based FigureWidget),
anywidget 0.11 and JupyterLab 4.6.6 (all lab extensions enabled), a FigureWidget in headless
Chromium drew empty axes, with no traces and no title: on its own in 3 of 4 runs, inside a
``VBox`` in all 3 (checked 2026-12-01; no error in the browser console), while a figure as
a mime bundle in an ``Output`` always renders (``tests/test_browser.py``). The explorers use
the Output until a FigureWidget renders reliably there.

Sliders send their value when released (``continuous_update=False``: one update per move,
the debounce), and every update runs synchronously in the kernel, so setting a control's
``value`` from Python (tests, ``bench/bench_explore.py``) updates the figure before it
returns. ``last_update_s`` holds the wall-clock time of the latest update [s]. An update
that fails (e.g. a request larger than the KV capacity) shows its message in the status
line instead of a traceback; the figure keeps the last good state.
"""

from __future__ import annotations

import json
import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import sympy as sp
from IPython import get_ipython
from plotly.subplots import make_subplots

from fairsched.display import html_table, verdict_color

from . import cost as C
from . import fairness as F
from . import hotspot as H

__all__ = ["CostExplorer", "FairnessExplorer", "HotspotExplorer"]

_SLIDER = {"continuous_update": False, "style": {"description_width": "130px"},
           "layout": W.Layout(width="420px")}


class _Explorer(W.VBox):
    """Controls (``self.controls``: name -> widget), a figure, a status line and a table."""

    title = ""

    def __init__(self, controls: dict, figure: go.Figure):
        self.controls = controls
        self.status = W.HTML()
        self.math = W.HTMLMath()
        self.table = W.HTML()
        self.last_update_s = float("nan")
        self.error: str | None = None
        self.figure = figure
        self.view = W.Output()
        boxes = list(controls.values())
        half = (len(boxes) + 1) // 2
        panel = W.HBox([W.VBox(boxes[:half]), W.VBox(boxes[half:])])
        super().__init__([W.HTML(f"<b>{self.title}</b>"), panel, self.math, self.view, self.status, self.table])
        for w in controls.values():
            w.observe(lambda _change: self.update(), names="value")
        self.update()

    def values(self) -> dict:
        return {k: w.value for k, w in self.controls.items()}

    def update(self) -> None:
        t0 = time.perf_counter()
        try:
            self._update(self.values())
            self.error = None
        except ValueError as e:  # bad combination of controls: say so, keep the last figure
            self.error = str(e)
        if self.error is None:
            self._draw()
        self.last_update_s = time.perf_counter() - t0
        msg = (f'<span style="color:#9a6700">cannot compute this setting: {self.error}</span>' if self.error
               else f'<span style="color:#57606a">updated in {self.last_update_s * 1000:.0f} ms</span>')
        self.status.value = msg

    def _draw(self) -> None:
        """Show the figure in the output area (plotly's mime bundle, rendered by the front end's
        plotly renderer; replaces the previous picture without flicker)."""
        self.bundle = {"application/vnd.plotly.v1+json": json.loads(self.figure.to_json()),
                       "text/plain": str(self.figure.layout.title.text or "figure")}
        if get_ipython() is None:  # plain Python (a script, the benchmark): nothing to draw on
            return
        # the Output's state, set directly (one widget update; no output capture through the
        # kernel's display hook, which made nbclient wait for an idle message until its timeout)
        self.view.outputs = ({"output_type": "display_data", "data": self.bundle, "metadata": {}},)

    def _update(self, v: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _fig(titles, spacing: float = 0.14, **layout) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=spacing)
    fig.update_layout(template="plotly_white", height=480, margin={"t": 70, "b": 60, "l": 60, "r": 20},
                      legend={"orientation": "h", "y": -0.32}, **layout)
    return fig


# ================================================================== fairness
class FairnessExplorer(_Explorer):
    """Bound vs measured service gap for VTC / DLPM / D²LPM (see :func:`fairness_explorer`)."""

    title = "Fairness explorer: proved service-gap bound vs. a fast simulation"

    def __init__(self, workload=None):
        self.workload = workload if workload is not None else F.default_fairness_workload()
        self.point: F.FairnessPoint | None = None
        big = max(r.input_len + r.output_len for r in self.workload) + self.workload.block_size
        c = {"policy": W.ToggleButtons(options=list(F.POLICIES), value="DLPM", description="policy",
                                       style={"button_width": "70px", "description_width": "130px"}),
             "quantum": W.FloatLogSlider(value=4096, base=2, min=6, max=17, step=0.5, description="Qᵘ [tokens]",
                                         readout_format=".0f", **_SLIDER),
             "quantum_w": W.FloatLogSlider(value=8192, base=2, min=8, max=18, step=0.5, description="Qʷ [tokens]",
                                           readout_format=".0f", **_SLIDER),
             "w_p": W.FloatSlider(value=1.0, min=0.25, max=4.0, step=0.25, description="w_p (prefill)", **_SLIDER),
             "w_q": W.FloatSlider(value=2.0, min=0.25, max=4.0, step=0.25, description="w_q (decode)", **_SLIDER),
             "n_instances": W.IntSlider(value=1, min=1, max=8, description="instances", **_SLIDER),
             "kv_capacity": W.IntSlider(value=24_000, min=max(4000, -(-big // 1000) * 1000), max=200_000,
                                        step=1000, description="KV capacity [tok]", **_SLIDER)}
        if F.supports_admission():
            c["admission"] = W.Dropdown(options=["reserve", "peak"], value="reserve", description="admission",
                                        style={"description_width": "130px"})
        c["service"] = W.ToggleButtons(options=["tokens", "seconds"], value="tokens", description="service",
                                       style={"button_width": "80px", "description_width": "130px"})
        fig = _fig(("worst service gap vs. bounds [service units]", "service W(t) of the worst pair"))
        fig.add_bar(x=[], y=[], name="bound", marker_color="#9bb", row=1, col=1)
        fig.add_bar(x=[], y=[], name="measured gap", row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="lines", line_shape="hv", name="f (ahead)", row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", line_shape="hv", name="g", row=1, col=2)
        fig.update_xaxes(title_text="time [s]", row=1, col=2)
        fig.update_xaxes(tickfont={"size": 10}, row=1, col=1)
        fig.update_yaxes(title_text="service units", row=1, col=1)
        super().__init__(c, fig)

    def params(self, v: dict | None = None) -> F.FairnessParams:
        v = v or self.values()
        pol = F.POLICIES[v["policy"]]
        n = max(v["n_instances"], 2) if pol == "d2lpm" else v["n_instances"]
        return F.FairnessParams(policy=pol, quantum=v["quantum"], quantum_w=v["quantum_w"], w_p=v["w_p"],
                                w_q=v["w_q"], n_instances=n, kv_capacity=v["kv_capacity"],
                                admission=v.get("admission"), service=v.get("service", "tokens"))

    def _update(self, v: dict) -> None:
        p = self.params(v)
        self.controls["quantum_w"].disabled = p.policy != "d2lpm"
        for k in ("w_p", "w_q"):  # predicted seconds do not weigh tokens
            self.controls[k].disabled = p.service == "seconds"
        pt = self.point = F.fairness_point(self.workload, p)
        fmt = (lambda x: f"{x:,.0f}") if pt.unit == "service units" else (lambda x: f"{x:.3g}")
        vs = [u for u in pt.verdicts if u.bound is not None]
        name = {"vtc": "VTC", "dlpm": "DLPM", "d2lpm": "DLPM"}[p.policy]
        labels = [u.check.replace(f"{name} ", "").replace("D2LPM ", "") +
                  ("" if u.scope == "instance 0" else f"<br>[{u.scope.replace('backlogged ', '')}]") for u in vs]
        colours = [(verdict_color(u.status) or ("#555", ""))[0] for u in vs]
        f = self.figure
        with f.batch_update():
            f.data[0].x, f.data[0].y = labels, [u.bound for u in vs]
            f.data[1].x, f.data[1].y = labels, [u.measured for u in vs]
            for k, who in ((2, 0), (3, 1)):
                d = pt.curves[pt.curves.client == pt.pair[who]] if pt.pair else pt.curves.iloc[:0]
                f.data[k].x, f.data[k].y = d.t.to_numpy(), d.W.to_numpy()
            f.layout.title.text = (f"{v['policy']}, K={p.n_instances}, {p.service}: proved bound {fmt(pt.bound)} vs. "
                                   f"measured gap {fmt(pt.measured_gap)} {pt.unit}")
            f.layout.annotations[0].text = f"worst service gap vs. bounds [{pt.unit}]"
            f.layout.yaxis.title.text = pt.unit
        # outside the batch: a batched restyle of a key some traces do not change would send
        # them "undefined" (plotly.js then drops their name / colour)
        f.data[1].marker.color = colours
        for k, who in ((2, 0), (3, 1)):
            f.data[k].name = (pt.pair[who] if pt.pair else "-") + (" (ahead)" if who == 0 else "")
        lhs = sp.Abs(sp.Symbol("W_f") - sp.Symbol("W_g"))
        from fairsched.theory.fairness import X_expr

        x_le = sp.latex(X_expr()) if p.service == "tokens" else sp.latex(F.P_MAX_S + sp.Symbol("k") * F.D_MAX_S)
        seconds = "" if p.service == "tokens" else (
            f"Service in the cost model's predicted seconds (proofs/seconds_bounds.md, Theorem 1): Qᵘ = "
            f"{p.quantum:,.0f} tokens is read as t_pre({p.quantum:,.0f}, 0) = <b>{pt.values['Q_u']:.3g} s</b>; "
            f"t<sub>pre</sub><sup>max</sup> = {pt.values['t^{max}_{pre}']:.3g} s, "
            f"D<sub>max</sub> = {pt.values['D_{max}']:.3g} s. ")
        self.math.value = (rf"$$ {sp.latex(sp.Le(lhs, F.proved_bound_expr(p.policy, service=p.service)))},\quad "
                           rf"X{'_s' if p.service == 'seconds' else ''} \le {x_le} $$" + seconds +
                           f"Evaluated on the workload (k = {pt.k}, the most requests of one client running "
                           f"at once on one instance): <b>{fmt(pt.bound)}</b> {pt.unit}; "
                           f"cache hit rate <b>{(pt.hit_rate or 0):.1%}</b>, throughput "
                           f"<b>{(pt.throughput_tok_s or 0):,.0f}</b> tokens/s.")
        src = "check_run" if p.service == "tokens" else "seconds_check.check_seconds"
        self.table.value = html_table(pt.to_frame()[["check", "scope", "bound", "measured", "ratio", "status"]],
                                      title=f"bound verdicts (fairsched.analysis.{src}) [{pt.unit}]")


def fairness_explorer(workload=None) -> FairnessExplorer:
    """Explore VTC / DLPM / D²LPM fairness on ``workload`` (default: a 120-request
    long-document QA, :func:`~fairsched.explore.fairness.default_fairness_workload`).

    Controls: policy, ``Q^u``, ``Q^w`` (D²LPM), ``w_p``, ``w_q``, instances, KV capacity,
    the service measure (tokens, or the cost model's predicted seconds with the quanta
    converted by :func:`~fairsched.explore.fairness.seconds_quantum`) and the admission rule
    where the simulator has one. Shows the
    proved bound (LaTeX, evaluated on the workload), every bound verdict against the measured
    gap, the service curves of the worst pair, hit rate and throughput.
    """
    return FairnessExplorer(workload)


# ================================================================== hotspot
_REGION_COLOURS = ["#dafbe1", "#fff3b0", "#ffc9c9"]


class HotspotExplorer(_Explorer):
    """LMetric KV$-hotspot phase diagram and quick run (see :func:`hotspot_explorer`)."""

    title = "Hotspot explorer: LMetric's KV$-hotspot regions, t* and t_harm, and a quick run"

    def __init__(self, simulate: bool = True):
        d = H.HotspotParams()
        c = {"x": W.FloatSlider(value=d.x, min=0.05, max=0.95, step=0.05, description="hot share x", **_SLIDER),
             "holder_frac": W.FloatSlider(value=d.holder_frac, min=0.05, max=0.95, step=0.05,
                                          description="|M| / N", **_SLIDER),
             "qps": W.FloatSlider(value=d.qps, min=5, max=120, step=5, description="load [req/s]", **_SLIDER),
             "L": W.IntSlider(value=d.L, min=500, max=32000, step=500, description="class prompt L [tok]", **_SLIDER),
             "cached_frac": W.FloatSlider(value=d.cached_frac, min=0.0, max=0.99, step=0.01,
                                          description="cached fraction", **_SLIDER),
             "n_instances": W.IntSlider(value=d.n_instances, min=2, max=32, description="instances N", **_SLIDER),
             "simulate": W.Checkbox(value=simulate, description="quick simulation (LMetric vs. least-load)")}
        self.run: H.HotspotRun | None = None
        fig = _fig(("regions over (x, |M|/N)", "load ratio (B_M + 1)/(B_M̄ + 1) over time"))
        fig.add_heatmap(z=[[0]], x=[0], y=[0], zmin=-0.5, zmax=2.5, showscale=False, name="region",
                        colorscale=[[0, _REGION_COLOURS[0]], [1 / 3, _REGION_COLOURS[0]], [1 / 3, _REGION_COLOURS[1]],
                                    [2 / 3, _REGION_COLOURS[1]], [2 / 3, _REGION_COLOURS[2]], [1, _REGION_COLOURS[2]]],
                        hovertemplate="x=%{x:.2f}<br>|M|/N=%{y:.2f}<br>%{text}<extra></extra>", row=1, col=1)
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#333"},
                        name="benign iff x ≤ |M|/N", row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="markers", marker={"size": 14, "symbol": "x", "color": "#000"},
                        name="current point", row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="lines", line={"color": "#888", "dash": "dot"}, name="theory (fluid)",
                        row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", line={"color": "#c33"}, name="LMetric (sim)", row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", line={"color": "#36c"}, name="least-load (sim)", row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", line={"color": "#9a6700", "dash": "dash"}, name="t*", row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="lines", line={"color": "#cf222e", "dash": "dash"}, name="t_harm",
                        row=1, col=2)
        fig.update_xaxes(title_text="x (hot class share)", range=[0, 1], row=1, col=1)
        fig.update_yaxes(title_text="|M| / N", range=[0, 1], row=1, col=1)
        fig.update_xaxes(title_text="time [s]", row=1, col=2)
        super().__init__(c, fig)

    def params(self, v: dict | None = None) -> H.HotspotParams:
        v = v or self.values()
        return H.HotspotParams(x=v["x"], holder_frac=v["holder_frac"], qps=v["qps"], L=v["L"],
                               cached_frac=v["cached_frac"], n_instances=v["n_instances"])

    def _update(self, v: dict) -> None:
        p = self.params(v)
        pt = H.hotspot_point(p)
        xs, fs, Z = H.hotspot_regions(p)
        run = self.run = H.hotspot_quick_run(p) if v["simulate"] else None
        t = run.t if run is not None else np.linspace(0, p.run_s, 60)
        theory = H.theory_ratio_curve(p, t)
        top = max([float(np.nanmax(theory))] + [float(np.nanmax(r)) for r in (run.ratio.values() if run else [])])
        f = self.figure
        with f.batch_update():
            f.data[0].x, f.data[0].y, f.data[0].z = xs, fs, Z
            f.data[0].text = [[H.REGIMES[k] for k in row] for row in Z]
            f.data[2].x, f.data[2].y = [p.x], [p.holder_frac]
            f.data[3].x, f.data[3].y = t, theory
            for k, r in ((4, "lmetric"), (5, "least-load")):
                f.data[k].x, f.data[k].y = (t, run.ratio[r]) if run else ([], [])
            for k, key in ((6, "t_star"), (7, "t_harm")):
                ts = pt[key]
                f.data[k].x, f.data[k].y = ([ts, ts], [1, top]) if ts is not None and ts <= p.run_s else ([], [])
            f.layout.title.text = (f"x={p.x:.2f}, |M|/N={p.holder_frac:.2f}, N={p.n_instances}, {p.qps:g} req/s, "
                                   f"kappa={pt['kappa']:.3g}: <b>{pt['regime']}</b>")
        rows = {"regime": pt["regime"], "a (hot, req/s per holder)": pt["a"], "b (cold, req/s per other)": pt["b"],
                "kappa = L_c / u_c": pt["kappa"], "limit ratio a/b": pt["limit_ratio"], "t* [s]": pt["t_star"],
                "t_harm [s]": pt["t_harm"]}
        html = html_table(rows, title="theory (fairsched.theory.lmetric)", verdict_columns=("regime",))
        if run is not None:
            html += html_table(run.table, title=f"quick run: {p.n_requests} arrivals in {p.run_s:.3g} s, FCFS "
                                                f"queues, hot prefix pre-loaded on {p.holders} of {p.n_instances} "
                                                "instances")
        self.table.value = html


def hotspot_explorer(simulate: bool = True) -> HotspotExplorer:
    """Explore LMetric's KV$-hotspot failure conditions: hot share ``x``, ``|M|/N``, load,
    prefix length ``L``, cached fraction (``kappa = 1 / (1 - cached)``) and instances.
    Shows the benign / hotspot / harmful regions (:func:`fairsched.theory.lmetric.classify_regime`),
    the current point, ``t*`` and ``t_harm``, and (``simulate``) LMetric vs. least-load."""
    return HotspotExplorer(simulate)


# ================================================================== cost
class CostExplorer(_Explorer):
    """Prefill / decode cost surfaces and the P-token blind spot (see :func:`cost_explorer`)."""

    title = "Cost explorer: the simulator's prefill and decode cost model"

    def __init__(self, cost_model=None, calibration=None):
        from fairsched.sim.cost import CostModel

        self.prefill_points = self.decode_points = None
        if calibration is not None:
            cm, self.prefill_points, self.decode_points = C.calibration_points(calibration)
            cost_model = cost_model or cm
        self.cost = cost_model if cost_model is not None else CostModel()
        c = {"n2": W.IntSlider(value=1024, min=16, max=8192, step=16, description="ref. new tokens n₂", **_SLIDER),
             "h2": W.IntSlider(value=0, min=0, max=65536, step=256, description="ref. cached h₂", **_SLIDER),
             "n_max": W.IntSlider(value=2048, min=64, max=16384, step=64, description="max new tokens n", **_SLIDER),
             "h_max": W.IntSlider(value=32768, min=1024, max=131072, step=1024, description="max cached h",
                                  **_SLIDER),
             "b_max": W.IntSlider(value=256, min=2, max=1024, step=2, description="max batch B", **_SLIDER),
             "c_max": W.IntSlider(value=400_000, min=10_000, max=2_000_000, step=10_000,
                                  description="max batch context C", **_SLIDER)}
        fig = _fig(("prefill time [ms] over new n x cached h", "decode step [ms] over batch B x context C"),
                   spacing=0.24)
        fig.add_heatmap(z=[[0]], colorscale="Viridis", colorbar={"x": 0.39, "len": 0.8, "thickness": 14, "title": "ms"},
                        hovertemplate="n=%{x}<br>h=%{y}<br>%{z:.2f} ms<extra></extra>", name="prefill", row=1, col=1)
        fig.add_heatmap(z=[[0]], colorscale=[[0, "rgba(207,34,46,0.45)"], [1, "rgba(207,34,46,0.45)"]],
                        showscale=False, hoverinfo="skip", name="blind spot", row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="lines", line={"color": "#cf222e", "width": 2},
                        name="blind spot: h > h*(n), n < n₂", row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="markers", marker={"symbol": "star", "size": 14, "color": "#fff",
                                                             "line": {"width": 1, "color": "#000"}},
                        name="reference (n₂, h₂)", row=1, col=1)
        fig.add_scatter(x=[], y=[], mode="markers", marker={"color": "#f0f", "size": 7}, name="calibration (prefill)",
                        row=1, col=1)
        fig.add_heatmap(z=[[0]], colorscale="Cividis", colorbar={"x": 1.0, "len": 0.8, "thickness": 14, "title": "ms"},
                        hovertemplate="B=%{x}<br>C=%{y}<br>%{z:.2f} ms<extra></extra>", name="decode", row=1, col=2)
        fig.add_scatter(x=[], y=[], mode="markers", marker={"color": "#f0f", "size": 7}, name="calibration (decode)",
                        row=1, col=2)
        fig.update_xaxes(title_text="new tokens n", row=1, col=1)
        fig.update_yaxes(title_text="cached tokens h", row=1, col=1)
        fig.update_xaxes(title_text="batch B [sequences]", row=1, col=2)
        fig.update_yaxes(title_text="context C [tokens]", row=1, col=2)
        super().__init__(c, fig)

    def _update(self, v: dict) -> None:
        cm = self.cost
        ns, hs, Zp = C.prefill_surface(cm, v["n_max"], v["h_max"])
        region = C.blind_spot_region(cm, v["n2"], v["h2"], ns, hs)
        hstar = C.blind_spot_threshold_curve(cm, v["n2"], v["h2"], ns)
        bs, cs, Zd = C.decode_surface(cm, v["b_max"], v["c_max"])
        f = self.figure
        with f.batch_update():
            f.data[0].x, f.data[0].y, f.data[0].z = ns, hs, Zp * 1e3
            f.data[1].x, f.data[1].y, f.data[1].z = ns, hs, np.where(region, 1.0, np.nan)
            keep = np.isfinite(hstar) & (hstar <= hs[-1])
            f.data[2].x, f.data[2].y = ns[keep], hstar[keep]
            f.data[3].x, f.data[3].y = [v["n2"]], [v["h2"]]
            if self.prefill_points is not None and len(self.prefill_points):
                f.data[4].x, f.data[4].y = self.prefill_points.n, self.prefill_points.h
            f.data[5].x, f.data[5].y, f.data[5].z = bs, cs, Zd * 1e3
            if self.decode_points is not None and len(self.decode_points):
                f.data[6].x, f.data[6].y = self.decode_points.batch, self.decode_points.context
            share = float(region.mean())
            f.layout.title.text = (f"{cm.name}: blind spot covers {share:.1%} of the prefill grid "
                                   f"(reference n₂={v['n2']}, h₂={v['h2']})")
        coef = {k: getattr(cm, k) for k in ("prefill_a", "prefill_b", "prefill_c", "decode_a", "decode_b", "decode_c")}
        from fairsched.theory.cost import decode_step_expr, prefill_time_expr

        self.math.value = (rf"$$ t_\mathrm{{prefill}} = {sp.latex(prefill_time_expr())}, \quad "
                           rf"t_\mathrm{{decode}} = {sp.latex(decode_step_expr())} $$")
        self.table.value = html_table(coef, title="coefficients [s, s/token, s/token²] (fairsched.sim.cost.CostModel)")


def cost_explorer(cost_model=None, calibration=None) -> CostExplorer:
    """Explore a cost model (default: the simulator's A100 roofline; ``calibration`` a
    ``cost.json`` from ``fairsched calibrate``, whose coefficients are used when
    ``cost_model`` is None and whose measured points are drawn): prefill time over new and
    cached tokens, decode step time over batch and context, and the P-token blind spot
    (instances LMetric ranks cheaper by new tokens that take longer to prefill)."""
    return CostExplorer(cost_model, calibration)
