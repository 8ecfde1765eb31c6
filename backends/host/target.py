"""The host target: portable C99 built with the machine's C compiler. It emits every op the IR
supports and is the reference C backend the small targets are compared with.

Output folder: model.c / model.h (the model, plain C API: `lbc_run` with one pointer per input and
per output), lbc_ops.c / lbc_ops.h (the integer kernels, copied from runtime/c), main.c (reads raw
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

HERE = Path(__file__).resolve().parent
RUNTIME_C = HERE.parent.parent / "runtime" / "c"
RUNTIME_FILES = ("lbc_ops.c", "lbc_ops.h", "lbc_pointwise.c", "lbc_pointwise.h")
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
            step = {"op": n.op, "name": base, "comment": comment_safe(f"{n.op} {n.name}"),
                    "x": self.ptr(n.inputs[0]), "y": self.ptr(n.outputs[0])}
            getattr(self, "l_" + n.op)(n, step, base)
            self.steps.append(step)
        return self

    def _shape(self, t):
        return self.g.types[t].shape[1:]

    def l_dense(self, n, s, base):
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

    def l_argmax(self, n, s, base):
        shape = self.g.types[n.inputs[0]].shape
        ax = n.attr("axis") % len(shape)
        s.update(outer=int(np.prod(shape[1:ax])), n=shape[ax], inner=int(np.prod(shape[ax + 1:])))


class HostTarget(Target):
    name = "host"
    description = "portable C99 for the build machine (the reference C backend)"
    default_quant = "int8"
    ops = frozenset(op for op, d in OPS.items() if (d.int_fn is not None or d.layout) and hasattr(_Lowering, "l_" + op)) | TABLE_OPS

    max_inputs = None
    max_outputs = None
    integer_inputs = True

    def emit(self, graph, outdir, options):
        low = _Lowering(graph).lower()
        params = Namer("")

        def io(kind, names):
            out = []
            for i, t in enumerate(names):
                tt = graph.types[t]
                out.append({"index": i, "name": comment_safe(t, 60), "param": params(f"{kind}_{t}"),
                            "ctype": _CTYPE[tt.dtype.name], "size": tt.size, "shape": list(tt.shape),
                            "exp": tt.exp, "ptr": low.ptr(t),
                            "arena_at": f"lbc_arena + {graph.meta['memory_plan']['offsets'][t]}"})
            return out

        ctx = {
            "header": header_lines(graph, self.name, graph.meta["quant"]),
            "consts": low.consts, "steps": low.steps,
            "arena_bytes": max(graph.meta["memory_plan"]["arena_bytes"], 4),
            "inputs": io("in", graph.inputs), "outputs": io("out", graph.outputs),
        }
        env = template_env(HERE / "templates")
        for name in ("model.c", "model.h", "main.c"):
            (outdir / name).write_text(env.get_template(name + ".j2").render(**ctx))
        for name in RUNTIME_FILES:
            shutil.copyfile(RUNTIME_C / name, outdir / name)
        return {"files": ["model.c", "model.h", "main.c", *RUNTIME_FILES]}

    def build(self, outdir):
        cc = find_tool("cc", "gcc")
        cmd = [cc, *CFLAGS, "-o", "model", "main.c", "model.c", *(f for f in RUNTIME_FILES if f.endswith(".c"))]
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
        n = len(arrays[0])
        # one record per sample: every input in lbc_run's order, native byte order (main.c's format)
        record = np.concatenate([np.ascontiguousarray(a, dtype=_NUMPY[s["dtype"]]).reshape(n, -1).view(np.uint8)
                                 for a, s in zip(arrays, ins)], axis=1)
        r = subprocess.run([str(exe)], input=record.tobytes(), capture_output=True, timeout=600)
        if r.returncode:
            raise ToolchainError(f"{exe} failed with exit code {r.returncode}: {r.stderr.decode(errors='replace')}")
        widths = [int(np.prod(o["shape"][1:])) * np.dtype(_NUMPY[o["dtype"]]).itemsize for o in outs]
        raw = np.frombuffer(r.stdout, dtype=np.uint8).reshape(n, sum(widths))
        ys, at = {}, 0
        for o, w in zip(outs, widths):
            ys[o["name"]] = raw[:, at:at + w].copy().view(_NUMPY[o["dtype"]]).reshape((n,) + tuple(o["shape"][1:]))
            at += w
        return (ys[outs[0]["name"]] if len(outs) == 1 else ys), {}


_CTYPE = {"i8": "int8_t", "i32": "int32_t", "bool": "int8_t"}  # a mask: one byte, 0 or 1
_NUMPY = {"i8": np.int8, "i32": np.int32, "bool": np.bool_}
