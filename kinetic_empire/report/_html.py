"""HTML building blocks of the report: style, tables, headline cards and plotly chart slots."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2430;background:#f4f6f9}
main{max-width:1360px;margin:0 auto;padding:1.2em 1.5em 3em}
header{background:#1f2a3c;color:#f4f6f9;padding:1.1em 1.5em}
header .inner{max-width:1360px;margin:0 auto}
header h1{font-size:1.35em;margin:0 0 .35em}
header .meta{font-size:.85em;color:#c3cad6;line-height:1.6}
header .meta b{color:#fff;font-weight:600}
h2{font-size:1.05em;margin:1.8em 0 .6em;color:#1f2a3c;text-transform:uppercase;letter-spacing:.04em}
h3{font-size:.95em;margin:.2em 0 .5em;color:#3b4658}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6em;margin-top:1em}
.card{background:#fff;border:1px solid #e1e5eb;border-radius:6px;padding:.55em .8em}
.card .k{font-size:.72em;color:#6b7585;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:1.25em;font-weight:600;margin-top:.1em;white-space:nowrap}
.panel{background:#fff;border:1px solid #e1e5eb;border-radius:6px;padding:.8em 1em;margin-bottom:1em}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.grid2>.panel{margin-bottom:0;min-width:0}
.chart{width:100%}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.8em;width:100%}
th,td{border-bottom:1px solid #edf0f4;padding:.3em .5em;text-align:right;white-space:nowrap}
th{background:#f3f5f8;color:#3b4658;font-weight:600;position:sticky;top:0}
td.l,th.l{text-align:left}
td.wrap{white-space:normal;min-width:8em}
tr:hover td{background:#f7f9fc}
.tall{max-height:560px;overflow:auto}
.muted{color:#6b7585;font-size:.85em}
.warn{background:#fff6e0;border:1px solid #f0d48a;border-radius:6px;padding:.5em .8em;margin-top:1em;
font-size:.88em}
pre{background:#f6f8fa;padding:1em;overflow-x:auto;font-size:.78em;margin:0}
.pos{color:#17803d}.neg{color:#b42318}
details summary{cursor:pointer;color:#3b4658;font-weight:600;font-size:.92em}
.nojs{color:#b42318;font-size:.9em}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
"""

# draws every chart slot from its JSON; a missing plotly.min.js shows a note instead of empty boxes
SCRIPT = """
(function(){
  var slots=document.querySelectorAll('div.chart[data-figure]');
  if(typeof Plotly==='undefined'){
    slots.forEach(function(d){d.innerHTML='<p class="nojs">plotly.min.js did not load: keep it next to '+
      'report.html to see this chart (equity.png has the static equity chart).</p>';});
    return;
  }
  slots.forEach(function(d){
    var fig=JSON.parse(document.getElementById(d.getAttribute('data-figure')).textContent);
    var config={responsive:true,displaylogo:false,modeBarButtonsToRemove:['select2d','lasso2d']};
    Object.assign(config,fig.config||{});
    Plotly.newPlot(d,fig.data,fig.layout,config);
  });
})();
"""


def cls(*names: str) -> str:
    joined = " ".join(n for n in names if n)
    return f' class="{joined}"' if joined else ""


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    left: int = 1,
    tone: Callable[[int, int], str] | None = None,
    wrap: Sequence[int] = (),
) -> str:
    """An HTML table; the first ``left`` columns are left-aligned (labels), the rest right (numbers).

    ``tone(row, col)`` may add a CSS class to a cell (``pos``/``neg`` for PnL); columns in ``wrap``
    may break lines (free text such as tags).
    """
    head = "".join(f"<th{cls('l' if i < left or i in wrap else '')}>{escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(
            f"<td{cls('l' if i < left or i in wrap else '', 'wrap' if i in wrap else '', tone(r, i) if tone else '')}>"
            f"{escape(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def sign_class(value: float) -> str:
    return "pos" if value > 0 else "neg" if value < 0 else ""


def cards(items: Sequence[tuple[str, str, str]]) -> str:
    """Headline figures: (label, value, css class)."""
    inner = "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div{cls("v", c)}>{escape(v)}</div></div>'
        for k, v, c in items
    )
    return f'<div class="cards">{inner}</div>'


def chart(slot: str, figure: dict[str, Any]) -> str:
    """A chart slot and its figure as inline JSON (``</`` escaped so no string can end the script)."""
    data = json.dumps(figure, sort_keys=True, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    height = int(figure.get("layout", {}).get("height", 400))
    return (
        f'<div class="chart" id="{slot}" data-figure="{slot}-data" style="height:{height}px"></div>'
        f'<script type="application/json" id="{slot}-data">{data}</script>'
    )
