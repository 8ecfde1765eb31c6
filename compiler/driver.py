"""The compile driver: load -> pipeline -> check -> emit -> build, writing the output folder
atomically (a failed compile leaves nothing behind)."""

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lbc import __version__
from lbc.backends import get_target
from lbc.errors import LbcError, TargetError
from lbc.frontends import load_model
from lbc.ir.dtypes import QUANT_DTYPES
from lbc.ir.ops import OPS, macs
from lbc.ir.quant import dequantize, quantize_input
from lbc.ir.text import print_graph
from lbc.passes import PassContext, run_pipeline
from lbc.passes.plan_memory import tensor_bytes

MANIFEST = "lbc.json"
REPORT = "report.json"


@dataclass
class Compiled:
    graph: object  # the integer graph
    float_graph: object
    target: object
    quant: str
    warnings: list = field(default_factory=list)
    report: dict = field(default_factory=dict)
    outdir: Path | None = None


def load_batch(path, what="input"):
    """(x, y or None) from a .npy array or an .npz with x (and optionally y labels). Never unpickles."""
    p = Path(path)
    if not p.exists():
        raise LbcError(f"{what} file not found: {path}")
    try:
        data = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise LbcError(f"{path}: not a .npy/.npz file ({e})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        if "x" not in data.files:
            raise LbcError(f"{path}: an .npz {what} file needs an array named x (has {', '.join(data.files)})")
        return data["x"], (data["y"] if "y" in data.files else None)
    return data, None


def load_calibration(path, graph):
    if path is None:
        return None
    x, _ = load_batch(path, "calibration")
    return check_batch(x, graph, f"calibration data {path}")


def check_batch(x, graph, what):
    """x as float32 of the model input's shape: (N, ...) or, for a model with state, sequences (N, T, ...)."""
    return _fit_batch(x, tuple(graph.types[graph.inputs[0]].shape[1:]), graph.stateful, what).astype(np.float32)


def _fit_batch(x, shape, sequence, what):
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise LbcError(f"{what}: expected numbers, got dtype {x.dtype}")
    lead = 2 if sequence else 1
    want = "(N, T, " if sequence else "(N, "
    if x.ndim < lead or tuple(x.shape[lead:]) != shape:
        if x.ndim > lead and int(np.prod(x.shape[lead:])) == int(np.prod(shape)):
            x = x.reshape(tuple(x.shape[:lead]) + shape)
        else:
            extra = ": the model has state and takes sequences, one time step per call" if sequence else ""
            raise LbcError(f"{what}: shape {tuple(x.shape)} does not match the model input {want}"
                           f"{', '.join(map(str, shape))}){extra}")
    if x.shape[0] == 0 or (sequence and x.shape[1] == 0):
        raise LbcError(f"{what}: no samples" if x.shape[0] == 0 else f"{what}: sequences of length 0")
    return x


def parse_shape(text):
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise LbcError(f"--input-shape {text!r}: expected comma-separated integers, e.g. 1,64") from None
    if any(d <= 0 for d in dims):
        raise LbcError(f"--input-shape {text!r}: dimensions must be positive")
    return dims


def check_quant(quant, target):
    if quant not in QUANT_DTYPES:
        raise LbcError(f"unknown quantization {quant!r}; valid: {', '.join(QUANT_DTYPES)}")
    if quant not in target.quants:
        raise TargetError(f"target {target.name} cannot emit {quant} weights; it supports "
                          f"{', '.join(target.quants)}")


def lower(model, target="host", quant=None, calibration=None, input_shape=None, passes=None,
          granularity="channel", dump_after=None, on_dump=None, target_options=None):
    """Import and run the target's pipeline. Returns a Compiled with the integer graph."""
    tgt = get_target(target, **(target_options or {}))
    quant = quant or tgt.default_quant
    check_quant(quant, tgt)
    if isinstance(model, (str, Path)):
        fg = load_model(model, input_shape)
    else:
        fg = model
    ctx = PassContext(calibration=load_calibration(calibration, fg) if isinstance(calibration, (str, Path))
                      else (check_batch(calibration, fg, "calibration data") if calibration is not None else None),
                      granularity=granularity, target=tgt)
    names = passes if passes is not None else tgt.pipeline(quant)
    g = run_pipeline(fg, names, ctx, dump_after=dump_after, on_dump=on_dump)
    return Compiled(g, fg, tgt, quant, ctx.warnings)


def layer_table(c):
    """Per-layer figures for the report: params, weight bytes, MACs, activation bytes, zero fraction."""
    g, rows = c.graph, []
    for n in g.nodes:
        d = OPS[n.op]
        w = g.consts.get(n.inputs[1]) if 1 in d.weights and len(n.inputs) > 1 else None
        params = sum(g.consts[i].size for i in n.inputs if i in g.consts)
        wbytes = c.target.weight_bytes(g.types[n.inputs[1]].dtype.name, w.shape) if w is not None else 0
        other = sum(g.consts[i].nbytes for i in n.inputs if i in g.consts) - (w.nbytes if w is not None else 0)
        rows.append({
            "name": n.name, "op": n.op,
            "shape": list(g.types[n.outputs[0]].shape),
            "params": int(params), "weight_bytes": int(wbytes), "other_const_bytes": int(other),
            "macs": macs(n, [g.types[i].shape for i in n.inputs], [g.types[o].shape for o in n.outputs]),
            "activation_bytes": int(sum(tensor_bytes(g.types[o]) for o in n.outputs)),
            "zero_fraction": float(np.mean(w == 0)) if w is not None else None,
        })
    totals = {k: sum(r[k] for r in rows) for k in ("params", "weight_bytes", "other_const_bytes", "macs")}
    totals["arena_bytes"] = g.meta["memory_plan"]["arena_bytes"] if "memory_plan" in g.meta else None
    return rows, totals


def manifest(c):
    g = c.graph
    i, o = g.inputs[0], g.outputs[0]
    return {
        "lbc": __version__, "target": c.target.name, "quant": c.quant, "model": g.name,
        "input": {"name": i, "shape": list(g.types[i].shape), "exp": g.types[i].exp,
                  "dtype": g.types[i].dtype.name},
        "stateful": g.stateful,
        "state_bytes": g.meta.get("memory_plan", {}).get("state_bytes", 0),
        "output": {"name": o, "shape": list(g.types[o].shape), "exp": g.types[o].exp,
                   "dtype": g.types[o].dtype.name},
        "output_softmax": g.meta.get("output_softmax"),
        "target_options": c.target.options() if hasattr(c.target, "options") else {},
    }


def _dump(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def compile_model(model, out, target="host", quant=None, calibration=None, input_shape=None, passes=None,
                  granularity="channel", build=True, target_options=None):
    """Compile `model` into the folder `out` (replaced atomically). Returns the Compiled."""
    t0 = time.perf_counter()
    c = lower(model, target, quant, calibration, input_shape, passes, granularity, target_options=target_options)
    problems = c.target.check(c.graph)
    if problems:
        raise TargetError(f"the model cannot be compiled for {c.target.name}:\n  - " + "\n  - ".join(problems))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        extra = c.target.emit(c.graph, tmp, {}) or {}
        (tmp / "model.lbc").write_text(print_graph(c.graph))
        built = c.target.build(tmp) if build else {}
        rows, totals = layer_table(c)
        c.report = {"target": c.target.name, "quant": c.quant, "model": c.graph.name, "layers": rows,
                    "totals": totals, "emit": extra, "build": built, "warnings": c.warnings}
        _dump(tmp / MANIFEST, manifest(c))
        _dump(tmp / REPORT, c.report)
        c.report["compile_seconds"] = round(time.perf_counter() - t0, 3)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    c.outdir = out
    return c


def read_manifest(outdir):
    p = Path(outdir) / MANIFEST
    if not p.exists():
        raise LbcError(f"{outdir} is not an lbc output folder (no {MANIFEST}); run lbc compile first")
    return json.loads(p.read_text())


def softmax(y, axis):
    e = np.exp(y - y.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def run_compiled(outdir, x, raw=False):
    """Run a compiled folder on a float batch (N, ...), or on sequences (N, T, ...) for a model with
    state: each sequence starts from the reset state. Returns (outputs, integer outputs, stats)."""
    m = read_manifest(outdir)
    tgt = get_target(m["target"], **m.get("target_options", {}))
    x = _fit_batch(x, tuple(m["input"]["shape"][1:]), m.get("stateful", False), "input batch")
    xq = quantize_input(x, m["input"]["exp"])
    if m["input"].get("dtype") == "b1":  # spikes: values round to 0 or 1
        xq = np.clip(xq, 0, 1).astype(np.int8)
    yq, stats = tgt.run(Path(outdir), m, xq)
    if raw or m["output"]["dtype"] == "i32":
        return yq, yq, stats
    y = dequantize(yq, m["output"]["exp"])
    if m.get("output_softmax"):
        y = softmax(y, m["output_softmax"]["axis"])
    return y.astype(np.float32), yq, stats
