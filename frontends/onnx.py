"""ONNX frontend: an .onnx file -> float lbc graph.

Every node is mapped to IR ops; constant sub-graphs (Shape/Gather/Concat chains that exporters emit
for reshapes, transposes of weights, Q/DQ of weights) are evaluated at import. Unsupported ops are
collected over the whole model and reported at once with their node names.
"""

import numpy as np

from lbc.errors import ModelError, Problems, UnsupportedOpError, safe_name
from lbc.ir.dtypes import F32, I32
from lbc.ir.graph import Graph, Node, TensorType
from lbc.ir.ops import OPS


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _decode(v):
    return v.decode() if isinstance(v, bytes) else v


def read_onnx(path):
    """Parse and check an ONNX file; user-facing errors for anything unreadable."""
    import onnx
    from google.protobuf.message import DecodeError
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{path}: empty file, not an ONNX model")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"{path}: not a valid ONNX model (cannot parse the protobuf: {e}); "
                         f"is the file truncated or of another format?") from None
    if not model.graph.node and not model.graph.input:
        raise ModelError(f"{path}: not a valid ONNX model (no graph); is the file truncated or of another format?")
    try:
        external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        # the checker looks for external data files beside the path it is given (a proto: the cwd)
        onnx.checker.check_model(str(path) if external else model)
    except onnx.checker.ValidationError as e:
        raise ModelError(f"{path}: invalid ONNX model: {str(e).splitlines()[0]}") from None
    return model


def _tensor_array(t, path):
    """An initializer's values; external data is read from the model's folder and may not leave it."""
    from onnx import TensorProto, numpy_helper
    if t.data_location == TensorProto.EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        folder = path.resolve().parent
        where = (folder / info.get("location", "")).resolve()
        if where == folder or folder not in where.parents:
            raise ModelError(f"{path}: tensor {t.name!r} keeps its data in {info.get('location')!r}, outside the "
                             f"model's folder; lbc only reads external data files beside the model")
        if not where.is_file():
            raise ModelError(f"{path}: tensor {t.name!r}: external data file {info.get('location')!r} not found "
                             f"beside the model")
        try:
            return numpy_helper.to_array(t, base_dir=str(folder))
        except (OSError, ValueError) as e:
            raise ModelError(f"{path}: tensor {t.name!r}: cannot read its external data ({e})") from None
    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError) as e:
        raise ModelError(f"{path}: tensor {t.name!r} cannot be read ({e})") from None


def opset_of(model):
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


# The ONNX op -> IR op mapping: each ONNX op the frontend imports, with the IR ops its converter
# (`_Importer.op_<OpType>`) may emit. An empty tuple: evaluated at import (constants, shapes) or an
# alias of its input. `lbc ops` and docs/ops.md derive the op x target matrix from this table and
# each Target's `ops`; to add an op, add a row here and its `op_<OpType>` converter.
ONNX_OPS = {
    "Add": ("add",), "ArgMax": ("argmax",), "AveragePool": ("avgpool",), "BatchNormalization": ("batchnorm",),
    "Cast": (), "Clip": ("clip",), "Concat": ("concat",), "Constant": (), "Conv": ("conv2d",),
    "DequantizeLinear": (), "Div": ("mul",), "Dropout": (), "Flatten": ("reshape",), "Gather": (),
    "Gemm": ("dense",), "GlobalAveragePool": ("global_avgpool",), "Identity": (), "LeakyRelu": ("leaky_relu",),
    "MatMul": ("dense",), "MaxPool": ("maxpool",), "Mul": ("mul",), "Pad": ("pad",), "QuantizeLinear": (),
    "Relu": ("relu",), "Reshape": ("reshape",), "Shape": (), "Sigmoid": ("sigmoid",), "Softmax": ("softmax",),
    "Squeeze": (), "Sub": ("add", "mul"), "Tanh": ("tanh",), "Transpose": ("transpose",), "Unsqueeze": (),
}

# ONNX element types of graph inputs: float32 stays float (and is quantised); integer types (token
# ids, masks) become lbc's integer input type and are never quantised.
_FLOAT_INPUT = {"FLOAT"}
_INT_INPUT = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}


class _Refused(Exception):
    """A node the frontend cannot import; the message is the problem's kind (without node names)."""


class _Importer:
    def __init__(self, model, path, input_shape, tolerant=False):
        from onnx import numpy_helper
        self.model, self.path, self.tolerant = model, path, tolerant
        self.opset = opset_of(model)
        g = model.graph
        self.g = Graph(_decode(g.name) or path.stem, [], [], [], {})
        self.consts = {i.name: self._numbers(i.name, _tensor_array(i, path)) for i in g.initializer}
        self.alias = {}  # onnx tensor name -> IR tensor name (identity, dropout, Q/DQ)
        self.exp_hints = {}
        self.problems = Problems()
        self.unknown = set()  # tensors produced by nodes that could not be imported
        self.trace = []  # per ONNX node: (name, op_type, IR nodes it became, problem or None)
        init_names = set(self.consts)
        real_inputs = [i for i in g.input if i.name not in init_names]
        shapes = self._shape_overrides(real_inputs, input_shape)
        for inp in real_inputs:
            self.g.inputs.append(inp.name)
            self.g.types[inp.name] = TensorType(self._input_dtype(inp), self._input_shape(inp, shapes.get(inp.name)))
        self.node_count = 0

    def _shape_overrides(self, inputs, override):
        """--input-shape: a tuple for a one-input model, or a dict input name -> tuple."""
        if override is None:
            return {}
        names = [i.name for i in inputs]
        if not isinstance(override, dict):
            if len(names) != 1:
                raise ModelError(f"{self.path}: the model has {len(names)} inputs ({', '.join(map(safe_name, names))}); "
                                 f"give each its shape with --input-shape NAME=1,2,3")
            return {names[0]: tuple(override)}
        unknown = sorted(set(override) - set(names))
        if unknown:
            raise ModelError(f"{self.path}: --input-shape names {', '.join(map(safe_name, unknown))}, which the model "
                             f"does not have as inputs ({', '.join(map(safe_name, names))})")
        return override

    def _input_dtype(self, inp):
        from onnx import TensorProto
        kind = TensorProto.DataType.Name(inp.type.tensor_type.elem_type)
        if kind in _FLOAT_INPUT:
            return F32
        if kind in _INT_INPUT:
            return I32
        self.problems.add(f"input {safe_name(inp.name)!r} has element type {kind} (lbc takes float32 or integer "
                          f"inputs)")
        return F32

    def _input_shape(self, inp, override):
        dims = inp.type.tensor_type.shape.dim
        if override is not None:
            shape = tuple(int(d) for d in override)
            if len(shape) != len(dims):
                raise ModelError(f"--input-shape {','.join(map(str, shape))} has {len(shape)} dims, "
                                 f"input {safe_name(inp.name)!r} has {len(dims)}")
            return shape
        shape = []
        for i, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(int(d.dim_value))
            elif d.HasField("dim_value"):
                self.problems.add(f"input {safe_name(inp.name)!r} has dimension {i} of size {d.dim_value}; "
                                  f"sizes must be positive")
                shape.append(1)
            elif i == 0:
                shape.append(1)  # the batch dimension: lbc compiles one sample per call
            else:
                named = "" if len(self.g.inputs) == 1 and not self.model.graph.input[1:] else f"{safe_name(inp.name)}="
                self.problems.add(f"input {safe_name(inp.name)!r} has a dynamic dimension {i} "
                                  f"({safe_name(d.dim_param or '?')}); give the full shape with --input-shape, e.g. "
                                  f"--input-shape {named}1,{','.join('N' for _ in dims[1:])}")
                shape.append(1)  # shown as 1 by lbc inspect
        if not shape:
            self.problems.add(f"input {safe_name(inp.name)!r} has no shape; give it with --input-shape")
        return tuple(shape)

    # -- helpers ---------------------------------------------------------------------------------
    def name(self, t):
        return self.alias.get(t, t)

    def const(self, t):
        t = self.name(t)
        return self.consts.get(t)

    def is_const(self, t):
        return t == "" or self.name(t) in self.consts

    def shape(self, t):
        t = self.name(t)
        if t in self.consts:
            return tuple(self.consts[t].shape)
        return tuple(self.g.types[t].shape)

    def add_const(self, base, arr):
        name = self.g.fresh_name(base)
        self.g.add_const(name, np.asarray(arr, dtype=np.float32), F32)
        return name

    def ir_input(self, t):
        """IR name of an ONNX tensor; constants are materialised in the graph on first use."""
        t = self.name(t)
        if t in self.consts and t not in self.g.consts:
            self.g.add_const(t, self.consts[t].astype(np.float32), F32)
        return t

    def emit(self, op, node_name, inputs, output, attrs=None, dtype=None):
        d = OPS[op]
        n = Node(op, node_name, [self.ir_input(i) for i in inputs], [output], dict(attrs or {}))
        shapes = [self.g.types[i].shape for i in n.inputs]
        ints = sorted({self.g.types[i].dtype.name for i in n.inputs
                       if i not in self.g.consts and not self.g.types[i].dtype.is_float})
        if dtype is None:
            dtype = F32
            if ints:
                if not d.layout:
                    raise _Refused(f"{op} of an integer tensor ({ints[0]}, e.g. token ids)")
                dtype = self.g.types[n.inputs[0]].dtype  # integer data moved around stays integer
        try:
            (shape,) = d.infer(n, shapes, self.g)
        except ValueError as e:
            raise _Refused(str(e)) from None
        self.g.types[output] = TensorType(dtype, tuple(int(s) for s in shape))
        self.g.nodes.append(n)
        return output

    # -- the walk --------------------------------------------------------------------------------
    def run(self):
        """Import every node; collect every problem (unsupported ops with node names, inputs, nodes
        that cannot be converted) and raise them as one error - unless tolerant (lbc inspect), which
        keeps going past them and returns the partial graph; `problems` and `trace` tell the rest."""
        nodes = list(self.model.graph.node)
        static = {}
        for i, node in enumerate(nodes):
            why = self.unsupported_reason(node)
            if why:
                static[i] = f"unsupported op {why}"
        for i, node in enumerate(nodes):
            nname = node.name or f"{node.op_type.lower()}_{i}"
            before = len(self.g.nodes)
            why = static.get(i)
            if why is None and any(self.name(t) in self.unknown for t in node.input if t):
                self.trace.append((nname, node.op_type, [], "not imported: an input comes from a node above"))
                self.unknown.update(node.output)
                continue
            if why is None:
                try:
                    self.convert(node, nname)
                except _Refused as e:
                    why = str(e) if str(e).startswith(node.op_type) else f"{safe_name(node.op_type)}: {e}"
                except ModelError as e:  # a converter's own one-line refusal
                    why = str(e).split("): ", 1)[-1].removesuffix(f" (nodes: {nname})")
                except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError) as e:
                    # attributes or constants the checker lets through but no valid model has (a 0-d
                    # Gemm weight, a perm of the wrong length...): the model's problem, named per node
                    why = f"{safe_name(node.op_type)}: malformed node ({type(e).__name__}: {str(e)[:120]})"
            if why is not None:
                self.problems.add(why, nname)
                for n in self.g.nodes[before:]:
                    self.g.types.pop(n.outputs[0], None)
                del self.g.nodes[before:]
                self.unknown.update(node.output)
            self.trace.append((nname, node.op_type, [n.name for n in self.g.nodes[before:]], why))
        for o in self.model.graph.output:
            t = self.name(o.name)
            if t in self.unknown:
                continue
            if t in self.consts:
                self.problems.add(f"output {safe_name(o.name)!r} is a constant; nothing to compile")
                continue
            self.g.outputs.append(t)
        if self.problems and not self.tolerant:
            raise UnsupportedOpError(self.problems.message(f"{self.path}: cannot import (opset {self.opset})"))
        if self.exp_hints:
            self.g.meta["exp_hints"] = dict(sorted(self.exp_hints.items()))
        return self.g if self.tolerant else self.g.prune()

    def unsupported_reason(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            return f"{safe_name(node.domain)}.{safe_name(op)}"
        if op not in ONNX_OPS:
            return safe_name(op)
        a = _attrs(node)
        if op in ("MaxPool", "AveragePool") and a.get("ceil_mode", 0):
            return f"{op} with ceil_mode=1"
        if op in ("MaxPool", "AveragePool", "Conv") and len(a.get("kernel_shape", (1, 1))) != 2:
            return f"{op} that is not 2-d"
        if op == "Pad" and _decode(a.get("mode", "constant")) != "constant":
            return f"Pad mode {_decode(a['mode'])}"
        if op == "Gemm" and a.get("transA", 0):
            return "Gemm with transA=1"
        if op == "ArgMax" and a.get("select_last_index", 0):
            return "ArgMax with select_last_index=1"
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            return "MaxPool with an indices output"
        return None

    def convert(self, node, nname):
        op, ins, out = node.op_type, list(node.input), node.output[0]
        a = _attrs(node)
        getattr(self, "op_" + op)(node, nname, ins, out, a)

    def fold(self, out, value):
        self.consts[out] = self._numbers(out, np.asarray(value))

    def _numbers(self, name, arr):
        if arr.dtype.kind not in "biuf":
            raise ModelError(f"{self.path}: tensor {name!r} holds {arr.dtype} values; lbc needs numbers")
        return arr

    def need_const(self, node, nname, t, what):
        v = self.const(t)
        if v is None:
            raise _Refused(f"{node.op_type} with a non-constant {what}")
        return v

    # -- op converters ---------------------------------------------------------------------------
    def op_Constant(self, node, nname, ins, out, a):
        from onnx import numpy_helper
        if "value" in a:
            self.fold(out, numpy_helper.to_array(a["value"]))
        elif "value_float" in a or "value_int" in a:
            self.fold(out, np.array(a.get("value_float", a.get("value_int"))))
        elif "value_floats" in a or "value_ints" in a:
            self.fold(out, np.array(a.get("value_floats", a.get("value_ints"))))
        else:
            raise _Refused(f"Constant of kind {sorted(a)}")

    def _const_only(self, node, nname, ins):
        if not all(self.is_const(i) for i in ins if i):
            raise _Refused(f"{node.op_type} on a computed tensor")

    def op_Shape(self, node, nname, ins, out, a):
        self.fold(out, np.array(self.shape(ins[0]), dtype=np.int64))

    def op_Gather(self, node, nname, ins, out, a):
        self._const_only(node, nname, ins)
        self.fold(out, np.take(self.const(ins[0]), self.const(ins[1]), axis=a.get("axis", 0)))

    def op_Unsqueeze(self, node, nname, ins, out, a):
        self._const_only(node, nname, ins)
        axes = a.get("axes") if "axes" in a else self.const(ins[1]).tolist()
        v = self.const(ins[0])
        for ax in sorted(int(x) % (v.ndim + len(axes)) for x in axes):
            v = np.expand_dims(v, ax)
        self.fold(out, v)

    def op_Squeeze(self, node, nname, ins, out, a):
        self._const_only(node, nname, ins)
        axes = a.get("axes") if "axes" in a else (self.const(ins[1]).tolist() if len(ins) > 1 and ins[1] else None)
        self.fold(out, np.squeeze(self.const(ins[0]), axis=tuple(axes) if axes is not None else None))

    def op_Cast(self, node, nname, ins, out, a):
        from onnx import helper
        if self.is_const(ins[0]):
            self.fold(out, self.const(ins[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"])))
        else:
            self.alias[out] = self.name(ins[0])  # float -> float casts are the only ones a float model has

    def op_Identity(self, node, nname, ins, out, a):
        if self.is_const(ins[0]):
            self.fold(out, self.const(ins[0]))
        else:
            self.alias[out] = self.name(ins[0])

    op_Dropout = op_Identity

    def op_QuantizeLinear(self, node, nname, ins, out, a):
        scale = self.need_const(node, nname, ins[1], "scale")
        if self.is_const(ins[0]):
            zp = self.const(ins[2]) if len(ins) > 2 and ins[2] else np.zeros((), np.uint8)
            q = np.round(self.const(ins[0]) / scale) + zp
            info = np.iinfo(zp.dtype)
            self.fold(out, np.clip(q, info.min, info.max).astype(zp.dtype))
            return
        src = self.name(ins[0])
        self.alias[out] = src  # Q/DQ pairs on activations are annotations: keep the float value
        if scale.size == 1 and float(scale) > 0:
            e = -np.log2(float(scale))
            if abs(e - round(e)) < 1e-9:
                self.exp_hints[src] = int(round(e))

    def op_DequantizeLinear(self, node, nname, ins, out, a):
        scale = self.need_const(node, nname, ins[1], "scale")
        if self.is_const(ins[0]):
            q = self.const(ins[0]).astype(np.float64)
            zp = self.const(ins[2]).astype(np.float64) if len(ins) > 2 and ins[2] else 0.0
            axis = a.get("axis", 1)
            if np.ndim(scale) == 1 and q.ndim > 1:
                shape = [1] * q.ndim
                shape[axis] = -1
                scale = scale.reshape(shape)
                zp = np.reshape(zp, shape) if np.ndim(zp) else zp
            self.fold(out, ((q - zp) * scale).astype(np.float32))
        else:
            self.alias[out] = self.name(ins[0])

    def op_Gemm(self, node, nname, ins, out, a):
        w = self.need_const(node, nname, ins[1], "weight B").astype(np.float64)
        if not a.get("transB", 0):
            w = w.T
        w = w * a.get("alpha", 1.0)
        inputs = [ins[0], self.add_const(f"{nname}.weight", w)]
        if len(ins) > 2 and ins[2]:
            c = self.need_const(node, nname, ins[2], "bias C").astype(np.float64) * a.get("beta", 1.0)
            if c.size not in (1, w.shape[0]):
                raise ModelError(f"{self.path}: node {nname!r}: bias C has {c.size} values for {w.shape[0]} outputs")
            inputs.append(self.add_const(f"{nname}.bias", np.broadcast_to(c.reshape(-1), (w.shape[0],))))
        self.emit("dense", nname, inputs, out)

    def op_MatMul(self, node, nname, ins, out, a):
        w = self.need_const(node, nname, ins[1], "right operand")
        if w.ndim != 2:
            raise _Refused(f"MatMul with a {w.ndim}-d weight")
        self.emit("dense", nname, [ins[0], self.add_const(f"{nname}.weight", w.T)], out)

    def _binary(self, node, nname, ins, out, op, fn):
        if self.is_const(ins[0]) and self.is_const(ins[1]):
            self.fold(out, fn(self.const(ins[0]), self.const(ins[1])))
            return
        x, y = ins
        if self.is_const(x):
            x, y = y, x
        if self.is_const(y):
            y = self.add_const(f"{nname}.const", self.const(y).astype(np.float32))
        self.emit(op, nname, [x, y], out)

    def op_Add(self, node, nname, ins, out, a):
        self._binary(node, nname, ins, out, "add", np.add)

    def op_Mul(self, node, nname, ins, out, a):
        self._binary(node, nname, ins, out, "mul", np.multiply)

    def op_Sub(self, node, nname, ins, out, a):
        if self.is_const(ins[0]) and self.is_const(ins[1]):
            self.fold(out, self.const(ins[0]) - self.const(ins[1]))
        elif self.is_const(ins[1]):
            self.emit("add", nname, [ins[0], self.add_const(f"{nname}.const", -self.const(ins[1]))], out)
        else:
            neg = self.g.fresh_name(f"{nname}.neg")
            src = ins[1]
            self.emit("mul", f"{nname}.negate", [src, self.add_const(f"{nname}.minus1", np.float32(-1))], neg)
            self.emit("add", nname, [ins[0], neg], out)

    def op_Div(self, node, nname, ins, out, a):
        if self.is_const(ins[1]) and np.any(self.const(ins[1]) == 0):
            raise ModelError(f"{self.path}: node {nname!r}: division by zero (the divisor holds 0)")
        if self.is_const(ins[0]) and self.is_const(ins[1]):
            self.fold(out, self.const(ins[0]) / self.const(ins[1]))
            return
        d = self.need_const(node, nname, ins[1], "divisor")
        self.emit("mul", nname, [ins[0], self.add_const(f"{nname}.recip", 1.0 / d.astype(np.float64))], out)

    def op_Relu(self, node, nname, ins, out, a):
        self.emit("relu", nname, ins, out)

    def op_LeakyRelu(self, node, nname, ins, out, a):
        self.emit("leaky_relu", nname, ins, out, {"alpha": float(a.get("alpha", 0.01))})

    def op_Sigmoid(self, node, nname, ins, out, a):
        self.emit("sigmoid", nname, ins, out)

    def op_Tanh(self, node, nname, ins, out, a):
        self.emit("tanh", nname, ins, out)

    def op_Clip(self, node, nname, ins, out, a):
        lo, hi = a.get("min", float("-inf")), a.get("max", float("inf"))
        for pos, what in ((1, "min"), (2, "max")):
            if len(ins) > pos and ins[pos]:
                v = self.need_const(node, nname, ins[pos], what)
                if v.size != 1:
                    raise ModelError(f"{self.path}: node {nname!r}: Clip {what} must be one number, has {v.size}")
                lo, hi = (float(v.reshape(-1)[0]), hi) if pos == 1 else (lo, float(v.reshape(-1)[0]))
        self.emit("clip", nname, ins[:1], out, {"min": float(lo), "max": float(hi)})

    def op_Flatten(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        ax = a.get("axis", 1) % max(len(s), 1)
        new = (int(np.prod(s[:ax])), int(np.prod(s[ax:])))
        self._reshape(nname, ins[0], out, new)

    def _reshape(self, nname, src, out, new):
        if self.is_const(src):
            self.fold(out, self.const(src).reshape(new))
        else:
            self.emit("reshape", nname, [src], out, {"shape": tuple(int(d) for d in new)})

    def op_Reshape(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        target = [int(d) for d in self.need_const(node, nname, ins[1], "shape")]
        if not a.get("allowzero", 0):
            target = [s[i] if d == 0 else d for i, d in enumerate(target)]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(s)) // max(known, 1)
        self._reshape(nname, ins[0], out, tuple(target))

    def op_Transpose(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        perm = tuple(int(p) for p in a.get("perm", range(len(s) - 1, -1, -1)))
        if self.is_const(ins[0]):
            self.fold(out, np.transpose(self.const(ins[0]), perm))
        elif perm == tuple(range(len(s))):
            self.alias[out] = self.name(ins[0])
        else:
            self.emit("transpose", nname, ins, out, {"perm": perm})

    def op_Concat(self, node, nname, ins, out, a):
        if all(self.is_const(i) for i in ins):
            self.fold(out, np.concatenate([self.const(i) for i in ins], axis=a["axis"]))
            return
        inputs = [i if not self.is_const(i) else self.add_const(f"{nname}.const", self.const(i)) for i in ins]
        rank = len(self.shape(ins[0]))
        self.emit("concat", nname, inputs, out, {"axis": int(a["axis"]) % rank})

    def op_Softmax(self, node, nname, ins, out, a):
        rank = len(self.shape(ins[0]))
        default = -1 if self.opset >= 13 else 1
        self.emit("softmax", nname, ins, out, {"axis": int(a.get("axis", default)) % rank})

    def op_ArgMax(self, node, nname, ins, out, a):
        rank = len(self.shape(ins[0]))
        self.emit("argmax", nname, ins, out, {"axis": int(a.get("axis", 0)) % rank,
                                              "keepdims": int(a.get("keepdims", 1))}, dtype=I32)

    def _window_attrs(self, node, nname, ins, a, kernel):
        s = self.shape(ins[0])
        strides = tuple(a.get("strides", (1, 1)))
        dil = tuple(a.get("dilations", (1, 1)))
        auto = _decode(a.get("auto_pad", "NOTSET"))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for i in range(2):
                o = -(-s[2 + i] // strides[i])
                total = max(0, (o - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - s[2 + i])
                small = total // 2
                pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
            p = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
        elif auto == "VALID":
            p = (0, 0, 0, 0)
        else:
            p = tuple(a.get("pads", (0, 0, 0, 0)))
        return {"strides": strides, "pads": tuple(int(v) for v in p)}, dil

    def op_Conv(self, node, nname, ins, out, a):
        w = self.need_const(node, nname, ins[1], "weight")
        attrs, dil = self._window_attrs(node, nname, ins, a, w.shape[2:])
        attrs.update(dilations=dil, group=int(a.get("group", 1)))
        inputs = [ins[0], ins[1]] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
        self.emit("conv2d", nname, inputs, out, attrs)

    def op_MaxPool(self, node, nname, ins, out, a):
        k = tuple(a["kernel_shape"])
        attrs, dil = self._window_attrs(node, nname, ins, a, k)
        if dil != (1, 1):
            raise _Refused("MaxPool with dilations")
        self.emit("maxpool", nname, ins[:1], out, {"kernel": k, **attrs})

    def op_AveragePool(self, node, nname, ins, out, a):
        k = tuple(a["kernel_shape"])
        attrs, _ = self._window_attrs(node, nname, ins, a, k)
        self.emit("avgpool", nname, ins[:1], out,
                  {"kernel": k, **attrs, "count_include_pad": int(a.get("count_include_pad", 0))})

    def op_GlobalAveragePool(self, node, nname, ins, out, a):
        self.emit("global_avgpool", nname, ins, out)

    def op_BatchNormalization(self, node, nname, ins, out, a):
        for i, what in zip(ins[1:5], ("scale", "bias", "mean", "var")):
            self.need_const(node, nname, i, what)
        self.emit("batchnorm", nname, ins[:5], out, {"epsilon": float(a.get("epsilon", 1e-5))})

    def op_Pad(self, node, nname, ins, out, a):
        pads = a.get("pads")
        if pads is None:
            pads = self.need_const(node, nname, ins[1], "pads").tolist()
        value = float(a.get("value", 0.0))
        if len(ins) > 2 and ins[2]:
            value = float(self.need_const(node, nname, ins[2], "constant_value"))
        if len(ins) > 3 and ins[3]:
            raise _Refused("Pad with axes")
        self.emit("pad", nname, ins[:1], out, {"pads": tuple(int(p) for p in pads), "value": value})


def load_onnx(path, input_shape=None):
    model = read_onnx(path)
    return _Importer(model, path, input_shape).run()


def inspect_onnx(path, input_shape=None):
    """Import as far as possible: (partial graph, Problems, trace, inferred shapes). The trace has
    one (node name, op type, IR node names, problem or None) per ONNX node; inferred shapes (ONNX
    shape inference, name -> tuple) cover tensors of nodes that could not be imported."""
    import onnx
    model = read_onnx(path)
    imp = _Importer(model, path, input_shape, tolerant=True)
    g = imp.run()
    shapes = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shape inference is a nicety for the listing, never required
        inferred = model
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
    return g, imp.problems, imp.trace, shapes, model
