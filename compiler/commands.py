"""Subcommands of the `lbc` CLI: compile, inspect, run, verify, passes, targets, ops."""

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from lbc import driver, progress
from lbc.errors import InternalError, LbcError, ModelError, safe_name
from lbc.output import write_file


def register(sub):
    p = sub.add_parser("compile", help="compile a model for a target")
    p.add_argument("model")
    p.add_argument("--target", default="host", help="target name (see lbc targets)")
    p.add_argument("--quant", help="weight dtype: int8, int4, int2, ternary, pentary (default: the target's)")
    p.add_argument("-o", "--output", help="output folder (default: build/<model name>)")
    p.add_argument("--calibration", help="inputs used to choose activation scales: a .npy batch (one-input model) "
                                         "or an .npz with one batch per input name")
    p.add_argument("--input-shape", action="append",
                   help="full input shape, e.g. 1,64 (needed for dynamic dimensions); NAME=1,64 per input of a "
                        "model with several (repeat the option)")
    p.add_argument("--granularity", choices=("channel", "tensor"), default="channel",
                   help="weight scales per output channel (default) or per tensor")
    p.add_argument("--passes", help="comma-separated pass list replacing the target's pipeline")
    p.add_argument("--emit", choices=("firmware", "ir"), default="firmware",
                   help="ir: print the final IR to stdout instead of writing an output folder")
    p.add_argument("--dump-after", metavar="PASS", help="print the IR after this pass (or 'all')")
    p.add_argument("--no-build", action="store_true", help="write sources only, do not run the toolchain")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder that lbc did not make (files of the same names are replaced)")
    _target_flags(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("inspect", help="ops, shapes, params, MACs and bytes per quantisation of a model, marking "
                                       "what cannot be imported (or, with --target, emitted)")
    p.add_argument("model")
    p.add_argument("--input-shape", action="append")
    p.add_argument("--target", help="also mark what this target cannot emit, and why")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="run a compiled folder on a batch of float inputs")
    p.add_argument("dir")
    p.add_argument("--input", required=True,
                   help="inputs: an .npz with one batch (N, ...) per input name, or for a one-input model a .npy "
                        "(or an .npz with x)")
    p.add_argument("--output", help="write the outputs: a .npy for a one-output model, else an .npz by output name")
    p.add_argument("--raw", action="store_true", help="write the raw integer outputs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("verify", help="compiled code against the reference interpreter (and the float model) on "
                                      "a data set; MODEL may be a model file or an existing lbc output folder")
    p.add_argument("model")
    p.add_argument("--target", help="target name (default host; not with an output folder)")
    p.add_argument("--quant")
    p.add_argument("--data", required=True, help=".npz with the inputs (x, or one array per input name) and "
                                                 "optionally y (labels)")
    p.add_argument("--calibration")
    p.add_argument("--input-shape", action="append")
    p.add_argument("--granularity", choices=("channel", "tensor"), default="channel")
    _target_flags(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("passes", help="list the passes and each target's pipeline")
    p.set_defaults(func=cmd_passes)
    p = sub.add_parser("targets", help="list the targets with their budgets and default quantisation")
    p.set_defaults(func=cmd_targets)
    p = sub.add_parser("ops", help="which ONNX ops each target can run (from the frontend's op table and each "
                                   "target's declaration)")
    p.add_argument("--markdown", action="store_true", help="print docs/ops.md (the full tables with limits)")
    p.set_defaults(func=cmd_ops)


def _target_flags(p):
    p.add_argument("--flash", type=positive_int, help="override the target's flash/ROM budget in bytes")
    p.add_argument("--ram", type=positive_int, help="override the target's RAM budget in bytes")
    p.add_argument("--samples", help=".npz (x, optional y) of inputs compiled into a demo image (nes: the ROM's "
                                     "samples the controller steps through)")


def positive_int(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {text}")
    return v


def _target_options(args):
    opts = {}
    if getattr(args, "flash", None) is not None:
        opts["flash_bytes"] = args.flash
    if getattr(args, "ram", None) is not None:
        opts["ram_bytes"] = args.ram
    if getattr(args, "samples", None):
        opts["samples"] = args.samples
    return opts


def _passes(args):
    if args.passes is None:
        return None
    names = [p.strip() for p in args.passes.split(",") if p.strip()]
    if not names:
        raise LbcError(f"--passes {args.passes!r} names no pass; see lbc passes")
    return names


def _print_table(report):
    rows = report["layers"]
    sq = any("sqnr_db" in r for r in rows)  # with calibration data: the quantisation error per layer
    head = f"{'layer':<24} {'op':<14} {'params':>8} {'w bytes':>8} {'MACs':>9} {'act B':>7} {'zeros':>6}" + \
        (f" {'SQNR dB':>8}" if sq else "")
    print(head)
    print("-" * len(head))
    for r in rows:
        z = f"{r['zero_fraction']:.0%}" if r["zero_fraction"] is not None else "-"
        q = (f" {r['sqnr_db'] if r.get('sqnr_db') is not None else '-':>8}") if sq else ""
        print(f"{r['name'][:24]:<24} {r['op']:<14} {r['params']:>8} {r['weight_bytes']:>8} {r['macs']:>9} "
              f"{r['activation_bytes']:>7} {z:>6}{q}")
    t = report["totals"]
    print("-" * len(head))
    print(f"{'total':<24} {'':<14} {t['params']:>8} {t['weight_bytes']:>8} {t['macs']:>9} "
          f"{'arena ' + str(t['arena_bytes']) if t['arena_bytes'] is not None else '':>14}")


def cmd_compile(args):
    shape = driver.parse_shape(args.input_shape)
    if args.emit == "ir" or args.dump_after:
        def dump(name, g):
            print(f"# IR after {name}")
            print(driver.print_graph(g), end="")
        c = driver.lower(args.model, args.target, args.quant, args.calibration, shape, _passes(args),
                         args.granularity, args.dump_after, dump, _target_options(args))
        progress.finish()
        for w in c.warnings:
            print(f"lbc: warning: {w}", file=sys.stderr)
        if args.emit == "ir":
            if not args.dump_after:
                print(driver.print_graph(c.graph), end="")
            return 0
    out = args.output or str(Path("build") / Path(args.model).stem)
    c = driver.compile_model(args.model, out, args.target, args.quant, args.calibration, shape, _passes(args),
                             args.granularity, build=not args.no_build, target_options=_target_options(args),
                             force=args.force)
    progress.finish()
    for w in c.warnings:
        print(f"lbc: warning: {w}", file=sys.stderr)
    print(f"compiled {args.model} for {c.target.name} ({c.quant} weights) -> {out}")
    _print_table(c.report)
    for line in c.target.summary(c.report) if hasattr(c.target, "summary") else []:
        print(line)
    return 0


def cmd_inspect(args):
    """The graph as far as it imports - ops, shapes, params, MACs - with every node that cannot be
    imported (or, with --target, emitted) marked; then one error listing all problems, if any."""
    from lbc.backends import get_target
    from lbc.backends.base import packed_row_bytes
    from lbc.errors import Problems
    from lbc.frontends import load_model
    from lbc.ir.dtypes import QUANT_DTYPES
    from lbc.ir.ops import OPS, macs
    path = Path(args.model)
    shape = driver.parse_shape(args.input_shape)
    tgt = get_target(args.target) if args.target else None
    if path.suffix.lower() == ".onnx" and path.is_file():
        from lbc.frontends.onnx import inspect_onnx, opset_of
        g, problems, trace, inferred, onnx_model = inspect_onnx(path, shape)
        inits = {i.name: int(np.prod(i.dims)) for i in onnx_model.graph.initializer}
        onnx_nodes = list(onnx_model.graph.node)
        head = f"{path}: cannot import (opset {opset_of(onnx_model)})"
    else:
        g, problems, trace, head = load_model(path, shape), Problems(), None, f"{path}"
    target_marks = _target_marks(g, tgt) if tgt else {}

    def io(names):
        return ", ".join(f"{safe_name(t)} {g.types[t].dtype.name}{list(g.types[t].shape)}" for t in names
                         if t in g.types) or "-"
    print(f"model {safe_name(g.name)}: inputs {io(g.inputs)}; outputs {io(g.outputs)}")
    w = 24
    header = f"{'node':<{w}} {'op':<20} {'output shape':<18} {'params':>8} {'MACs':>9}  notes"
    print(header)
    print("-" * len(header))
    tot_p = tot_m = 0
    wbytes = {q: 0 for q in QUANT_DTYPES}
    fbytes = 0
    by_name = {n.name: n for n in g.nodes}

    def ir_row(n):
        nonlocal tot_p, tot_m, fbytes
        params = sum(g.consts[i].size for i in n.inputs if i in g.consts)
        mac = macs(n, [g.types[i].shape for i in n.inputs], [g.types[o].shape for o in n.outputs])
        tot_p, tot_m, fbytes = tot_p + params, tot_m + mac, fbytes + params * 4
        if 1 in OPS[n.op].weights and len(n.inputs) > 1:
            wt = g.consts[n.inputs[1]]
            for q, dt in QUANT_DTYPES.items():
                wbytes[q] += packed_row_bytes(dt.name, int(np.prod(wt.shape[1:]))) * wt.shape[0]
        note = target_marks.get(n.name, "")
        print(f"{safe_name(n.name, w):<{w}} {n.op:<20} {str(list(g.types[n.outputs[0]].shape)):<18} {params:>8} "
              f"{mac:>9}  {note}".rstrip())

    if trace is None:
        for n in g.nodes:
            ir_row(n)
    else:
        for (nname, op_type, ir_names, why), node in zip(trace, onnx_nodes):
            if why is None:
                for name in ir_names:
                    ir_row(by_name[name])
                continue
            out_shape = inferred.get(node.output[0]) if node.output else None
            params = sum(inits.get(i, 0) for i in node.input)
            tot_p += params
            print(f"{safe_name(nname, w):<{w}} {safe_name(op_type, 13) + ' (onnx)':<20} "
                  f"{str(list(out_shape)) if out_shape is not None else '?':<18} {params:>8} {'?':>9}  "
                  f"!! {why if why.startswith('not imported') else 'cannot import: ' + why}")
    print("-" * len(header))
    print(f"{'total':<{w}} {'':<20} {'':<18} {tot_p:>8} {tot_m:>9}"
          + ("  (MACs of the imported nodes only)" if problems else ""))
    print(f"weight bytes: f32 {fbytes}, " + ", ".join(f"{q} {b}" for q, b in wbytes.items())
          + " (weights packed per row, biases and scales not included)")
    parts = [problems.message(head)] if problems else []
    if tgt is not None:
        tproblems = _target_problems(g, tgt, problems)
        print(f"target {tgt.name}: " + ("can emit this model" if not tproblems else
                                         f"{len(tproblems)} problem(s), listed in the error"))
        if tproblems:
            parts.append(f"{'' if parts else f'{path}: '}target {tgt.name} cannot emit it: " + "; ".join(tproblems))
    if parts:
        raise ModelError("; ".join(parts))
    return 0


def _target_marks(g, tgt):
    """node name -> why `tgt` cannot emit it (from the target's op-support declaration)."""
    from lbc.opsupport import emits
    return {n.name: f"!! {tgt.name} cannot emit: op {n.op} is not supported" for n in g.nodes if not emits(tgt, n.op)}


def _target_problems(g, tgt, import_problems):
    """What `tgt` cannot emit: its op-support and input/output declarations on the float graph;
    when those and the import are fine, its full check() after its own pipeline (budgets, dtypes)."""
    from lbc.opsupport import declared_problems
    p = declared_problems(g, tgt)
    if not p and not import_problems:
        try:
            c = driver.lower(g, tgt.name, None)
            for line in tgt.check(c.graph):
                p.add(line)
        except LbcError as e:
            p.add(str(e))
    return p.lines()


def cmd_run(args):
    m = driver.read_manifest(args.dir)
    names = [o["name"] for o in m["outputs"]]
    if args.output and len(names) > 1 and Path(args.output).suffix != ".npz":
        raise LbcError(f"the model has {len(names)} outputs ({', '.join(map(safe_name, names))}); --output needs "
                       f"an .npz path (one array per output name)")
    x, _ = driver.load_inputs(args.input, [i["name"] for i in m["inputs"]])
    y, yq, stats = driver.run_compiled(args.dir, x, raw=args.raw)
    outs = yq if args.raw else y
    outs = outs if isinstance(outs, dict) else {names[0]: outs}
    written = None
    if args.output:
        if len(names) > 1:
            buf = io.BytesIO()
            np.savez(buf, **outs)
            written = _write_output(args.output, buf.getvalue(), ".npz")
        else:
            buf = io.BytesIO()
            np.save(buf, outs[names[0]])
            written = _write_output(args.output, buf.getvalue(), ".npy")
    n = len(next(iter(outs.values())))
    print(f"ran {n} sample(s) on {m['target']}: "
          + ", ".join(f"{safe_name(k) + ' ' if len(outs) > 1 else 'output '}{list(v.shape)}" for k, v in outs.items())
          + (f" -> {written}" if written else ""))
    for k, v in stats.items():
        if not isinstance(v, (list, dict)):
            print(f"  {k}: {v}")
    if not args.output:
        for name, out in outs.items():
            if len(outs) > 1:
                print(f"  {safe_name(name)}:")
            flat = out.reshape(len(out), -1)
            for i, row in enumerate(flat[:8]):
                print(f"  [{i}] " + " ".join(f"{v:.4g}" if out.dtype.kind == "f" else str(v) for v in row[:16]))
    return 0


def _write_output(path, data, suffix):
    """Write --output: numpy's naming (`suffix` appended unless present), except that an existing
    device or FIFO (/dev/null) is written to as named. Returns the name written."""
    if os.path.isdir(path):
        raise LbcError(f"--output {path} is a folder; give a file name")
    if not path.endswith(suffix) and not (os.path.exists(path) and not os.path.isfile(path)):
        path += suffix
    write_file(path, data)
    return path


def cmd_verify(args):
    from lbc.ir.text import parse_graph
    folder = Path(args.model)
    if folder.is_dir():  # an existing output folder: run what is there
        given = [f"--{k.replace('_', '-')}" for k in ("target", "quant", "calibration", "input_shape")
                 if getattr(args, k)]
        if given:
            raise LbcError(f"{args.model} is an lbc output folder (already compiled): {', '.join(given)} apply "
                           f"only when verifying a model file")
        m = driver.read_manifest(folder)
        graph = parse_graph((folder / "model.lbc").read_text(), str(folder / "model.lbc"))
        _verify(graph, None, folder, m["target"], m.get("quant", graph.meta.get("quant", "?")), args.data)
        return 0
    with tempfile.TemporaryDirectory(prefix="lbc-verify-") as tmp:
        c = driver.compile_model(args.model, Path(tmp) / "out", args.target or "host", args.quant, args.calibration,
                                 driver.parse_shape(args.input_shape), granularity=args.granularity,
                                 target_options=_target_options(args))
        _verify(c.graph, c.float_graph, c.outdir, c.target.name, c.quant, args.data)
    return 0


def _verify(graph, float_graph, outdir, target, quant, data):
    """Bit-exactness against the interpreter; with labels, float and on-target accuracy, their agreement
    and, when quantisation costs more than DROP_POINTS, the layers that lose the most and the QAT recipe."""
    from lbc import accuracy as A
    from lbc.ir.interpreter import run as interpret
    specs = driver.io_specs(graph, graph.inputs)
    x, labels = driver.load_inputs(data, graph.inputs, "data")
    x = driver.check_inputs(x, specs, f"data {data}", graph.stateful)
    _, yq, stats = driver.run_compiled(outdir, x, raw=True)
    refs = interpret(graph, driver.quantize_inputs(x, specs))
    yqs = list(yq.values()) if isinstance(yq, dict) else [yq]
    n = len(next(iter(x.values())))
    same = np.ones(n, dtype=bool)
    for got, ref in zip(yqs, refs):
        same &= np.all(got.reshape(n, -1) == ref.reshape(n, -1), axis=1)
    progress.finish()
    print(f"{target} ({quant}): {int(same.sum())}/{n} outputs identical to the reference interpreter")
    if labels is not None:
        if len(yqs) != 1:
            raise LbcError(f"data {data}: labels (y) are compared with the output of a one-output model; this "
                           f"one has {len(yqs)}")
        is_index = graph.types[graph.outputs[0]].dtype.name == "i32"  # the model ends in ArgMax
        pred = _classes(yqs[0], is_index, graph.stateful)
        acc = float(np.mean(pred == labels))
        if float_graph is None:
            print(f"accuracy on target {acc:.2%} ({n} samples; the float model is not in an output folder: verify "
                  f"the model file to compare)")
        else:
            fpred = _classes(interpret(float_graph, x if len(x) > 1 else next(iter(x.values())))[0], is_index,
                             graph.stateful)
            facc = float(np.mean(fpred == labels))
            drop = 100 * (facc - acc)
            print(f"accuracy: float {facc:.2%}, on target {acc:.2%} ({-drop:+.1f} points), agreement with the "
                  f"float model {np.mean(pred == fpred):.2%} ({n} samples)")
            if drop > A.DROP_POINTS and not graph.stateful:  # (per-layer SQNR of sequences: not yet)
                sq = A.layer_sqnr(float_graph, graph, x, specs)
                ops = {nd.name: nd.op for nd in graph.nodes}
                print(f"quantisation costs {drop:.1f} points; the layers that lose the most (SQNR of their output "
                      f"against the float model on this data):")
                for name, db in A.worst_layers(sq):
                    print(f"  {safe_name(name)[:40]:<24} {ops[name]:<10} {db:5.1f} dB")
                print("quantisation-aware training (lbc.qat) trains through lbc's exact integer rounding and "
                      "usually recovers it:")
                for line in A.qat_recipe(graph, quant, target).splitlines():
                    print("    " + line)
    for k, v in stats.items():
        if not isinstance(v, (list, dict)):
            print(f"  {k}: {v}")
    if not same.all():
        raise InternalError(f"{int((~same).sum())} outputs differ from the reference interpreter: a backend bug")


def _classes(y, is_index, sequence=False):
    """Predicted class per sample: the output itself for an ArgMax model, else the argmax of the scores;
    for a model with state (outputs [N, T, ...]) the argmax of the outputs summed over time (spike counts)."""
    y = np.asarray(y)
    if sequence:
        y = y.sum(axis=1)
    y = y.reshape(len(y), -1)
    return y[:, 0] if is_index else y.argmax(axis=1)


def cmd_passes(args):
    from lbc.backends import available_targets, get_target
    from lbc.passes import all_passes
    for name, cls in all_passes().items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n")[0]
        print(f"{name:<18} {doc.split(': ', 1)[-1]}")
    print("\npipelines ({quant} is the --quant choice):")
    for t in available_targets():
        print(f"  {t:<8} " + ", ".join(get_target(t).pipeline("{quant}")))
    return 0


def cmd_targets(args):
    from lbc.backends import available_targets, get_target
    for name in available_targets():
        t = get_target(name)
        budget = []
        if t.flash_bytes:
            budget.append(f"flash {t.flash_bytes} B")
        if t.ram_bytes:
            budget.append(f"RAM {t.ram_bytes} B")
        print(f"{name:<8} {t.description}")
        print(f"{'':<8} quant: {', '.join(t.quants)} (default {t.default_quant})"
              + (f"; {', '.join(budget)}" if budget else ""))
    return 0


def cmd_ops(args):
    from lbc import opsupport
    print(opsupport.markdown() if args.markdown else opsupport.text(), end="")
    return 0
