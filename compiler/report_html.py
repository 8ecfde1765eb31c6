"""report.html: the compile report as one self-contained page (inline CSS and SVG, no network, no
script): the layer table, bytes and cycles per layer, the RAM timeline of the memory plan against the
part's limit, a histogram of every layer's weights and the per-layer SQNR. Rendered from
templates/report.html.j2; the same compile gives a byte-identical file."""

from pathlib import Path

import jinja2
import numpy as np

from lbc import __version__
from lbc.ir.ops import OPS
from lbc.passes.plan_memory import tensor_bytes

HERE = Path(__file__).resolve().parent
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
CYCLE_KEYS = (("cycles", "cycles"), ("est_cycles", "estimated cycles"), ("est_instructions", "estimated instructions"))


def _bars(values, labels, width=560, bar_h=18, unit=""):
    """Horizontal bars: [(y, label, bar width, text)] and the chart height."""
    top = max([v for v in values if v] + [1])
    out = []
    for i, (v, lab) in enumerate(zip(values, labels)):
        w = 0 if not v else max(1.0, (width - 250) * v / top)
        out.append({"y": 4 + i * (bar_h + 6), "label": lab, "w": round(w, 1),
                    "text": "-" if v is None else f"{v:,}{unit}" if isinstance(v, int) else f"{v:.1f}{unit}"})
    return out, 8 + len(values) * (bar_h + 6)


def _cycles(report):
    """{layer name: cycles} and what they are, from the target's emit report (None when it has none)."""
    layers = (report.get("emit") or {}).get("layers") or []
    for key, what in CYCLE_KEYS:
        got = {(d.get("name") or d.get("layer")): d[key] for d in layers if isinstance(d, dict) and key in d}
        if got:
            return got, what
    return {}, None


def _timeline(graph, ram_limit, width=560, height=220):
    """Rectangles (x: step, y: arena offset) of every planned tensor's lifetime, and the RAM limit line."""
    plan = graph.meta.get("memory_plan") or {}
    offsets = plan.get("offsets") or {}
    if not offsets:
        return None
    nodes = graph.nodes
    first, last = {}, {}
    for t in graph.inputs:
        first[t] = 0
    for i, n in enumerate(nodes):
        for t in n.outputs:
            first.setdefault(t, i)
        for t in n.inputs:
            last[t] = i
    for t in graph.outputs:
        last[t] = len(nodes) - 1
    arena = plan.get("arena_bytes", 0)
    # the part's RAM is drawn to scale unless the arena would be a sliver under it: then the scale
    # follows the arena and the limit line sits at the top, marked as off the scale
    on_scale = bool(ram_limit) and arena * 4 >= ram_limit
    top = max(ram_limit if on_scale else int(arena * 1.3), 1)
    steps = max(len(nodes), 1)
    sx, sy = (width - 60) / steps, (height - 30) / top
    rects = []
    planned = {t: off for t, off in offsets.items() if t in graph.types}  # patch tiles live inside their stage
    for k, (t, off) in enumerate(sorted(planned.items(), key=lambda kv: (first.get(kv[0], 0), kv[1]))):
        size = tensor_bytes(graph.types[t])
        a, b = first.get(t, 0), last.get(t, first.get(t, 0))
        rects.append({"x": round(50 + a * sx, 1), "w": round(max((b - a + 1) * sx - 2, 2), 1),
                      "y": round(height - 20 - (off + size) * sy, 1), "h": round(max(size * sy, 1), 1),
                      "color": COLORS[k % len(COLORS)], "title": f"{t}: {size} B at offset {off}, steps {a}..{b}"})
    limit_y = (round(height - 20 - ram_limit * sy, 1) if on_scale else 10) if ram_limit else None
    ticks = [{"x": round(50 + (i + 0.5) * sx, 1), "label": n.name[:10]} for i, n in enumerate(nodes)]
    return {"rects": rects, "limit_y": limit_y, "limit": ram_limit, "on_scale": on_scale, "arena": arena, "arena_y":
            round(height - 20 - arena * sy, 1), "ticks": ticks, "width": width, "height": height,
            "live": plan.get("steps") or []}


def _histograms(graph, width=170, height=80):
    """Per weighted layer: bars of how often each weight value occurs (32 bins for wide dtypes)."""
    out = []
    for n in graph.nodes:
        if 1 not in OPS[n.op].weights or len(n.inputs) < 2 or n.inputs[1] not in graph.consts:
            continue
        w = np.asarray(graph.consts[n.inputs[1]], np.int64).reshape(-1)
        dt = graph.types[n.inputs[1]].dtype
        if dt.lo is None or w.size == 0:
            continue
        levels = dt.hi - dt.lo + 1
        bins = min(levels, 32)
        edges = np.linspace(dt.lo, dt.hi + 1, bins + 1)
        counts, _ = np.histogram(w, bins=edges)
        top = max(int(counts.max()), 1)
        bw = (width - 10) / bins
        bars = []
        for i, cnt in enumerate(counts):
            lo_v = int(np.ceil(edges[i]))
            hi_v = int(np.ceil(edges[i + 1])) - 1
            h = (height - 22) * int(cnt) / top
            bars.append({"x": round(5 + i * bw, 1), "w": round(max(bw - 1, 0.5), 1), "y": round(height - 16 - h, 1),
                         "h": round(h, 1), "title": f"{lo_v}{'' if lo_v == hi_v else '..' + str(hi_v)}: {int(cnt)}"})
        out.append({"name": n.name, "dtype": dt.name, "count": int(w.size), "zeros": float(np.mean(w == 0)),
                    "bars": bars, "lo": dt.lo, "hi": dt.hi, "width": width, "height": height})
    return out


def render(c):
    """The HTML text for the Compiled `c` (its report already filled)."""
    rep = c.report
    rows = rep["layers"]
    names = [r["name"] for r in rows]
    cyc, cyc_what = _cycles(rep)
    byte_bars, byte_h = _bars([r["weight_bytes"] + r["other_const_bytes"] for r in rows], names, unit=" B")
    cyc_bars, cyc_h = _bars([cyc.get(nm) for nm in names], names) if cyc else ([], 0)
    sq = [r.get("sqnr_db") for r in rows]
    sq_bars, sq_h = _bars(sq, names, unit=" dB") if any(v is not None for v in sq) else ([], 0)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(
        version=__version__, rep=rep, rows=rows, totals=rep["totals"], target=c.target, quant=c.quant,
        byte_bars=byte_bars, byte_h=byte_h, cyc_bars=cyc_bars, cyc_h=cyc_h, cyc_what=cyc_what,
        sq_bars=sq_bars, sq_h=sq_h, timeline=_timeline(c.graph, c.target.ram_bytes),
        hists=_histograms(c.graph), has_sqnr=any(v is not None for v in sq))
