"""The host target: portable C99 built with the machine's C compiler. It emits every op the IR
supports and is the reference C backend the small targets are compared with.

Output folder: model.c / model.h (the model, plain C API: `lbc_run` with one pointer per input and
per output), lbc_ops.c / lbc_ops.h, lbc_select.c / lbc_select.h and lbc_matmul.c / lbc_matmul.h (the
integer kernels, copied from runtime/c), main.c (reads raw
samples on stdin - every input in turn - and writes every output in turn on stdout) and the built
`model` executable.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np

from lbc.backends.base import (Namer, Target, WEIGHT_CODE, c_array, comment_safe, find_tool, header_lines,
                               pack_rows, packed_row_bytes, template_env)
from lbc.errors import InternalError, ToolchainError
from lbc.ir.ops import OPS, TABLE_OPS
from lbc.ir.ops.layout import Pad
from lbc.ir.ops.pool import crop_windows
from lbc.ir.ops.slicing import dilate

HERE = Path(__file__).resolve().parent
RUNTIME_C = HERE.parent.parent / "runtime" / "c"
RUNTIME_FILES = ("lbc_ops.c", "lbc_ops.h", "lbc_pointwise.c", "lbc_pointwise.h", "lbc_select.c", "lbc_select.h",
                 "lbc_matmul.c", "lbc_matmul.h")
SPIKING_FILES = ("lbc_spiking.c", "lbc_spiking.h")  # only for models with spiking ops
SPIKING_OPS = ("lif", "li", "threshold")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]


def _ints(values):
    return "(const int[]){" + ", ".join(str(int(v)) for v in values) + "}"


class _Lowering:
    """Turns the integer graph into constant arrays and one call record per node."""

    def __init__(self, graph):
        self.g = graph
        self.names = Namer("lbc_")
        self.consts = []
        self.steps = []
        self.plan = graph.meta["memory_plan"]["offsets"]
        self.uses_select = False
        self.uses_matmul = False

    def ptr(self, t):
        if t in self.g.consts:
            return self.const_array(t)
        ctype = "int32_t" if self.g.types[t].dtype.name == "i32" else "int8_t"
        return f"(({ctype} *)(lbc_arena + {self.plan[t]}))"

    def add_const(self, base, ctype, values, comment=""):
        ident = self.names(base)
        vals = np.asarray(values).reshape(-1)
        self.consts.append({"ident": ident, "ctype": ctype, "len": max(len(vals), 1),
                            "body": c_array(vals if len(vals) else [0]), "comment": comment_safe(comment)})
        return ident

    def states(self):
        """Each state's place in the arena and its initial value (for lbc_reset)."""
        out = []
        for name, st in self.g.states.items():
            init = np.asarray(st.init).reshape(-1)
            ident = None
            if init.any():
                ident = self.add_const(f"{name}_init", _CTYPE[self.g.types[name].dtype.name], init,
                                       f"initial value of state {name}")
            out.append({"ptr": self.ptr(name), "n": int(init.size), "comment": comment_safe(f"state {name}"),
                        "init": ident})
        return out

    def const_array(self, t):
        arr = self.g.consts[t]
        ctype = "int32_t" if self.g.types[t].dtype.name == "i32" else "int8_t"
        return self.add_const(t, ctype, arr, f"{t} {list(arr.shape)}")

    def requant(self, n, base):
        m, k = n.attr("m"), n.attr("k")
        mi = self.add_const(f"{base}_m", "int32_t", m, f"{n.name} multipliers")
        ki = self.add_const(f"{base}_k", "uint8_t", k, f"{n.name} shifts")
        return {"m": mi, "k": ki, "n": len(m), "lo": n.attr("lo"), "hi": n.attr("hi")}

    def weights(self, n):
        t = n.inputs[1]
        w = self.g.consts[t]
        dt = self.g.types[t].dtype.name
        packed = pack_rows(w, dt)
        ident = self.add_const(t, "uint8_t", packed, f"{t} {list(w.shape)} {dt}, packed per row")
        return {"data": ident, "code": WEIGHT_CODE[dt], "row_bytes": packed_row_bytes(dt, int(np.prod(w.shape[1:])))}

    def lower(self):
        for n in self.g.nodes:
            base = self.names(n.name)
            step = {"op": n.op, "template": n.op, "name": base, "comment": comment_safe(f"{n.op} {n.name}"),
                    "x": self.ptr(n.inputs[0]), "y": self.ptr(n.outputs[0])}
            getattr(self, "l_" + n.op)(n, step, base)
            self.steps.append(step)
        return self

    def _shape(self, t):
        return self.g.types[t].shape[1:]

    def l_dense(self, n, s, base):
        if self.g.types[n.outputs[0]].dtype.name == "i32":  # the accumulator: the current of a spiking neuron
            w = self.g.consts[n.inputs[1]]
            spikes = self.g.types[n.inputs[0]].dtype.name == "b1"
            s.update(template="dense_spikes" if spikes else "dense_acc", K=w.shape[1], M=w.shape[0],
                     wt=self.add_const(f"{base}_wt", "int8_t", np.ascontiguousarray(w.T),
                                       f"{n.name} weights transposed [in][out]"),
                     bias=self.ptr(n.inputs[2]) if len(n.inputs) > 2 else "0")
            return
        s.update(K=self._shape(n.inputs[0])[-1], M=self._shape(n.outputs[0])[-1], w=self.weights(n),
                 bias=self.ptr(n.inputs[2]) if len(n.inputs) > 2 else "0", q=self.requant(n, base))
        rows = int(np.prod(self._shape(n.inputs[0])[:-1]))
        s["rows"] = rows
        s["in_stride"], s["out_stride"] = s["K"], s["M"]

    def l_conv2d(self, n, s, base):
        s.update(in_chw=_ints(self._shape(n.inputs[0])), out_chw=_ints(self._shape(n.outputs[0])),
                 kernel=_ints(self.g.types[n.inputs[1]].shape[2:]), strides=_ints(n.attr("strides")),
                 pads=_ints(n.attr("pads")), dilations=_ints(n.attr("dilations")), group=n.attr("group"),
                 w=self.weights(n), bias=self.ptr(n.inputs[2]) if len(n.inputs) > 2 else "0",
                 q=self.requant(n, base))

    def _pool(self, n, s):
        s.update(in_chw=_ints(self._shape(n.inputs[0])), out_chw=_ints(self._shape(n.outputs[0])),
                 kernel=_ints(n.attr("kernel")), strides=_ints(n.attr("strides")), pads=_ints(n.attr("pads")))

    def l_maxpool(self, n, s, base):
        if n.attr("ceil_mode"):  # windows past the end: a max over index lists (padding = -1)
            win = crop_windows(n, self._indices(n.inputs[0]), -1)
            self._select_reduce(n, s, base, win.reshape(-1, win.shape[-2] * win.shape[-1]), "max")
            return
        self._pool(n, s)

    def l_avgpool(self, n, s, base):
        self._pool(n, s)
        s["q"] = self.requant(n, base)

    def l_global_avgpool(self, n, s, base):
        shape = self._shape(n.inputs[0])
        s.update(channels=shape[0], spatial=int(np.prod(shape[1:])), q=self.requant(n, base))

    def _broadcast(self, n, s, names=("a", "b")):
        """Output shape and per-operand element strides (0 along a broadcast axis), batch axis dropped."""
        out = self.g.types[n.outputs[0]].shape
        rank = len(out)
        for t, key in zip(n.inputs[-len(names):], names):
            shp = (1,) * (rank - len(self.g.types[t].shape)) + tuple(self.g.types[t].shape)
            st, acc = [0] * rank, 1
            for d in range(rank - 1, -1, -1):
                st[d] = 0 if shp[d] == 1 and out[d] != 1 else acc
                acc *= shp[d]
            s[key] = self.ptr(t)
            s[key + "stride"] = _ints(st[1:])
        s.update(rank=rank - 1, shape=_ints(out[1:]))

    def _binary(self, n, s, base, opcode):
        self._broadcast(n, s)
        aligned = "sa" in OPS[n.op].attrs
        s.update(sa=n.attr("sa") if aligned else 0, sb=n.attr("sb") if aligned else 0, opcode=opcode,
                 q=self.requant(n, base))

    def l_add(self, n, s, base):
        self._binary(n, s, base, 0)

    def l_mul(self, n, s, base):
        self._binary(n, s, base, 1)

    def l_max(self, n, s, base):
        self._binary(n, s, base, 2)

    def l_min(self, n, s, base):
        self._binary(n, s, base, 3)

    def _compare(self, n, s, base):
        self._broadcast(n, s)
        s.update(sa=n.attr("sa"), sb=n.attr("sb"), opcode={"equal": 0, "less": 1, "greater": 2, "greater_equal": 3,
                                                          "less_equal": 4}[n.op])

    l_equal = l_less = l_greater = l_greater_equal = l_less_equal = _compare

    def _logic(self, n, s, base):
        self._broadcast(n, s)
        s["opcode"] = {"and": 0, "or": 1}[n.op]

    l_and = l_or = _logic

    def l_not(self, n, s, base):
        self._size(n, s)

    def l_where(self, n, s, base):
        self._broadcast(n, s, ("c", "a", "b"))
        s.update(sa=n.attr("sa"), sb=n.attr("sb"), q=self.requant(n, base))

    def l_prelu(self, n, s, base):
        shape = self.g.types[n.inputs[0]].shape
        ax = n.attr("axis")
        s.update(outer=int(np.prod(shape[1:ax])), channels=shape[ax], inner=int(np.prod(shape[ax + 1:])),
                 q={"m": self.add_const(f"{base}_m", "int32_t", n.attr("m"), f"{n.name} negative-side multipliers"),
                    "k": self.add_const(f"{base}_k", "uint8_t", n.attr("k"), f"{n.name} shifts"),
                    "n": len(n.attr("m")), "lo": -128, "hi": 127})

    def _size(self, n, s):
        s["n"] = self.g.types[n.outputs[0]].size

    def l_relu(self, n, s, base):
        self._size(n, s)

    def l_leaky_relu(self, n, s, base):
        self._size(n, s)
        s["q"] = {"m": self.add_const(f"{base}_m", "int32_t", n.attr("m")),
                  "k": self.add_const(f"{base}_k", "uint8_t", n.attr("k")), "n": 1, "lo": -128, "hi": 127}

    def l_clip(self, n, s, base):
        self._size(n, s)
        s.update(lo=n.attr("lo"), hi=n.attr("hi"))

    def l_table(self, n, s, base):
        self._size(n, s)
        s["table"] = self.add_const(f"{base}_table", "int8_t", n.attr("table"), f"{n.attr('fn')} lookup table")

    def l_reshape(self, n, s, base):
        s["n"] = self.g.types[n.outputs[0]].size  # planned in place: x == y, nothing to do

    def l_transpose(self, n, s, base):
        s.update(rank=len(n.attr("perm")) - 1, in_shape=_ints(self._shape(n.inputs[0])),
                 perm=_ints([p - 1 for p in n.attr("perm")[1:]]))

    def l_pad(self, n, s, base):
        if n.attr("mode") != "constant":
            self._select(n, s, base, Pad._pad(n, self._indices(n.inputs[0]), -1))
            return
        r = len(self.g.types[n.inputs[0]].shape)
        s.update(rank=r - 1, in_shape=_ints(self._shape(n.inputs[0])), out_shape=_ints(self._shape(n.outputs[0])),
                 begin=_ints(n.attr("pads")[1:r]), value=n.attr("qvalue"))

    def l_concat(self, n, s, base):
        out = self.g.types[n.outputs[0]].shape
        ax = n.attr("axis") % len(out)
        outer = int(np.prod(out[1:ax]))
        inner_out = int(np.prod(out[ax:]))
        parts, offset = [], 0
        shifts = n.attr("shifts") or (0,) * len(n.inputs)
        for t, sh in zip(n.inputs, shifts):
            inner_in = int(np.prod(self.g.types[t].shape[ax:]))
            parts.append({"x": self.ptr(t), "inner_in": inner_in, "offset": offset, "shift": sh})
            offset += inner_in
        s.update(parts=parts, outer=outer, inner_out=inner_out)

    # -- selections: every output element is one input element, or a max/sum over a fixed set of
    # them. The index tables come from the interpreter's own op functions applied to indices.
    def _indices(self, t):
        shape = tuple(self._shape(t))
        return np.arange(int(np.prod(shape)), dtype=np.int64).reshape((1,) + shape)

    def _select(self, n, s, base, table, fill=0):
        self.uses_select = True
        s.update(template="select", n=int(table.size), fill=int(fill),
                 idx=self.add_const(f"{base}_idx", "int32_t", table.reshape(-1), f"{n.name} source indices"))

    def _select_reduce(self, n, s, base, table, kind):
        self.uses_select = True
        s.update(template=f"select_{kind}", n=int(table.shape[0]), cnt=int(table.shape[1]),
                 idx=self.add_const(f"{base}_idx", "int32_t", table.reshape(-1), f"{n.name} source indices"))
        if kind == "sum":
            s["q"] = self.requant(n, base)

    def _moved(self, n, axes):
        x = self._indices(n.inputs[0])
        cnt = int(np.prod([x.shape[a] for a in axes]))
        return np.moveaxis(x, list(axes), list(range(x.ndim - len(axes), x.ndim))).reshape(-1, cnt)

    def l_slice(self, n, s, base):
        self._select(n, s, base, OPS[n.op].int_fn(n, [self._indices(n.inputs[0])])[0])

    l_gather = l_resize = l_expand = l_slice

    def l_dilate(self, n, s, base):
        self._select(n, s, base, dilate(self._indices(n.inputs[0]), n.attr("strides"), -1))

    def l_reduce_max(self, n, s, base):
        self._select_reduce(n, s, base, self._moved(n, n.attr("axes")), "max")

    def l_reduce_sum(self, n, s, base):
        self._select_reduce(n, s, base, self._moved(n, n.attr("axes")), "sum")

    l_reduce_mean = l_reduce_sum

    def l_global_maxpool(self, n, s, base):
        rank = len(self.g.types[n.inputs[0]].shape)
        self._select_reduce(n, s, base, self._moved(n, range(2, rank)), "max")

    def l_matmul(self, n, s, base):
        """Offsets of each output's row of a and column of b (leading axes broadcast)."""
        out = tuple(self._shape(n.outputs[0]))

        def operand(t):
            shape = tuple(self.g.types[t].shape)
            if t not in self.g.consts or len(shape) == len(out) + 1:
                shape = shape[1:]  # an activation (or a constant with the batch axis): one sample
            return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)

        a, b = operand(n.inputs[0]), operand(n.inputs[1])
        arow = np.broadcast_to(a[..., :, :1], out[:-1] + (1,))
        bcol = np.broadcast_to(b[..., :1, :], out[:-2] + (1, out[-1]))
        arow, bcol = np.broadcast_arrays(arow, bcol)
        s.update(a=self.ptr(n.inputs[0]), b=self.ptr(n.inputs[1]), n=int(np.prod(out)), K=int(a.shape[-1]),
                 N=int(b.shape[-1]), q=self.requant(n, base),
                 arow=self.add_const(f"{base}_arow", "int32_t", arow.reshape(-1), f"{n.name} row offsets of a"),
                 bcol=self.add_const(f"{base}_bcol", "int32_t", bcol.reshape(-1), f"{n.name} column offsets of b"))
        self.uses_matmul = True

    def _neuron(self, n, s, base):
        vals = {k: n.attr(k) for k in ("d", "c", "thr", "vr") if k in OPS[n.op].attrs}
        p = {k: self.add_const(f"{base}_{k}", "int32_t", v, f"{n.name} {k}") for k, v in vals.items()}
        cur = n.inputs[0]
        s.update(template=n.op, n=self.g.types[n.outputs[0]].size, s=n.attr("s"), p=p,
                 len={k: len(v) for k, v in vals.items()}, subtract=int(n.attr("reset") == "subtract")
                 if n.op == "lif" else 0, acc=int(self.g.types[cur].dtype.name == "i32"),
                 cur=self.ptr(cur), v=self.ptr(n.inputs[1]))

    def l_lif(self, n, s, base):
        self._neuron(n, s, base)

    def l_li(self, n, s, base):
        self._neuron(n, s, base)
        s["q"] = self.requant(n, base)

    def l_threshold(self, n, s, base):
        thr = n.attr("thr")
        s.update(n=self.g.types[n.outputs[0]].size, nthr=len(thr),
                 thr=self.add_const(f"{base}_thr", "int32_t", thr, f"{n.name} thresholds"))

    def l_argmax(self, n, s, base):
        shape = self.g.types[n.inputs[0]].shape
        ax = n.attr("axis") % len(shape)
        s.update(outer=int(np.prod(shape[1:ax])), n=shape[ax], inner=int(np.prod(shape[ax + 1:])))


def _spiking(graph):
    return any(n.op in SPIKING_OPS or graph.types[n.outputs[0]].dtype.name == "i32" and n.op == "dense"
               for n in graph.nodes)


class HostTarget(Target):
    name = "host"
    streams = True
    description = "portable C99 for the build machine (the reference C backend)"
    default_quant = "int8"
    ops = frozenset(op for op, d in OPS.items()
                    if (d.int_fn is not None or d.layout) and hasattr(_Lowering, "l_" + op)) | TABLE_OPS
    emitted_attrs = {("avgpool", "ceil_mode"): 0}  # ceil_mode max pooling and every pad mode are emitted

    max_inputs = None
    max_outputs = None
    integer_inputs = True

    def check(self, graph):
        problems = super().check(graph)
        for n in graph.nodes:
            if n.op == "conv2d" and graph.types[n.outputs[0]].dtype.name == "i32":
                problems.append(f"conv2d {n.name}: an accumulator output (a convolution feeding a spiking neuron) "
                                f"is not supported by target host yet")
        return problems

    def emit(self, graph, outdir, options):
        low = _Lowering(graph).lower()
        params = Namer("")

        def io(kind, names):
            out = []
            for i, t in enumerate(names):
                tt = graph.types[t]
                out.append({"index": i, "name": comment_safe(t, 60), "param": params(f"{kind}_{t}"),
                            "ctype": _CTYPE[tt.dtype.name], "size": tt.size, "shape": list(tt.shape),
                            "lo": tt.dtype.lo, "hi": min(tt.dtype.hi, 127) if tt.dtype.hi is not None else None,
                            "exp": tt.exp, "ptr": low.ptr(t),
                            "arena_at": f"lbc_arena + {graph.meta['memory_plan']['offsets'][t]}"})
            return out

        states = low.states()
        ctx = {
            "header": header_lines(graph, self.name, graph.meta["quant"]),
            "consts": low.consts, "steps": low.steps, "states": states, "spiking": _spiking(graph),
            "state_bytes": graph.meta["memory_plan"].get("state_bytes", 0),
            "arena_bytes": max(graph.meta["memory_plan"]["arena_bytes"], 4),
            "inputs": io("in", graph.inputs), "outputs": io("out", graph.outputs),
            "uses_select": low.uses_select, "uses_matmul": low.uses_matmul,
        }
        env = template_env(HERE / "templates")
        for name in ("model.c", "model.h", "main.c"):
            (outdir / name).write_text(env.get_template(name + ".j2").render(**ctx))
        runtime = RUNTIME_FILES + (SPIKING_FILES if _spiking(graph) else ())
        for name in runtime:
            shutil.copyfile(RUNTIME_C / name, outdir / name)
        return {"files": sorted(["model.c", "model.h", "main.c", *runtime])}

    def build(self, outdir):
        cc = find_tool("cc", "gcc")
        srcs = [f for f in ("main.c", "model.c") + RUNTIME_FILES + SPIKING_FILES
                if f.endswith(".c") and (Path(outdir) / f).exists()]
        cmd = [cc, *CFLAGS, "-o", "model", *srcs]
        r = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True)
        if r.returncode:
            raise InternalError(f"the generated C failed to compile:\n{r.stderr.strip()}")
        return {"executable": "model"}

    def run(self, outdir, manifest, xq):
        exe = Path(outdir) / "model"
        if not exe.exists():
            raise ToolchainError(f"{exe} is missing; compile the model first")
        ins, outs = manifest["inputs"], manifest["outputs"]
        arrays = [xq] if len(ins) == 1 else [xq[s["name"]] for s in ins]
        seq = manifest.get("stateful", False)
        lead = tuple(arrays[0].shape[:2 if seq else 1])  # (N,) or, for a model with state, (N, T)
        n = int(np.prod(lead))
        # one record per sample (per step): every input in lbc_run's order, native byte order (main.c's format)
        record = np.concatenate([np.ascontiguousarray(a, dtype=_NUMPY[s["dtype"]]).reshape(n, -1).view(np.uint8)
                                 for a, s in zip(arrays, ins)], axis=1)
        args = [str(exe)] + ([str(lead[1])] if seq else [])
        r = subprocess.run(args, input=record.tobytes(), capture_output=True, timeout=600)
        if r.returncode:
            raise ToolchainError(f"{exe} failed with exit code {r.returncode}: {r.stderr.decode(errors='replace')}")
        widths = [int(np.prod(o["shape"][1:])) * np.dtype(_NUMPY[o["dtype"]]).itemsize for o in outs]
        raw = np.frombuffer(r.stdout, dtype=np.uint8).reshape(n, sum(widths))
        ys, at = {}, 0
        for o, w in zip(outs, widths):
            ys[o["name"]] = raw[:, at:at + w].copy().view(_NUMPY[o["dtype"]]).reshape(lead + tuple(o["shape"][1:]))
            at += w
        return (ys[outs[0]["name"]] if len(outs) == 1 else ys), {}


_CTYPE = {"i8": "int8_t", "b1": "int8_t", "i32": "int32_t", "bool": "int8_t"}  # b1 spikes, bool masks: 0 or 1
_NUMPY = {"i8": np.int8, "b1": np.int8, "i32": np.int32, "bool": np.bool_}
