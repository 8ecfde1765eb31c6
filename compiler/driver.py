"""The compile driver: load -> pipeline -> check -> emit -> build, writing the output folder
atomically (a failed compile leaves nothing behind)."""

import json
import os
import zipfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lbc import __version__
from lbc.backends import get_target
from lbc.errors import LbcError, TargetError
from lbc.frontends import load_model
from lbc.frontends.common import check_graph
from lbc.ir.dtypes import QUANT_DTYPES
from lbc.ir.ops import OPS, macs
from lbc.ir.quant import dequantize, quantize_input
from lbc.ir.text import print_graph
from lbc.output import MANIFEST, check_checksums, output_folder, write_checksums
from lbc.passes import PassContext, run_pipeline
from lbc.passes.plan_memory import tensor_bytes

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
    """(x, y or None) from a .npy array or an .npz with x (and optionally y labels). Never unpickles,
    and never allocates more than the file holds (a header may claim any shape)."""
    p = Path(path)
    if not p.exists():
        raise LbcError(f"{what} file not found: {path}")
    if p.is_dir():
        raise LbcError(f"{what} file {path} is a folder")
    try:
        with open(p, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                with zipfile.ZipFile(f) as z:
                    names = {n.removesuffix(".npy"): n for n in z.namelist()}
                    if "x" not in names:
                        raise LbcError(f"{path}: an .npz {what} file needs an array named x (has "
                                       f"{', '.join(sorted(names)) or 'nothing'})")
                    arrays = []
                    for key in ("x", "y"):
                        if key in names:
                            info = z.getinfo(names[key])
                            with z.open(info) as m:
                                arrays.append(_read_npy(m, info.file_size, f"{path}[{key}]"))
                        else:
                            arrays.append(None)
                    return arrays[0], arrays[1]
            f.seek(0)
            return _read_npy(f, p.stat().st_size, path), None
    except LbcError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise LbcError(f"{path}: not a .npy/.npz file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _read_npy(f, size, what):
    """One .npy array from an open file of `size` bytes, checking its header against the size."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise LbcError(f"{what}: .npy format version {version[0]}.{version[1]} is not supported (save it with np.save)")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(f, max_header_size=10000)
    if dtype.hasobject:
        raise LbcError(f"{what}: holds Python objects; lbc only reads numeric arrays (it never unpickles)")
    count = int(np.prod(shape, dtype=object))
    if count * dtype.itemsize > size:
        raise LbcError(f"{what}: the header claims shape {shape} ({count * dtype.itemsize} bytes) but the file "
                       f"has {size} bytes; is it truncated?")
    data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise LbcError(f"{what}: truncated array data")
    arr = np.frombuffer(data, dtype=dtype)
    return (arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)).copy()


def load_calibration(path, graph):
    if path is None:
        return None
    x, _ = load_batch(path, "calibration")
    return check_batch(x, graph, f"calibration data {path}")


def check_batch(x, graph, what):
    return fit_batch(x, tuple(graph.types[graph.inputs[0]].shape), what)


def fit_batch(x, shape, what):
    """A float32 batch (N, *shape[1:]) from x: real numbers, at least one sample, all finite."""
    shape = tuple(shape[1:])
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise LbcError(f"{what}: not an array of numbers ({e})") from None
    if x.dtype.kind not in "fiu":
        raise LbcError(f"{what}: expected numbers, got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[0] == 0:
        raise LbcError(f"{what}: no samples")
    if tuple(x.shape[1:]) != shape:
        if x.shape[1:] and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
            x = x.reshape((x.shape[0],) + shape)
        else:
            raise LbcError(f"{what}: shape {tuple(x.shape)} does not match the model input (N, "
                           f"{', '.join(map(str, shape))})")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise LbcError(f"{what}: holds NaN or infinite values (or numbers too large for float32)")
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
    if any(d >= 2**31 for d in dims):
        raise LbcError(f"--input-shape {text!r}: dimensions must be below 2**31")
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
        fg = check_graph(model, model.name or "the model")
    ctx = PassContext(calibration=load_calibration(calibration, fg) if isinstance(calibration, (str, Path))
                      else (check_batch(calibration, fg, "calibration data") if calibration is not None else None),
                      granularity=granularity, target=tgt)
    names = passes if passes is not None else tgt.pipeline(quant)
    if not names:
        raise LbcError("the pass list is empty; see lbc passes")
    if dump_after is not None and dump_after != "all" and dump_after not in names:
        raise LbcError(f"--dump-after {dump_after!r}: not a pass of this pipeline ({', '.join(names)}) nor 'all'")
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
        "input": {"name": i, "shape": list(g.types[i].shape), "exp": g.types[i].exp},
        "output": {"name": o, "shape": list(g.types[o].shape), "exp": g.types[o].exp,
                   "dtype": g.types[o].dtype.name},
        "output_softmax": g.meta.get("output_softmax"),
        "target_options": c.target.options() if hasattr(c.target, "options") else {},
    }


def _dump(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def compile_model(model, out, target="host", quant=None, calibration=None, input_shape=None, passes=None,
                  granularity="channel", build=True, target_options=None, force=False):
    """Compile `model` into the folder `out` (see lbc.output for which folders lbc writes into and
    how a failed compile leaves nothing behind). Returns the Compiled."""
    t0 = time.perf_counter()
    keep = [p for p in (model, calibration, (target_options or {}).get("samples")) if isinstance(p, (str, Path))]
    with output_folder(out, force=force, keep=keep) as tmp:
        c = lower(model, target, quant, calibration, input_shape, passes, granularity,
                  target_options=target_options)
        problems = c.target.check(c.graph)
        if problems:
            raise TargetError(f"the model cannot be compiled for {c.target.name}", details=problems)
        extra = c.target.emit(c.graph, tmp, {}) or {}
        (tmp / "model.lbc").write_text(print_graph(c.graph))
        built = c.target.build(tmp) if build else {}
        rows, totals = layer_table(c)
        c.report = {"target": c.target.name, "quant": c.quant, "model": c.graph.name, "layers": rows,
                    "totals": totals, "emit": extra, "build": built, "warnings": c.warnings}
        _dump(tmp / MANIFEST, manifest(c))
        _dump(tmp / REPORT, c.report)
        write_checksums(tmp)
        c.report["compile_seconds"] = round(time.perf_counter() - t0, 3)
    c.outdir = Path(os.path.abspath(out))
    return c


def read_manifest(outdir):
    p = Path(outdir) / MANIFEST
    if not p.is_file():
        raise LbcError(f"{outdir} is not an lbc output folder (no {MANIFEST}); run lbc compile first")
    check_checksums(outdir)
    try:
        m = json.loads(p.read_text())
        shape = [int(d) for d in m["input"]["shape"]]
        if not isinstance(m["target"], str) or not isinstance(m.get("target_options", {}), dict) \
                or not shape or min(shape) <= 0 or not isinstance(m["input"]["exp"], int):
            raise ValueError("bad field")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise LbcError(f"{outdir} is damaged: {MANIFEST} is not the manifest lbc compile writes; "
                       f"re-run lbc compile") from None
    return m


def softmax(y, axis):
    e = np.exp(y - y.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def run_compiled(outdir, x, raw=False):
    """Run a compiled folder on a float batch. Returns (outputs, integer outputs, stats)."""
    m = read_manifest(outdir)
    tgt = get_target(m["target"], **m.get("target_options", {}))
    x = fit_batch(x, m["input"]["shape"], "input batch")
    batch = m["input"]["shape"][0]
    if len(x) % batch:
        raise LbcError(f"the model was compiled for a fixed batch of {batch}; the input has {len(x)} samples "
                       f"(give a multiple of {batch}, or compile with --input-shape 1,...)")
    xq = quantize_input(x, m["input"]["exp"])
    yq, stats = tgt.run(Path(outdir), m, xq)
    if raw or m["output"]["dtype"] == "i32":
        return yq, yq, stats
    y = dequantize(yq, m["output"]["exp"])
    if m.get("output_softmax"):
        y = softmax(y, m["output_softmax"]["axis"])
    return y.astype(np.float32), yq, stats
