"""The compile driver: load -> pipeline -> check -> emit -> build, writing the output folder
atomically (a failed compile leaves nothing behind)."""

import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lbc import __version__, progress
from lbc.backends import get_target
from lbc.errors import LbcError, TargetError, UnsupportedOpError
from lbc.frontends import load_model
from lbc.frontends.common import check_graph
from lbc.ir.dtypes import QUANT_DTYPES, dtype
from lbc.ir.ops import OPS, macs
from lbc.ir.quant import dequantize, quantize_input
from lbc.ir.text import print_graph
from lbc.output import MANIFEST, check_checksums, output_folder, write_checksums
from lbc.passes import PassContext, run_pipeline
from lbc.passes.plan_memory import tensor_bytes

REPORT = "report.json"
REPORT_HTML = "report.html"


@dataclass
class Compiled:
    graph: object  # the integer graph
    float_graph: object
    target: object
    quant: str
    warnings: list = field(default_factory=list)
    report: dict = field(default_factory=dict)
    outdir: Path | None = None
    calibration: dict | None = None  # the checked calibration inputs (name -> float batch), if given


def io_specs(graph, names):
    """Manifest-style descriptions ({name, shape, dtype, exp}) of graph tensors, e.g. its inputs."""
    return [{"name": n, "shape": list(graph.types[n].shape), "dtype": graph.types[n].dtype.name,
             "exp": graph.types[n].exp} for n in names]


def _read_arrays(path, what):
    """The array of a .npy, or a dict name -> array of an .npz. Never unpickles, and never allocates
    more than the file holds (a header may claim any shape)."""
    p = Path(path)
    if not p.exists():
        raise LbcError(f"{what} file not found: {path}")
    if p.is_dir():
        raise LbcError(f"{what} file {path} is a folder")
    try:
        with open(p, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                f.seek(0)
                return _read_npy(f, p.stat().st_size, path)
            with zipfile.ZipFile(f) as z:
                out = {}
                for info in z.infolist():
                    with z.open(info) as m:
                        out[info.filename.removesuffix(".npy")] = _read_npy(m, info.file_size,
                                                                            f"{path}[{info.filename}]")
                return out
    except LbcError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LbcError(f"{path}: not a .npy/.npz file ({why})") from None


def _read_npy(f, size, what):
    """One .npy array from an open file of `size` bytes, checking its header against the size."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise LbcError(f"{what}: .npy format version {version[0]}.{version[1]} is not supported (save it "
                       f"with np.save)")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dt = read_header(f, max_header_size=10000)
    if dt.hasobject:
        raise LbcError(f"{what}: holds Python objects; lbc only reads numeric arrays (it never unpickles)")
    nbytes = int(np.prod(shape, dtype=object)) * dt.itemsize
    if nbytes > size:
        raise LbcError(f"{what}: the header claims shape {shape} ({nbytes} bytes) but the file has {size} "
                       f"bytes; is it truncated?")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise LbcError(f"{what}: truncated array data")
    arr = np.frombuffer(data, dtype=dt)
    return (arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)).copy()


def load_inputs(path, names, what="input"):
    """(inputs, labels) from a file: an .npz with one array per input name (a one-input model also
    takes the array `x`) and optionally `y` labels, or a .npy holding the one input of a one-input
    model. `inputs` is a dict name -> array (not yet checked against shapes). Never unpickles."""
    data = _read_arrays(path, what)
    if not isinstance(data, dict):
        if len(names) != 1:
            raise LbcError(f"{path}: a .npy holds one array but the model has {len(names)} inputs "
                           f"({', '.join(names)}); pass an .npz with one array per input name")
        return {names[0]: data}, None
    labels = data.get("y")
    if len(names) == 1 and names[0] not in data and "x" in data:
        return {names[0]: data["x"]}, labels
    missing = [n for n in names if n not in data]
    if missing:
        hint = " (or x)" if len(names) == 1 else ""
        raise LbcError(f"{path}: the {what} .npz needs an array per model input: missing "
                       f"{', '.join(repr(n) for n in missing)}{hint}; it has {', '.join(data) or 'nothing'}")
    return {n: data[n] for n in names}, labels


def load_batch(path, what="input"):
    """(x, y or None) for a one-input model: a .npy array or an .npz with x (and optionally y)."""
    data = _read_arrays(path, what)
    if isinstance(data, dict):
        if "x" not in data:
            raise LbcError(f"{path}: an .npz {what} file needs an array named x (has {', '.join(data)})")
        return data["x"], data.get("y")
    return data, None


def check_inputs(data, specs, what, sequence=False):
    """Validate a batch for inputs described by `specs` (see `io_specs`). `data` is a dict name ->
    array, or one array for a one-input model. Float inputs become float32; integer inputs (token
    ids) must hold integers in their dtype's range. With `sequence` (a model with state) every input
    is a batch of sequences (N, T, ...). Returns a dict name -> array in `specs` order."""
    names = [s["name"] for s in specs]
    if not isinstance(data, dict):
        if len(specs) != 1:
            raise LbcError(f"{what}: the model has {len(specs)} inputs ({', '.join(names)}); give one array "
                           f"per input name")
        data = {names[0]: data}
    unknown = sorted(set(data) - set(names))
    missing = [n for n in names if n not in data]
    if missing or unknown:
        raise LbcError(f"{what}: " + "; ".join(
            ([f"no array for input(s) {', '.join(missing)}"] if missing else [])
            + ([f"array(s) {', '.join(unknown)} match no input (inputs: {', '.join(names)})"] if unknown else [])))
    out, batch = {}, None
    for s in specs:
        label = f"{what}, input {s['name']!r}" if len(specs) > 1 else what
        try:
            x = np.asarray(data[s["name"]])
        except (ValueError, TypeError) as e:
            raise LbcError(f"{label}: not an array of numbers ({e})") from None
        shape = tuple(s["shape"][1:])
        lead = 2 if sequence else 1
        if x.dtype.kind not in "fiub":
            raise LbcError(f"{label}: expected numbers, got dtype {x.dtype}")
        if x.ndim == 0 or x.shape[0] == 0:
            raise LbcError(f"{label}: no samples")
        if x.ndim < lead or tuple(x.shape[lead:]) != shape:
            if x.ndim > lead and int(np.prod(x.shape[lead:])) == int(np.prod(shape)):
                x = x.reshape(tuple(x.shape[:lead]) + shape)
            else:
                extra = "; the model has state: it takes sequences, one time step per call" if sequence else ""
                raise LbcError(f"{label}: shape {tuple(x.shape)} does not match the model input "
                               f"{'(N, T, ' if sequence else '(N, '}{', '.join(map(str, shape))}){extra}")
        if x.shape[0] == 0 or (sequence and x.shape[1] == 0):
            raise LbcError(f"{label}: no samples" if x.shape[0] == 0 else f"{label}: sequences of length 0")
        if batch is not None and x.shape[0] != batch:
            raise LbcError(f"{what}: inputs have different sample counts ({batch} and {x.shape[0]} for "
                           f"{s['name']!r})")
        batch = x.shape[0]
        dt = dtype(s["dtype"])
        if dt.is_float or s.get("exp") is not None:
            with np.errstate(over="ignore"):
                x = x.astype(np.float32)
            if not np.isfinite(x).all():
                raise LbcError(f"{label}: holds NaN or infinite values (or numbers too large for float32)")
            out[s["name"]] = x
            continue
        if x.dtype.kind == "f" and not np.all(np.isfinite(x) & (x == np.floor(x))):
            raise LbcError(f"{label}: integer input {s['name']!r} ({dt.name}) has non-integer values")
        if x.size and (x.min() < dt.lo or x.max() > dt.hi):
            raise LbcError(f"{label}: integer input {s['name']!r} has values {x.min()}..{x.max()}, outside "
                           f"{dt.name} ({dt.lo}..{dt.hi})")
        out[s["name"]] = x.astype(dt.numpy)
    return out


def check_batch(x, graph, what):
    """One-input form of `check_inputs`: the checked array."""
    return next(iter(check_inputs(x, io_specs(graph, graph.inputs), what, graph.stateful).values()))


def load_calibration(path, graph):
    if path is None:
        return None
    data, _ = load_inputs(path, graph.inputs, "calibration")
    return check_inputs(data, io_specs(graph, graph.inputs), f"calibration data {path}", graph.stateful)


def parse_shape(text):
    """--input-shape: "1,64" (a one-input model) -> tuple; "ids=1,8" (repeatable, or joined with
    ';') -> dict input name -> tuple. A list of such strings (the repeated option) is merged."""
    if text is None:
        return None
    items = [t for part in ([text] if isinstance(text, str) else text) for t in part.split(";") if t.strip()]
    named, plain = {}, []
    for item in items:
        name, _, dims_text = item.rpartition("=")
        try:
            dims = tuple(int(d) for d in dims_text.replace("x", ",").split(","))
        except ValueError:
            raise LbcError(f"--input-shape {item!r}: expected comma-separated integers, e.g. 1,64 (or NAME=1,64 "
                           f"for a model with several inputs)") from None
        if any(d <= 0 for d in dims):
            raise LbcError(f"--input-shape {item!r}: dimensions must be positive")
        if any(d >= 2**31 for d in dims):
            raise LbcError(f"--input-shape {item!r}: dimensions must be below 2**31")
        if name:
            named[name.strip()] = dims
        else:
            plain.append(dims)
    if plain and (named or len(plain) > 1):
        raise LbcError("--input-shape: name each input's shape (NAME=1,2,3) when giving several")
    return plain[0] if plain else named


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
        progress.report("import", str(model))
        fg = load_for(model, input_shape, tgt)
    else:
        fg = check_graph(model, model.name or "the model")
    if isinstance(calibration, (str, Path)):
        calibration = load_calibration(calibration, fg)
    elif calibration is not None:
        calibration = check_inputs(calibration, io_specs(fg, fg.inputs), "calibration data", fg.stateful)
    ctx = PassContext(calibration=calibration, granularity=granularity, target=tgt)
    names = passes if passes is not None else tgt.pipeline(quant)
    if not names:
        raise LbcError("the pass list is empty; see lbc passes")
    if dump_after is not None and dump_after != "all" and dump_after not in names:
        raise LbcError(f"--dump-after {dump_after!r}: not a pass of this pipeline ({', '.join(names)}) nor 'all'")
    g = run_pipeline(fg, names, ctx, dump_after=dump_after, on_dump=on_dump)
    return Compiled(g, fg, tgt, quant, ctx.warnings, calibration=calibration)


def load_for(path, input_shape, tgt):
    """Import a model file for target `tgt`. When the import fails, the one error also names what
    `tgt` could not emit in the part that does import (the ONNX importer goes on past problems), so
    a user sees every problem at once."""
    try:
        return load_model(path, input_shape)
    except UnsupportedOpError as e:
        if Path(path).suffix.lower() != ".onnx":
            raise
        from lbc.frontends.onnx import inspect_onnx
        from lbc.opsupport import declared_problems
        g = inspect_onnx(Path(path), input_shape)[0]
        more = declared_problems(g, tgt)
        if not more:
            raise
        raise UnsupportedOpError(f"{e}; and target {tgt.name} cannot emit: " + "; ".join(more.lines())) from None


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
    """lbc.json: what `lbc run` and users need to feed the compiled model. `inputs` and `outputs`
    list every tensor in the order of the C API's lbc_run parameters: name, shape (batch first),
    dtype (i8: a float tensor quantised as q = x * 2**exp; i32: an integer tensor such as token ids
    or an argmax index, exp null) and, for outputs, the softmax axis runners apply after dequantising."""
    g = c.graph
    soft = g.meta.get("output_softmax") or {}
    outputs = io_specs(g, g.outputs)
    for o in outputs:
        o["softmax_axis"] = soft.get(o["name"])
    return {
        "lbc": __version__, "target": c.target.name, "quant": c.quant, "model": g.name,
        "inputs": io_specs(g, g.inputs), "outputs": outputs,
        "stateful": g.stateful, "state_bytes": g.meta.get("memory_plan", {}).get("state_bytes", 0),
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
        progress.report("emit", c.target.name)
        extra = c.target.emit(c.graph, tmp, {}) or {}
        (tmp / "model.lbc").write_text(print_graph(c.graph))
        progress.report("build", c.target.name)
        built = c.target.build(tmp) if build else {}
        rows, totals = layer_table(c)
        if c.calibration is not None:  # quantisation error per layer on the calibration data
            from lbc.accuracy import layer_sqnr
            sq = layer_sqnr(c.float_graph, c.graph, c.calibration, io_specs(c.graph, c.graph.inputs))
            for r in rows:
                r["sqnr_db"] = sq.get(r["name"])
        c.report = {"target": c.target.name, "quant": c.quant, "model": c.graph.name, "layers": rows,
                    "totals": totals, "emit": extra, "build": built, "warnings": c.warnings}
        _dump(tmp / MANIFEST, manifest(c))
        _dump(tmp / REPORT, c.report)
        from lbc.report_html import render as render_html
        (tmp / REPORT_HTML).write_text(render_html(c))
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
        ok = isinstance(m["target"], str) and isinstance(m.get("target_options", {}), dict)
        for t in m["inputs"] + m["outputs"]:
            shape = [int(d) for d in t["shape"]]
            ok = ok and isinstance(t["name"], str) and bool(shape) and min(shape) > 0 \
                and isinstance(t["dtype"], str) and (t["exp"] is None or isinstance(t["exp"], int))
        if not ok or not m["inputs"] or not m["outputs"]:
            raise ValueError("bad field")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise LbcError(f"{outdir} is damaged: {MANIFEST} is not the manifest lbc compile writes; "
                       f"re-run lbc compile") from None
    return m


def softmax(y, axis):
    e = np.exp(y - y.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def quantize_inputs(data, specs):
    """The integer inputs of a compiled model: float inputs quantised at their exp (spikes, b1, then
    clamped to 0..1), integer inputs as they are."""
    out = {}
    for s in specs:
        x = data[s["name"]]
        if s["exp"] is not None:
            x = quantize_input(x, s["exp"])
            if s["dtype"] == "b1":
                x = np.clip(x, 0, 1).astype(np.int8)
        out[s["name"]] = x
    return out


def run_compiled(outdir, x, raw=False):
    """Run a compiled folder on a batch: `x` is one array (one-input model) or a dict input name ->
    array; for a model with state, batches of sequences (N, T, ...), each started from the reset
    state. Returns (outputs, integer outputs, stats); the outputs are arrays for a one-output model,
    else dicts output name -> array. Outputs are dequantised (and softmaxed) unless `raw`."""
    m = read_manifest(outdir)
    tgt = get_target(m["target"], **m.get("target_options", {}))
    ins, outs = m["inputs"], m["outputs"]
    data = check_inputs(x, ins, "input batch", m.get("stateful", False))
    n, batch = len(next(iter(data.values()))), ins[0]["shape"][0]
    if n % batch:
        raise LbcError(f"the model was compiled for a fixed batch of {batch}; the input has {n} samples "
                       f"(give a multiple of {batch}, or compile with --input-shape 1,...)")
    xq = quantize_inputs(data, ins)
    res, stats = tgt.run(Path(outdir), m, xq[ins[0]["name"]] if len(ins) == 1 else xq)
    yqs = [res] if len(outs) == 1 else [res[o["name"]] for o in outs]
    ys = []
    for o, yq in zip(outs, yqs):
        if raw or o["exp"] is None:
            ys.append(yq)
            continue
        y = dequantize(yq, o["exp"])
        if o.get("softmax_axis") is not None:
            y = softmax(y, o["softmax_axis"])
        ys.append(y.astype(np.float32))
    if len(outs) == 1:
        return ys[0], yqs[0], stats
    names = [o["name"] for o in outs]
    return dict(zip(names, ys)), dict(zip(names, yqs)), stats
