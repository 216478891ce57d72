"""The study's HTML report: objective history, parameter importance, parallel coordinates, a
two-parameter heatmap, in-sample against out-of-sample, and the best trials.

Offline by construction: plotly's JavaScript comes from the installed ``plotly`` package and is written
once as ``plotly.min.js`` next to the report; the page loads nothing from the network.
"""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.trial import TrialState

from .study import best_trials

if TYPE_CHECKING:
    from .optimizer import OptimizeResult

PLOTLY_JS = "plotly.min.js"


def render_report(result: OptimizeResult, study: optuna.Study, rows: list[dict[str, Any]], name: str,
                  directory: Path) -> str:  # fmt: skip
    """The report page; writes ``plotly.min.js`` into ``directory`` if it is not there yet."""
    _write_plotly_js(directory)
    objectives = [o.name for o in result.plan.settings.objectives]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    sections = [
        ("Objective history", _history(complete, objectives, result)),
        ("Parameter importance", _importance(study, complete)),
        ("Parallel coordinates", _parallel(complete, objectives)),
        ("Two-parameter heatmap", _heatmap(study, complete, objectives)),
    ]
    if result.walk_forward is not None:
        sections.append(("In-sample vs out-of-sample", _walk_forward(result)))
    body = "\n".join(f"<h2>{html.escape(title)}</h2>\n{content}" for title, content in sections)
    windowed = len(result.studies) > 1  # walk-forward: one study per window, rows carry their window
    best_keys = {(i + 1 if windowed else None, t.number) for i, s in enumerate(result.studies)
                 for t in best_trials(s, result.plan.settings.objectives)}  # fmt: skip
    best_rows = [r for r in rows if (r.get("window"), r["number"]) in best_keys][:20]
    best_table = _table(best_rows) if best_rows else _note("No feasible trial.")
    title = f"Study {name}: {result.plan.space.strategy}"
    space = ", ".join(html.escape(d.describe()) for d in result.plan.space.dimensions)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script src="{PLOTLY_JS}"></script>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1200px;padding:0 1rem}}
table{{border-collapse:collapse;font-size:.85rem;display:block;overflow-x:auto}}
td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:right;white-space:nowrap}}
p.note{{color:#666}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Objectives: {html.escape(", ".join(f"{o.name} ({o.direction})" for o in result.plan.settings.objectives))};
sampler {result.plan.settings.sampler_name}, seed {result.plan.settings.seed}; space: {space};
{len(rows)} trials ({len(complete)} complete in the {"last window" if len(result.studies) > 1 else "study"}).</p>
<h2>{"Best trials of each window" if windowed else "Best trials"}</h2>{best_table}
{body}
</body></html>
"""


def _write_plotly_js(directory: Path) -> None:
    target = directory / PLOTLY_JS
    if not target.exists():
        from plotly.offline import get_plotlyjs

        tmp = target.with_name(f".{PLOTLY_JS}.tmp")
        tmp.write_text(get_plotlyjs(), encoding="utf-8")
        tmp.replace(target)


def _figure(fig: Any) -> str:
    fig.update_layout(height=420, margin={"l": 60, "r": 30, "t": 60, "b": 40}, template="plotly_white")
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _history(complete: list[Any], objectives: list[str], result: OptimizeResult) -> str:
    import plotly.graph_objects as go

    if not complete:
        return _note("No complete trial yet.")
    fig = go.Figure()
    numbers = [t.number for t in complete]
    if len(objectives) == 2:
        fig.add_scatter(x=[t.values[0] for t in complete], y=[t.values[1] for t in complete], mode="markers",
                        text=[f"#{n}" for n in numbers], name="trials")  # fmt: skip
        front = result.best
        fig.add_scatter(x=[t.values[0] for t in front], y=[t.values[1] for t in front], mode="markers",
                        marker={"size": 11, "color": "crimson"}, name="Pareto front")  # fmt: skip
        fig.update_xaxes(title=objectives[0])
        fig.update_yaxes(title=objectives[1])
        return _figure(fig)
    for i, name in enumerate(objectives):
        values = [t.values[i] for t in complete]
        fig.add_scatter(x=numbers, y=values, mode="markers", name=name)
        if len(objectives) == 1:
            maximise = result.plan.settings.objectives[0].direction == "maximize"
            best = np.maximum.accumulate(values) if maximise else np.minimum.accumulate(values)
            fig.add_scatter(x=numbers, y=best, mode="lines", name="best so far", line={"shape": "hv"})
    fig.update_xaxes(title="trial")
    return _figure(fig)


def _importance(study: optuna.Study, complete: list[Any]) -> str:
    import plotly.graph_objects as go

    if len(complete) < 3:
        return _note("Needs at least three complete trials.")
    try:
        scores = _importances(study)
    except Exception as exc:  # importance needs enough varied trials; the report must not fail over it
        return _note(f"Not available: {exc}")
    names = list(scores)[::-1]
    fig = go.Figure(go.Bar(x=[scores[n] for n in names], y=names, orientation="h"))
    fig.update_xaxes(title="importance for the first objective")
    return _figure(fig)


def _parallel(complete: list[Any], objectives: list[str]) -> str:
    import plotly.graph_objects as go

    if len(complete) < 2:
        return _note("Needs at least two complete trials.")
    names = sorted({k for t in complete for k in t.params})
    dims = []
    for name in names:
        values = [t.params.get(name) for t in complete]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            dims.append({"label": name, "values": values})
        else:
            labels = sorted({str(v) for v in values})
            dims.append({"label": name, "values": [labels.index(str(v)) for v in values],
                         "tickvals": list(range(len(labels))), "ticktext": labels})  # fmt: skip
    for i, name in enumerate(objectives):
        dims.append({"label": name, "values": [t.values[i] for t in complete]})
    color = [t.values[0] for t in complete]
    fig = go.Figure(go.Parcoords(line={"color": color, "colorscale": "Viridis", "showscale": True},
                                 dimensions=dims))  # fmt: skip
    return _figure(fig)


def _heatmap(study: optuna.Study, complete: list[Any], objectives: list[str]) -> str:
    import plotly.graph_objects as go

    numeric = [n for n in sorted({k for t in complete for k in t.params})
               if all(isinstance(t.params.get(n), int | float) and not isinstance(t.params.get(n), bool)
                      for t in complete)]  # fmt: skip
    if len(numeric) < 2 or len(complete) < 3:
        return _note("Needs two numeric parameters and at least three complete trials.")
    try:
        ranked = [n for n in _importances(study) if n in numeric]
    except Exception:  # no ranking: take the parameters in name order
        ranked = []
    x_name, y_name = (ranked + [n for n in numeric if n not in ranked])[:2]
    xs = np.array([t.params[x_name] for t in complete], dtype=float)
    ys = np.array([t.params[y_name] for t in complete], dtype=float)
    zs = np.array([t.values[0] for t in complete], dtype=float)
    x_edges, y_edges = _edges(xs), _edges(ys)
    xi = np.clip(np.searchsorted(x_edges, xs, side="right") - 1, 0, len(x_edges) - 2)
    yi = np.clip(np.searchsorted(y_edges, ys, side="right") - 1, 0, len(y_edges) - 2)
    grid = np.full((len(y_edges) - 1, len(x_edges) - 1), np.nan)
    sums, counts = np.zeros_like(grid), np.zeros_like(grid)
    np.add.at(sums, (yi, xi), zs)
    np.add.at(counts, (yi, xi), 1)
    with np.errstate(invalid="ignore"):
        grid = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centres = [(e[:-1] + e[1:]) / 2 for e in (x_edges, y_edges)]
    fig = go.Figure(go.Heatmap(x=centres[0], y=centres[1], z=grid, colorscale="Viridis",
                               colorbar={"title": objectives[0]}, hoverongaps=False))  # fmt: skip
    fig.update_xaxes(title=x_name)
    fig.update_yaxes(title=y_name)
    return _figure(fig) + _note(f"Mean {objectives[0]} of the trials in each cell; empty cells were not tried.")


def _edges(values: np.ndarray, bins: int = 12) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if math.isclose(lo, hi):
        return np.array([lo - 0.5, hi + 0.5])
    unique = np.unique(values)
    if len(unique) <= bins:  # one cell per tried value
        mids = (unique[:-1] + unique[1:]) / 2
        first, last = unique[0] - (mids[0] - unique[0]), unique[-1] + (unique[-1] - mids[-1])
        return np.concatenate([[first], mids, [last]])
    return np.linspace(lo, hi, bins + 1)


def _walk_forward(result: OptimizeResult) -> str:
    from plotly.subplots import make_subplots

    wf = result.walk_forward
    assert wf is not None
    if not wf.windows:
        return _note("No window produced an out-of-sample run.")
    labels = [f"window {r.window.index}" for r in wf.windows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("return % per window", "stitched out-of-sample equity"))
    fig.add_bar(x=labels, y=[r.in_sample.get("total_return_pct") for r in wf.windows], name="in-sample", row=1, col=1)
    fig.add_bar(x=labels, y=[r.out_of_sample.get("total_return_pct") for r in wf.windows], name="out-of-sample",
                row=1, col=1)  # fmt: skip
    if len(wf.timestamps):
        times = wf.timestamps.astype("datetime64[ms]")
        fig.add_scatter(x=times, y=wf.equity, mode="lines", name="OOS equity", row=1, col=2)
    objective = result.plan.settings.objectives[0].name
    rows = [{"window": r.window.index, f"IS {objective}": r.is_values[0] if r.is_values else None,
             f"OOS {objective}": r.oos_values[0] if r.oos_values else None,
             "IS return %": r.in_sample.get("total_return_pct"),
             "OOS return %": r.out_of_sample.get("total_return_pct"),
             "IS trades": r.in_sample.get("trade_count"), "OOS trades": r.out_of_sample.get("trade_count"),
             "params": " ".join(f"{k}={v}" for k, v in r.params.items())} for r in wf.windows]  # fmt: skip
    return _figure(fig) + _table(rows)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
                   for r in rows)  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _importances(study: optuna.Study) -> dict[str, float]:
    """Importance of each parameter for the first objective. PED-ANOVA (Optuna's own, no scikit-learn,
    which fANOVA needs) looks at what makes the value low, so a maximised objective is negated."""
    evaluator = getattr(optuna.importance, "PedAnovaImportanceEvaluator", None)
    if evaluator is None:
        return dict(optuna.importance.get_param_importances(study, target=lambda t: t.values[0]))
    warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes", category=UserWarning)
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return dict(optuna.importance.get_param_importances(study, target=lambda t: sign * t.values[0],
                                                        evaluator=evaluator()))  # fmt: skip
