"""ONNX frontend: an .onnx file -> float lbc graph.

Every node is mapped to IR ops; a node whose inputs are all constants (or that only reads static
shapes: Shape, Size) is evaluated at import by onnx's reference implementation, so constant
sub-graphs (Shape/Gather/Concat chains that exporters emit for reshapes, ConstantOfShape, transposes
and Q/DQ of weights) fold with ONNX's exact semantics. Everything else is converted with ONNX's exact
semantics or refused: an attribute a converter does not read, a value it does not implement, a dtype
other than float32 on a computed tensor. Problems are collected over the whole model and reported
at once with their node names.
"""

import numpy as np

from lbc.errors import ModelError, Problems, UnsupportedOpError, safe_name
from lbc.ir.dtypes import BOOL, F32, I8, I32, U8
from lbc.ir.graph import Graph, Node, TensorType
from lbc.ir.ops import OPS
from lbc.ir.ops.pointwise import SELU_ALPHA, SELU_GAMMA


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
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        # weights in a side file (torch.onnx.export's default for dynamo=True): model.onnx.data
        from onnx.external_data_helper import load_external_data_for_model
        try:
            load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as e:
            raise ModelError(f"{path}: cannot read the model's external weight data ({e})") from None
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
# Any node whose inputs are all constants (or that reads only static shapes) is also evaluated at
# import, whatever its op (ConstantOfShape, Range, Expand... of constants).
ONNX_OPS = {
    "Add": ("add",), "ArgMax": ("argmax",), "AveragePool": ("avgpool", "reshape"),
    "BatchNormalization": ("batchnorm",), "Cast": (), "CastLike": (), "Clip": ("clip",), "Concat": ("concat",),
    "Constant": (), "Conv": ("conv2d", "reshape"), "ConvTranspose": ("dilate", "pad", "conv2d", "reshape"),
    "DequantizeLinear": ("dequantize_linear", "fake_quant"), "Div": ("mul", "div"), "Expand": ("expand",),
    "Dropout": (),
    "Flatten": ("reshape",), "Gather": ("gather", "embedding"), "Gemm": ("dense",),
    "GlobalAveragePool": ("global_avgpool", "reshape"), "GlobalMaxPool": ("global_maxpool", "reshape"),
    "Identity": (), "LeakyRelu": ("leaky_relu",), "MatMul": ("dense", "matmul"), "MaxPool": ("maxpool", "reshape"),
    "Mul": ("mul",), "Pad": ("pad",), "QuantizeLinear": ("quantize_linear",), "ReduceMax": ("reduce_max",),
    "ReduceMean": ("reduce_mean",), "ReduceSum": ("reduce_sum",), "Relu": ("relu",), "Reshape": ("reshape",),
    "Resize": ("resize",), "Shape": (), "Sigmoid": ("sigmoid",), "Size": (), "Slice": ("slice",),
    "Softmax": ("softmax", "reshape"), "LogSoftmax": ("log_softmax", "reshape"), "Split": ("slice",), "Squeeze": ("reshape",), "Sub": ("add", "mul"),
    "Tanh": ("tanh",), "Transpose": ("transpose",), "Unsqueeze": ("reshape",),
    # pointwise math (integer form: the generic `table` op), masks, normalisations
    "Sqrt": ("sqrt",), "Exp": ("exp",), "Reciprocal": ("reciprocal",), "Neg": ("neg",), "Abs": ("abs",),
    "Erf": ("erf",), "Softplus": ("softplus",), "HardSwish": ("hard_swish",), "HardSigmoid": ("hard_sigmoid",),
    "Elu": ("elu",), "Selu": ("selu",), "Gelu": ("gelu",), "Pow": ("pow",), "Max": ("max",), "Min": ("min",),
    "Sum": ("add",), "PRelu": ("prelu", "leaky_relu"), "Equal": ("equal",), "Less": ("less",),
    "Greater": ("greater",), "LessOrEqual": ("less_equal",), "GreaterOrEqual": ("greater_equal",), "Not": ("not",), "And": ("and",), "Or": ("or",), "Where": ("where",),
    "LRN": ("lrn",), "InstanceNormalization": ("instance_norm",), "Sin": ("sin",), "Cos": ("cos",), "Tan": ("tan",),
    "Asin": ("asin",), "Acos": ("acos",), "Atan": ("atan",), "Sinh": ("sinh",), "Cosh": ("cosh",), "Asinh": ("asinh",),
    "Acosh": ("acosh",), "Atanh": ("atanh",), "Log": ("log",), "Sign": ("sign",), "Floor": ("floor",),
    "Ceil": ("ceil",), "Round": ("round",), "Softsign": ("softsign",), "Mish": ("mish",), "Celu": ("celu",),
    "ThresholdedRelu": ("thresholded_relu",), "Shrink": ("shrink",),
    # transformers (lbc.ir.ops.transformer); Expand and GatherElements only on constants or attention masks
    "LayerNormalization": ("layer_norm",), "GatherElements": (), "GatherND": (),
}

# ONNX element types of graph inputs: float32 stays float (and is quantised); integer types (token
# ids, masks) become lbc's integer input type and are never quantised.
_FLOAT_INPUT = {"FLOAT"}
_INT_INPUT = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}


FLOAT = 1  # onnx.TensorProto.FLOAT: the only element type of a computed tensor in a float lbc graph
BOOL_TYPE = 9  # onnx.TensorProto.BOOL
# Ops an attention-mask chain may pass through: data movement, evaluated on the mask's element indices
_MASK_LAYOUT = {"Flatten", "Reshape", "Gather", "GatherND", "GatherElements", "Expand", "Unsqueeze", "Squeeze",
                "Transpose", "Slice", "Identity"}


def _gather_elements(data, indices, axis):
    """ONNX GatherElements (negative indices count from the end)."""
    axis = int(axis) % data.ndim
    idx = np.where(indices < 0, indices + data.shape[axis], indices)
    if np.any(idx < 0) or np.any(idx >= data.shape[axis]):
        raise ValueError("index out of range")
    return np.take_along_axis(np.asarray(data), idx.astype(np.int64), axis=axis)


class _Mask:
    """A bool tensor computed from one integer input `src` ([1, S]) by casts, data movement and And
    with constants: value = const & (src.flat[index] != 0) elementwise (index < 0 never occurs: a
    position not taken from `src` has its index still pointing at some element and const False)."""

    def __init__(self, src, const, index):
        self.src, self.const, self.index = src, const, index

    @classmethod
    def root(cls, src, shape):
        return cls(src, np.ones(shape, np.bool_), np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape))
NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli", "Dropout"}  # Dropout: converted (inference mode is the identity)
STATIC_SHAPE = {"Shape", "Size"}  # their value is the (static) shape of their input
_WINDOW = {"auto_pad", "dilations", "kernel_shape", "pads", "strides"}
_REDUCE = {"axes", "keepdims", "noop_with_empty_axes"}

# The attributes each converter reads. Any other attribute on a node is refused: its value would
# otherwise be ignored. (Values a converter does not implement are refused by the converter.)
ATTRS = {
    "Gemm": {"alpha", "beta", "transA", "transB"}, "MatMul": set(), "Add": set(), "Sub": set(), "Mul": set(),
    "Div": set(), "Expand": set(), "Relu": set(), "LeakyRelu": {"alpha"}, "Clip": {"min", "max"}, "Sigmoid": set(),
    "Tanh": set(),
    "Flatten": {"axis"}, "Reshape": {"allowzero"}, "Transpose": {"perm"}, "Identity": set(),
    "Dropout": {"seed", "ratio", "is_test"}, "Softmax": {"axis"}, "LogSoftmax": {"axis"},
    "ArgMax": {"axis", "keepdims", "select_last_index"},
    "Conv": _WINDOW | {"group"}, "ConvTranspose": _WINDOW | {"group", "output_padding", "output_shape"},
    "MaxPool": _WINDOW | {"ceil_mode", "storage_order"}, "AveragePool": _WINDOW | {"ceil_mode", "count_include_pad"},
    "GlobalAveragePool": set(), "GlobalMaxPool": set(),
    "BatchNormalization": {"epsilon", "momentum", "training_mode", "spatial", "is_test"},
    "Pad": {"mode", "pads", "value"}, "Concat": {"axis"},
    "QuantizeLinear": {"axis", "block_size", "output_dtype", "saturate", "precision"},
    "DequantizeLinear": {"axis", "block_size", "output_dtype"},
    "Cast": {"to", "saturate", "round_mode"}, "CastLike": {"saturate", "round_mode"},
    "Squeeze": {"axes"}, "Unsqueeze": {"axes"}, "Gather": {"axis"}, "Slice": {"starts", "ends", "axes"},
    "Split": {"axis", "split", "num_outputs"},
    "ReduceMean": _REDUCE, "ReduceSum": _REDUCE, "ReduceMax": _REDUCE,
    "Resize": {"mode", "coordinate_transformation_mode", "nearest_mode", "antialias", "axes", "cubic_coeff_a",
               "exclude_outside", "extrapolation_value", "keep_aspect_ratio_policy"},
    "HardSigmoid": {"alpha", "beta"}, "Elu": {"alpha"}, "Celu": {"alpha"}, "ThresholdedRelu": {"alpha"},
    "Selu": {"alpha", "gamma"}, "Gelu": {"approximate"}, "Shrink": {"bias", "lambd"},
    "LRN": {"alpha", "beta", "bias", "size"}, "InstanceNormalization": {"epsilon"},
    "LayerNormalization": {"axis", "epsilon", "stash_type"}, "GatherElements": {"axis"},
    "GatherND": {"batch_dims"},
}


class _Refused(Exception):
    """A construct lbc does not implement; the message names it (collected into one UnsupportedOpError)."""


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
        self.qtypes = {}  # output of a QuantizeLinear -> (its parameters, its numpy dtype)
        self.problems = Problems()
        self.masks = {}  # attention-mask chains being traced: onnx tensor -> _Mask (see mask_node)
        self.mask_roots = {}  # integer input -> its IR ne_zero mask
        self.unknown = set()  # tensors produced by nodes that could not be imported
        self.stubs = set()  # tolerant mode: stand-ins (ONNX-inferred shapes) for tensors of such nodes
        self.inferred = self._inferred_shapes() if tolerant else {}
        self.trace = []  # per ONNX node: (name, op_type, IR nodes it became, problem or None)
        self.read = {t for n in g.node for t in n.input} | {o.name for o in g.output}  # tensors something reads
        init_names = set(self.consts)
        real_inputs = [i for i in g.input if i.name not in init_names]
        shapes = self._shape_overrides(real_inputs, input_shape)
        for inp in real_inputs:
            self.g.inputs.append(inp.name)
            self.g.types[inp.name] = TensorType(self._input_dtype(inp), self._input_shape(inp, shapes.get(inp.name)))

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
        if kind == "BOOL":
            return BOOL  # a mask, as comparisons make inside the graph
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
            if min(shape, default=1) < 1:
                raise ModelError(f"--input-shape {','.join(map(str, shape))} for input {safe_name(inp.name)!r}: "
                                 f"every dimension must be at least 1")
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
        """IR name of an ONNX tensor; constants are materialised in the graph on first use (bool ones as
        masks, all others as float)."""
        t = self.name(t)
        if t in self.consts and t not in self.g.consts:
            v = self.consts[t]
            if v.dtype == np.bool_:
                self.g.add_const(t, v, BOOL)  # a mask
                return t
            if v.dtype != np.float32:
                raise _Refused(f"a {_np_name(v.dtype)} constant used as a float32 operand")
            self.g.add_const(t, v, F32)
        return t

    def emit(self, op, node_name, inputs, output, attrs=None, dtype=None, int_ok=False):
        """Append an IR node. Integer tensors (integer inputs such as token ids) may only be moved
        by layout ops (and read by ops that take them, `int_ok`); any other op refuses them."""
        d = OPS[op]
        ins = [self.name(i) if int_ok and not self.is_const(i) else self.ir_input(i) for i in inputs]
        n = Node(op, node_name, ins, [output], dict(attrs or {}))
        shapes = [self.g.types[i].shape for i in n.inputs]
        ints = sorted({self.g.types[i].dtype.name for i in n.inputs
                       if i not in self.g.consts and not self.g.types[i].dtype.is_float})
        if dtype is None:
            dtype = F32
            if ints and not int_ok:
                if not d.layout:
                    raise _Refused(f"{op} of an integer tensor ({ints[0]})")
                dtype = self.g.types[n.inputs[0]].dtype  # integer data moved around stays integer
        try:
            (shape,) = d.infer(n, shapes, self.g)
        except ValueError as e:
            raise _Refused(str(e)) from None
        self.g.types[output] = TensorType(dtype, tuple(int(s) for s in shape))
        self.g.nodes.append(n)
        return output

    def tmp(self, base):
        return self.g.fresh_name(base)

    def _inferred_shapes(self):
        """ONNX shape inference's static shapes (batch dim 1), name -> tuple; {} where it fails."""
        import onnx
        try:
            model = onnx.shape_inference.infer_shapes(self.model)
        except Exception:  # noqa: BLE001 - only a nicety for lbc inspect's listing
            return {}
        shapes = {}
        for vi in list(model.graph.value_info) + list(model.graph.output):
            dims = vi.type.tensor_type.shape.dim
            shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (1 if i == 0 else None)
                     for i, d in enumerate(dims)]
            if vi.type.tensor_type.HasField("shape") and None not in shape:
                shapes[vi.name] = tuple(shape)
        return shapes

    def _stub(self, node):
        """Tolerant mode: let the walk go on past a node that cannot be imported. Its outputs get
        stand-ins of their inferred shape - zeros when every input is constant (generated
        weights), else an opaque activation - so later nodes still show their shapes, params and
        MACs; problems found only downstream of a stand-in are not counted as the model's own."""
        const = all(self.is_const(t) for t in node.input if t)
        for t in node.output:
            shape = self.inferred.get(t)
            if not self.tolerant or not t or shape is None:
                self.unknown.add(t)
            elif const:
                self.consts[t] = np.zeros(shape, dtype=np.float32)
                self.stubs.add(t)
            else:
                self.g.types[t] = TensorType(F32, shape)
                self.stubs.add(t)

    # -- the walk --------------------------------------------------------------------------------
    def run(self):
        """Import every node; collect every problem (unsupported ops with node names, inputs, nodes
        that cannot be converted) and raise them as one error - unless tolerant (lbc inspect), which
        keeps going past them and returns the partial graph; `problems` and `trace` tell the rest."""
        for i, node in enumerate(self.model.graph.node):
            nname = node.name or f"{node.op_type.lower()}_{i}"
            before = len(self.g.nodes)
            after_stub = any(self.name(t) in self.stubs for t in node.input if t)
            if any(self.name(t) in self.unknown for t in node.input if t):
                why = self.unsupported_reason(node)
                if why and node.op_type not in STATIC_SHAPE:
                    self.problems.add(f"unsupported op {why}", nname)
                self.trace.append((nname, node.op_type, [], "not imported: an input comes from a node above"))
                self.unknown.update(node.output)
                continue
            why, own = None, True
            try:
                if any(t in self.masks for t in node.input if t):
                    self.mask_node(node, nname)
                elif not self.try_fold(node):
                    why = self.unsupported_reason(node)
                    if why:
                        why = f"unsupported op {why}"
                    else:
                        self.convert(node, nname)
            except _Refused as e:
                why = str(e) if str(e).startswith(node.op_type) else f"{safe_name(node.op_type)}: {e}"
                own = not after_stub  # refused only because it reads a stand-in: a consequence, not a problem
            except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError) as e:
                # attributes or constants the checker lets through but no valid model has (a 0-d Gemm
                # weight, a perm of the wrong length...): the model's problem, named per node
                why = f"{safe_name(node.op_type)}: malformed node ({type(e).__name__}: {str(e)[:120]})"
                own = not after_stub
            if why is not None:
                for n in self.g.nodes[before:]:
                    self.g.types.pop(n.outputs[0], None)
                del self.g.nodes[before:]
                if own:
                    self.problems.add(why, nname)
                else:
                    why = f"not imported: an input comes from a node above ({why})"
                self._stub(node)
            self.trace.append((nname, node.op_type, [n.name for n in self.g.nodes[before:]], why))
        for o in self.model.graph.output:
            t = self.name(o.name)
            if t in self.unknown:
                continue
            if t in self.consts:
                self.problems.add(f"output {safe_name(o.name)!r} is a constant; nothing to compile")
                continue
            if t in self.masks:
                self.problems.add(f"output {safe_name(o.name)!r} is a bool cast of an integer tensor (lbc imports "
                                  f"those only as attention masks feeding a Where)")
                continue
            self.g.outputs.append(t)
        if self.problems and not self.tolerant:
            raise UnsupportedOpError(self.problems.message(f"{self.path}: cannot import (opset {self.opset})"))
        if self.exp_hints:
            self.g.meta["exp_hints"] = dict(sorted(self.exp_hints.items()))
        return self.g if self.tolerant else self.g.prune()

    # pointwise math, masks and normalisations (converters at the end of the class)
    UNARY = {"Sqrt": "sqrt", "Exp": "exp", "Reciprocal": "reciprocal", "Neg": "neg", "Abs": "abs", "Erf": "erf",
             "Softplus": "softplus", "HardSwish": "hard_swish", "HardSigmoid": "hard_sigmoid", "Elu": "elu",
             "Selu": "selu", "Gelu": "gelu", "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos",
             "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh",
             "Log": "log", "Sign": "sign", "Floor": "floor", "Ceil": "ceil", "Round": "round", "Softsign": "softsign",
             "Mish": "mish", "Celu": "celu", "ThresholdedRelu": "thresholded_relu", "Shrink": "shrink"}
    COMPARE = {"Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_equal",
               "GreaterOrEqual": "greater_equal"}

    def unsupported_reason(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            return f"{safe_name(node.domain)}.{safe_name(op)}"
        if op not in ONNX_OPS:
            return safe_name(op)
        extra = sorted(safe_name(a.name) for a in node.attribute if a.name not in ATTRS.get(op, ()))
        if extra:
            return f"{op} with attribute {', '.join(extra)}"
        return None

    def _one_node_model(self, node, feeds):
        """`node` as a model of the graph's opset: the reference picks the op version by the model's
        opset (given a bare node it uses the newest, e.g. Unsqueeze-13 for an opset-9 node with axes)."""
        from onnx import TensorProto, helper
        vi = [helper.make_tensor_value_info(t, TensorProto.UNDEFINED, None) for t in feeds]
        vo = [helper.make_tensor_value_info(t, TensorProto.UNDEFINED, None) for t in node.output if t]
        return helper.make_model(helper.make_graph([node], "fold", vi, vo),
                                 opset_imports=[helper.make_opsetid("", self.opset)])

    def try_fold(self, node):
        """Evaluate a node whose value is known at import (onnx's reference implementation)."""
        from onnx import AttributeProto
        from onnx.reference import ReferenceEvaluator
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                                                        for a in node.attribute):
            return False
        if op in NONDETERMINISTIC:
            return False
        if op in STATIC_SHAPE:
            feeds = {node.input[0]: np.broadcast_to(np.float32(0), self.shape(node.input[0]))}
        elif all(self.is_const(t) for t in node.input):
            feeds = {t: self.const(t) for t in node.input if t}
        else:
            return False
        try:
            if op == "GatherElements":  # onnx's reference fails on some valid inputs; exact in numpy
                outs = [_gather_elements(feeds[node.input[0]], feeds[node.input[1]], _attrs(node).get("axis", 0))]
            else:
                outs = ReferenceEvaluator(self._one_node_model(node, feeds)).run(None, feeds)
        except Exception as e:  # noqa: BLE001 - the reference raises anything on models it rejects
            raise _Refused(f"cannot evaluate this constant {op} node ({type(e).__name__}: {e})"[:300]) from None
        if not all(isinstance(v, np.ndarray) for v in outs):
            raise _Refused(f"{op} producing a non-tensor value")
        for t, v in zip(node.output, outs):
            if t:
                self.fold(t, v)
        return True

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

    def need_const(self, node, t, what):
        v = self.const(t)
        if v is None:
            raise _Refused(f"a non-constant {what}")
        return v

    def no_extra_outputs(self, node, what):
        """Refuse a node whose extra outputs (which lbc does not compute) something reads; an extra
        output nobody reads (a Dropout mask exporters name anyway) is harmless."""
        if any(o and o in self.read for o in node.output[1:]):
            raise _Refused(f"its {what} output")

    # -- op converters ---------------------------------------------------------------------------
    def mask_node(self, node, nname):
        """One node of an attention-mask chain (Hugging Face: Cast(attention_mask, bool), Flatten, Gather,
        Reshape, And, Expand, ..., Where(mask, 0, finfo.min)). The chain is traced on the mask's element
        indices, so the result is exact whatever the exporter's plumbing: the final Where becomes
        ne_zero(src) -> gather with constant indices -> where with constant branches."""
        from onnx.reference import ReferenceEvaluator
        op = node.op_type
        m = [self.masks.get(t) for t in node.input]
        if op in STATIC_SHAPE:
            self.fold(node.output[0], np.array(m[0].const.shape if op == "Shape" else m[0].const.size, np.int64))
            return
        if op == "Cast" and _attrs(node)["to"] == BOOL_TYPE:
            self.masks[node.output[0]] = m[0]
            return
        if op in _MASK_LAYOUT and m[0] is not None and all(x is None for x in m[1:]):
            rest = {t: self.need_const(node, t, "shape or index operand") for t in node.input[1:] if t}
            outs = []
            for v in (m[0].const, m[0].index):
                feeds = {node.input[0]: v, **rest}
                outs.append(ReferenceEvaluator(self._one_node_model(node, feeds)).run(None, feeds)[0])
            self.masks[node.output[0]] = _Mask(m[0].src, *outs)
            return
        if op == "And" and sum(x is not None for x in m) == 1:
            mk = m[0] or m[1]
            c = self.need_const(node, node.input[1] if m[0] else node.input[0], "operand")
            shape = np.broadcast_shapes(mk.const.shape, c.shape)
            self.masks[node.output[0]] = _Mask(mk.src, np.broadcast_to(mk.const & c.astype(np.bool_), shape).copy(),
                                               np.broadcast_to(mk.index, shape).copy())
            return
        if op == "Where" and m[0] is not None and m[1] is None and m[2] is None:
            x = self.need_const(node, node.input[1], "true branch")
            y = self.need_const(node, node.input[2], "false branch")
            if x.dtype != np.float32 or y.dtype != np.float32:
                raise _Refused("a mask selecting between non-float32 values")
            mk = m[0]
            if mk.index.ndim < 2 or mk.index.shape[0] != 1 or len(self.shape(mk.src)) != 2 or self.shape(mk.src)[0] != 1:
                raise _Refused("an attention mask not made from an integer [1, S] input")
            if mk.src not in self.mask_roots:
                root = self.tmp(f"{nname}.nonzero")
                self.emit("ne_zero", f"{nname}.nonzero", [mk.src], root, dtype=BOOL, int_ok=True)
                self.mask_roots[mk.src] = root
            picked = self.tmp(f"{nname}.mask")
            self.emit("gather", f"{nname}.mask", [self.mask_roots[mk.src]], picked,
                      {"axis": 1, "indices": tuple(int(v) for v in mk.index[0].reshape(-1)),
                       "indices_shape": tuple(int(d) for d in mk.index.shape[1:])}, dtype=BOOL, int_ok=True)
            shape = np.broadcast_shapes(mk.const.shape, x.shape, y.shape)
            x_eff = np.broadcast_to(np.where(mk.const, x, y), shape)  # const False: always the false branch
            self.emit("where", nname, [picked, self.add_const(f"{nname}.on", x_eff),
                                       self.add_const(f"{nname}.off", np.broadcast_to(y, shape))], node.output[0],
                      dtype=F32, int_ok=True)
            return
        raise _Refused("an attention-mask tensor used in a way lbc does not import (only Cast, data movement, "
                       "And with a constant and Where between constants)")

    def op_LayerNormalization(self, node, nname, ins, out, a):
        self.no_extra_outputs(node, "mean / inverse standard deviation")
        s = self.shape(ins[0])
        if int(a.get("axis", -1)) % len(s) != len(s) - 1:
            raise _Refused("a normalisation over more than the last axis")
        if int(a.get("stash_type", 1)) != 1:
            raise _Refused(f"stash_type {int(a['stash_type'])}")
        scale = self.need_const(node, ins[1], "scale")
        bias = self.const(ins[2]) if len(ins) > 2 and ins[2] else np.zeros(s[-1], np.float32)
        if bias is None:
            raise _Refused("a non-constant bias")
        shape = (s[-1],)
        self.emit("layer_norm", nname, [ins[0], self.add_const(f"{nname}.scale", np.broadcast_to(scale, shape)),
                                        self.add_const(f"{nname}.bias", np.broadcast_to(bias, shape))], out,
                  {"epsilon": float(a.get("epsilon", 1e-5))})

    def op_GatherElements(self, node, nname, ins, out, a):
        raise _Refused("a computed input (only constants are gathered element-wise)")

    def op_GatherND(self, node, nname, ins, out, a):
        raise _Refused("a computed input (only constants and attention masks are gathered this way)")

    def op_Cast(self, node, nname, ins, out, a):
        if a["to"] == FLOAT and not self.is_const(ins[0]) and self._is_mask(ins[0]):  # mask -> 0.0 / 1.0
            one, zero = self.add_const(f"{nname}.one", 1.0), self.add_const(f"{nname}.zero", 0.0)
            self.emit("where", nname, [ins[0], one, zero], out, dtype=F32)
            return
        if a["to"] == BOOL_TYPE and not self.g.types[self.name(ins[0])].dtype.is_float:
            self.masks[out] = _Mask.root(self.name(ins[0]), self.shape(ins[0]))  # integer -> bool: a mask
            return
        if a["to"] != FLOAT:
            raise _Refused(f"to {_dtype_name(a['to'])} on a computed tensor")
        self.alias[out] = self.ir_input(ins[0])  # float32 -> float32 is the identity

    def op_CastLike(self, node, nname, ins, out, a):
        like = self.const(ins[1])
        if like is not None and like.dtype != np.float32:
            raise _Refused(f"to {_np_name(like.dtype)} on a computed tensor")
        if like is None and not self.g.types[self.name(ins[1])].dtype.is_float:
            raise _Refused("to an integer type on a computed tensor")
        self.alias[out] = self.ir_input(ins[0])

    def op_Identity(self, node, nname, ins, out, a):
        self.alias[out] = self.ir_input(ins[0])

    def op_Dropout(self, node, nname, ins, out, a):
        if "is_test" in a and not a["is_test"]:
            raise _Refused("training mode (is_test=0)")
        if len(ins) > 2 and ins[2]:
            mode = self.need_const(node, ins[2], "training_mode")
            ratio = self.const(ins[1]) if len(ins) > 1 and ins[1] else np.float32(0.5)
            if bool(mode) and (ratio is None or float(ratio) != 0.0):
                raise _Refused("training_mode=1 (random masking)")
        self.no_extra_outputs(node, "mask")
        self.alias[out] = self.name(ins[0])

    def _q_params(self, node, ins, a, for_dq):
        scale = self.need_const(node, ins[1], "scale")
        zp = self.const(ins[2]) if len(ins) > 2 and ins[2] else None
        if len(ins) > 2 and ins[2] and zp is None:
            raise _Refused("a non-constant zero point")
        if a.get("block_size", 0):
            raise _Refused("block quantisation (block_size)")
        if scale.dtype != np.float32:
            raise _Refused(f"a {_np_name(scale.dtype)} scale")
        qtype = zp.dtype if zp is not None else None
        if qtype is None:
            odt = a.get("output_dtype", 0)
            qtype = np.dtype(np.uint8) if not odt else _np_of(odt)
        if qtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            raise _Refused(f"{_np_name(qtype)} quantised values (lbc implements int8 and uint8)")
        if not for_dq and a.get("precision", 0) not in (0, FLOAT):
            raise _Refused(f"precision {_dtype_name(a['precision'])}")
        if for_dq and a.get("output_dtype", 0) not in (0, FLOAT):
            raise _Refused(f"output_dtype {_dtype_name(a['output_dtype'])}")
        x_shape = self.shape(ins[0])
        axis = int(a.get("axis", 1))
        if scale.ndim == 1 and scale.size > 1:
            if not -len(x_shape) <= axis < len(x_shape) or axis % len(x_shape) == 0:
                raise _Refused(f"per-axis scales on axis {axis}")
            axis %= len(x_shape)
        else:
            axis = 1
        if scale.ndim > 1:
            raise _Refused("a scale of rank > 1")
        if not np.all(scale > 0) or not np.all(np.isfinite(scale)):
            raise _Refused("a scale that is not positive")
        zpv = np.zeros(scale.shape, np.float64) if zp is None else zp.astype(np.float64)
        info = np.iinfo(qtype)
        return {"scale": tuple(float(v) for v in scale.reshape(-1)),
                "zero_point": tuple(float(v) for v in zpv.reshape(-1)),
                "axis": axis, "qmin": int(info.min), "qmax": int(info.max)}, qtype

    def op_QuantizeLinear(self, node, nname, ins, out, a):
        if not a.get("saturate", 1):
            raise _Refused("saturate=0")
        params, qtype = self._q_params(node, ins, a, False)
        self.emit("quantize_linear", nname, ins[:1], out, params, dtype=I8 if qtype == np.int8 else U8)
        self.qtypes[out] = (params, qtype)

    def op_DequantizeLinear(self, node, nname, ins, out, a):
        small_ints = {"INT8", "UINT8", "INT16", "UINT16"}
        if ins[0] not in self.qtypes:
            if self._graph_input_type(ins[0]) not in small_ints:
                raise _Refused("a computed input that is neither a QuantizeLinear's output nor an 8/16-bit "
                               "integer model input")
            params, _ = self._q_params(node, ins, a, True)
            self.emit("dequantize_linear", nname, ins[:1], out, params, int_ok=True)
            return
        params, qtype = self._q_params(node, ins, a, True)
        qparams, qqtype = self.qtypes[ins[0]]
        if (params, qtype) == (qparams, qqtype):
            # a Q/DQ pair: one fake-quantise op (exact), and the scale is a hint for lbc's quantiser
            q = self.g.producers()[ins[0]]
            src = q.inputs[0]
            self.emit("fake_quant", nname, [src], out, params)
            scale = params["scale"]
            if len(scale) == 1 and params["zero_point"] == (0.0,):
                e = -np.log2(scale[0])
                if abs(e - round(e)) < 1e-9:
                    self.exp_hints[src] = int(round(e))
            return
        self.emit("dequantize_linear", nname, ins[:1], out, params, int_ok=True)

    def _graph_input_type(self, t):
        """The ONNX element type name of a model input (None for other tensors)."""
        from onnx import TensorProto
        t = self.name(t)
        for i in self.model.graph.input:
            if i.name == t and t in self.g.inputs:
                return TensorProto.DataType.Name(i.type.tensor_type.elem_type)
        return None

    def op_Gemm(self, node, nname, ins, out, a):
        if a.get("transA", 0):
            raise _Refused("transA=1 on a computed A (it would move the batch axis)")
        w = self.need_const(node, ins[1], "weight B")
        if w.dtype != np.float32:
            raise _Refused(f"a {_np_name(w.dtype)} B")
        w = w.astype(np.float64)
        if not a.get("transB", 0):
            w = w.T
        w = w * a.get("alpha", 1.0)
        inputs = [ins[0], self.add_const(f"{nname}.weight", w)]
        c = None
        if len(ins) > 2 and ins[2]:
            c = self.need_const(node, ins[2], "bias C")
            if c.dtype != np.float32:
                raise _Refused(f"a {_np_name(c.dtype)} C")
            c = c.astype(np.float64) * a.get("beta", 1.0)
            if c.ndim == 2 and c.shape[0] != 1:
                raise _Refused(f"a bias C of shape {c.shape} that differs between rows (the batch axis)")
            if c.size not in (1, w.shape[0]):
                raise _Refused(f"a bias C of {c.size} values for {w.shape[0]} outputs")
            inputs.append(self.add_const(f"{nname}.bias", np.broadcast_to(c.reshape(-1), (w.shape[0],))))
        self.emit("dense", nname, inputs, out)

    def op_MatMul(self, node, nname, ins, out, a):
        w = self.const(ins[1])
        xs = self.shape(ins[0])
        if w is not None and w.ndim == 2 and len(xs) >= 2 and w.dtype == np.float32:
            self.emit("dense", nname, [ins[0], self.add_const(f"{nname}.weight", w.T)], out)
            return
        if self.is_const(ins[0]):
            raise _Refused("a constant left operand and a computed right operand")
        if len(xs) < 2 or len(self.shape(ins[1])) < 2:
            raise _Refused("a 1-d operand")
        if w is not None and w.ndim == len(xs) and w.shape[0] != 1:
            raise _Refused(f"a constant right operand of shape {w.shape} whose batch axis is not 1")
        self.emit("matmul", nname, ins[:2], out)

    def _binary(self, node, nname, ins, out, op):
        x, y = ins
        if self.is_const(x) and op in ("add", "mul", "max", "min"):  # commutative: the activation goes first
            x, y = y, x
        self._check_batch(node, x, y)
        self.emit(op, nname, [x, y], out)

    def _check_batch(self, node, x, y):
        """The first operand carries the batch axis: the result must keep its shape's leading axis."""
        sx, sy = self.shape(x), self.shape(y)
        try:
            r = np.broadcast_shapes(sx, sy)
        except ValueError:
            raise _Refused(f"operands of shapes {sx} and {sy} that do not broadcast") from None
        if self.is_const(x) or len(r) != len(sx) or not sx or r[0] != sx[0]:
            raise _Refused(f"operands of shapes {sx} and {sy} whose broadcast changes the batch axis")
        if self.is_const(y) and len(sy) == len(sx) and sy[0] != 1:
            raise _Refused(f"a constant of shape {sy} whose batch axis is not 1 (it would differ between samples)")

    def op_Add(self, node, nname, ins, out, a):
        self._binary(node, nname, ins, out, "add")

    def op_Mul(self, node, nname, ins, out, a):
        self._binary(node, nname, ins, out, "mul")

    def op_Sub(self, node, nname, ins, out, a):
        if self.is_const(ins[1]):
            c = self.const(ins[1])
            if c.dtype != np.float32:
                raise _Refused(f"a {_np_name(c.dtype)} operand")
            self._check_batch(node, ins[0], ins[1])
            self.emit("add", nname, [ins[0], self.add_const(f"{nname}.const", -c)], out)
        elif self.is_const(ins[0]):
            neg = self.tmp(f"{nname}.neg")
            self.emit("mul", f"{nname}.negate", [ins[1], self.add_const(f"{nname}.minus1", np.float32(-1))], neg)
            self._check_batch(node, neg, ins[0])
            self.emit("add", nname, [neg, ins[0]], out)
        else:
            self._check_batch(node, ins[0], ins[1])
            neg = self.tmp(f"{nname}.neg")
            self.emit("mul", f"{nname}.negate", [ins[1], self.add_const(f"{nname}.minus1", np.float32(-1))], neg)
            self.emit("add", nname, [ins[0], neg], out)

    def op_Div(self, node, nname, ins, out, a):
        if not self.is_const(ins[1]):
            self._check_batch(node, ins[0], ins[1])
            self.emit("div", nname, ins[:2], out)
            return
        d = self.need_const(node, ins[1], "divisor")
        if d.dtype != np.float32:
            raise _Refused(f"a {_np_name(d.dtype)} divisor")
        if np.any(d == 0) or not np.all(np.isfinite(1.0 / d.astype(np.float64))):
            raise _Refused("a zero divisor")
        self._check_batch(node, ins[0], ins[1])
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
        if len(ins) > 1 and ins[1]:
            lo = float(self.need_const(node, ins[1], "min"))
        if len(ins) > 2 and ins[2]:
            hi = float(self.need_const(node, ins[2], "max"))
        self.emit("clip", nname, ins[:1], out, {"min": float(lo), "max": float(hi)})

    def op_Flatten(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        ax = a.get("axis", 1)
        ax = ax + len(s) if ax < 0 else ax
        new = (int(np.prod(s[:ax])), int(np.prod(s[ax:])))
        self._reshape(nname, ins[0], out, new)

    def _reshape(self, nname, src, out, new):
        s = self.shape(src)
        if not new or new[0] != s[0]:
            raise _Refused(f"a reshape of {s} to {tuple(new)}, which changes the batch axis (axis 0)")
        self.emit("reshape", nname, [src], out, {"shape": tuple(int(d) for d in new)})

    def op_Reshape(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        target = [int(d) for d in self.need_const(node, ins[1], "shape")]
        if not a.get("allowzero", 0):
            target = [s[i] if d == 0 else d for i, d in enumerate(target)]
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(s)) // max(known, 1)
        if int(np.prod(target)) != int(np.prod(s)):
            raise _Refused(f"shape {target} for an input of shape {s}")
        self._reshape(nname, ins[0], out, tuple(target))

    def op_Squeeze(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        axes = a.get("axes") if "axes" in a else (self.need_const(node, ins[1], "axes").tolist()
                                                    if len(ins) > 1 and ins[1] else None)
        if axes is None:
            axes = [i for i, d in enumerate(s) if d == 1]
        axes = {int(x) % len(s) for x in axes}
        if any(s[i] != 1 for i in axes):
            raise _Refused(f"axes {sorted(axes)} of shape {s} that are not 1")
        self._reshape(nname, ins[0], out, tuple(d for i, d in enumerate(s) if i not in axes))

    def op_Unsqueeze(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        axes = a.get("axes") if "axes" in a else self.need_const(node, ins[1], "axes").tolist()
        rank = len(s) + len(axes)
        new = list(s)
        for ax in sorted(int(x) % rank for x in axes):
            new.insert(ax, 1)
        self._reshape(nname, ins[0], out, tuple(new))

    def op_Transpose(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        perm = tuple(int(p) % max(len(s), 1) for p in a.get("perm", range(len(s) - 1, -1, -1)))
        if perm == tuple(range(len(s))):
            self.alias[out] = self.ir_input(ins[0])
        elif perm[0] != 0 and s[0] != 1:
            raise _Refused(f"perm {list(perm)} that moves the batch axis")
        elif perm[0] != 0:
            raise _Refused(f"perm {list(perm)} that moves the batch axis")
        else:
            self.emit("transpose", nname, ins, out, {"perm": perm})

    def op_Concat(self, node, nname, ins, out, a):
        rank = len(self.shape(ins[0]))
        if any(self.is_const(i) and (len(self.shape(i)) != rank or self.shape(i)[0] != 1) for i in ins):
            raise _Refused("a constant operand whose batch axis is not 1 (it would differ between samples)")
        inputs = [i if not self.is_const(i) else self.add_const(f"{nname}.const", self.const(i)) for i in ins]
        if int(a["axis"]) % rank == 0:
            raise _Refused("axis 0 (the batch axis)")
        self.emit("concat", nname, inputs, out, {"axis": int(a["axis"]) % rank})

    def op_Softmax(self, node, nname, ins, out, a, op="softmax"):
        s = self.shape(ins[0])
        rank = len(s)
        if self.opset >= 13:
            ax = int(a.get("axis", -1)) % rank
            if ax == 0:
                raise _Refused("axis 0 (the batch axis)")
            self.emit(op, nname, ins, out, {"axis": ax})
            return
        ax = int(a.get("axis", 1)) % rank  # before opset 13: softmax over the flattened axes [axis, rank)
        if ax == 0:
            raise _Refused("axis 0 (the batch axis)")
        if ax == rank - 1:
            self.emit(op, nname, ins, out, {"axis": ax})
            return
        flat, soft = self.tmp(f"{nname}.flat"), self.tmp(f"{nname}.soft")
        self._reshape(f"{nname}.flatten", ins[0], flat, s[:ax] + (int(np.prod(s[ax:])),))
        self.emit(op, nname, [flat], soft, {"axis": ax})
        self._reshape(f"{nname}.unflatten", soft, out, s)

    def op_LogSoftmax(self, node, nname, ins, out, a):
        self.op_Softmax(node, nname, ins, out, a, op="log_softmax")

    def op_ArgMax(self, node, nname, ins, out, a):
        if a.get("select_last_index", 0):
            raise _Refused("select_last_index=1")
        rank = len(self.shape(ins[0]))
        ax = int(a.get("axis", 0)) % rank
        if ax == 0:
            raise _Refused("axis 0 (the batch axis)")
        self.emit("argmax", nname, ins, out, {"axis": ax, "keepdims": int(a.get("keepdims", 1))}, dtype=I32)

    # -- windows: conv, pooling (1-d ones run as 2-d with a height of 1) --------------------------
    def _window_attrs(self, a, s, kernel):
        nd = len(kernel)
        strides = tuple(a.get("strides", (1,) * nd))
        dil = tuple(a.get("dilations", (1,) * nd))
        auto = _decode(a.get("auto_pad", "NOTSET"))
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            if a.get("ceil_mode", 0):
                raise _Refused("auto_pad SAME with ceil_mode=1")
            lo, hi = [], []
            for i in range(nd):
                o = -(-s[2 + i] // strides[i])
                total = max(0, (o - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - s[2 + i])
                small = total // 2
                lo.append(small if auto == "SAME_UPPER" else total - small)
                hi.append(total - lo[-1])
            p = tuple(lo) + tuple(hi)
        elif auto == "VALID":
            p = (0,) * (2 * nd)
        elif auto == "NOTSET":
            p = tuple(a.get("pads", (0,) * (2 * nd)))
        else:
            raise _Refused(f"auto_pad {auto}")
        if len(strides) != nd or len(dil) != nd or len(p) != 2 * nd:
            raise _Refused("strides/dilations/pads that do not match the kernel rank")
        if nd == 1:
            return (1,) + strides, (0, p[0], 0, p[1]), (1,) + dil
        return strides, tuple(int(v) for v in p), dil

    def _spatial(self, node, ins, nd):
        s = self.shape(ins[0])
        if nd not in (1, 2) or len(s) != nd + 2:
            raise _Refused(f"{nd}-d windows (lbc implements 1-d and 2-d)")
        return s

    def _as_2d(self, nname, src, s):
        """A 1-d (N, C, W) tensor as (N, C, 1, W)."""
        if len(s) == 4:
            return src
        t = self.tmp(f"{nname}.as2d")
        self.emit("reshape", f"{nname}.as2d", [src], t, {"shape": (s[0], s[1], 1, s[2])})
        return t

    def _emit_window(self, op, nname, x, out, attrs, nd):
        if nd == 2:
            self.emit(op, nname, [x] + attrs.pop("_extra", []), out, attrs)
            return
        t = self.tmp(f"{nname}.2d")
        self.emit(op, nname, [x] + attrs.pop("_extra", []), t, attrs)
        s = self.g.types[t].shape
        self.emit("reshape", f"{nname}.as1d", [t], out, {"shape": (s[0], s[1], s[3])})

    def op_Conv(self, node, nname, ins, out, a):
        w = self.need_const(node, ins[1], "weight")
        if w.dtype != np.float32:
            raise _Refused(f"{_np_name(w.dtype)} weights")
        nd = w.ndim - 2
        s = self._spatial(node, ins, nd)
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != tuple(w.shape[2:]):
            raise _Refused("kernel_shape that differs from the weight's shape")
        strides, pads, dil = self._window_attrs(a, s, w.shape[2:])
        x = self._as_2d(nname, ins[0], s)
        wname = ins[1] if nd == 2 else self.add_const(f"{nname}.weight", w.reshape(w.shape[:2] + (1,) + w.shape[2:]))
        extra = [wname] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
        self._emit_window("conv2d", nname, x, out, {"strides": strides, "pads": pads, "dilations": dil,
                                                    "group": int(a.get("group", 1)), "_extra": extra}, nd)

    def op_ConvTranspose(self, node, nname, ins, out, a):
        """Imported as dilate (zeros between input pixels), pad by dilation*(k-1) - pads (+
        output_padding at the end) and conv2d with the flipped, transposed kernel - the same sums,
        and every part has an integer form."""
        w = self.need_const(node, ins[1], "weight")
        if w.dtype != np.float32:
            raise _Refused(f"{_np_name(w.dtype)} weights")
        nd = w.ndim - 2
        s = self._spatial(node, ins, nd)
        if "output_shape" in a:
            raise _Refused("output_shape")
        auto = _decode(a.get("auto_pad", "NOTSET"))
        if auto not in ("NOTSET", "VALID"):
            raise _Refused(f"auto_pad {auto}")
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != tuple(w.shape[2:]):
            raise _Refused("kernel_shape that differs from the weight's shape")
        strides, pads, dil = self._window_attrs({k: v for k, v in a.items() if k != "auto_pad"}, s, w.shape[2:])
        if auto == "VALID":
            pads = (0, 0, 0, 0)
        opad = tuple(int(v) for v in a.get("output_padding", (0,) * nd))
        opad = (0,) + opad if nd == 1 else opad
        g = int(a.get("group", 1))
        w4 = w.reshape(w.shape[:2] + (1,) + w.shape[2:]) if nd == 1 else w
        cin, mg, kh, kw = w4.shape
        if cin % g or s[1] != cin:
            raise _Refused(f"a weight {w.shape} that does not match {s[1]} input channels in {g} groups")
        cg = cin // g
        wc = np.concatenate([np.transpose(w4[gi * cg:(gi + 1) * cg, :, ::-1, ::-1], (1, 0, 2, 3)) for gi in range(g)])
        k = (kh, kw)
        begin = [dil[i] * (k[i] - 1) - pads[i] for i in range(2)]
        end = [dil[i] * (k[i] - 1) - pads[i + 2] + opad[i] for i in range(2)]
        if min(begin + end) < 0:
            raise _Refused("pads larger than dilation * (kernel - 1)")
        x = self._as_2d(nname, ins[0], s)
        if strides != (1, 1):
            t = self.tmp(f"{nname}.dilated")
            self.emit("dilate", f"{nname}.dilate", [x], t, {"strides": strides})
            x = t
        if any(begin + end):
            t = self.tmp(f"{nname}.padded")
            self.emit("pad", f"{nname}.pad", [x], t, {"pads": (0, 0, begin[0], begin[1], 0, 0, end[0], end[1]),
                                                      "value": 0.0, "mode": "constant"})
            x = t
        extra = [self.add_const(f"{nname}.weight", wc)] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
        self._emit_window("conv2d", nname, x, out, {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": dil,
                                                    "group": g, "_extra": extra}, nd)

    def _pool(self, op, node, nname, ins, out, a, extra_attrs):
        k = tuple(a["kernel_shape"])
        nd = len(k)
        s = self._spatial(node, ins, nd)
        strides, pads, dil = self._window_attrs(a, s, k)
        if dil != (1, 1):
            raise _Refused("dilations")
        x = self._as_2d(nname, ins[0], s)
        k2 = (1,) + k if nd == 1 else k
        self._emit_window(op, nname, x, out, {"kernel": k2, "strides": strides, "pads": pads,
                                              "ceil_mode": int(a.get("ceil_mode", 0)), **extra_attrs}, nd)

    def op_MaxPool(self, node, nname, ins, out, a):
        self.no_extra_outputs(node, "Indices")
        if a.get("storage_order", 0):
            pass  # storage_order only affects the Indices output, refused above
        self._pool("maxpool", node, nname, ins, out, a, {})

    def op_AveragePool(self, node, nname, ins, out, a):
        self._pool("avgpool", node, nname, ins, out, a, {"count_include_pad": int(a.get("count_include_pad", 0))})

    def _global(self, op, nname, ins, out):
        s = self.shape(ins[0])
        if len(s) < 3:
            raise _Refused(f"a rank-{len(s)} input")
        if len(s) == 4:
            self.emit(op, nname, ins, out)
            return
        flat = self.tmp(f"{nname}.flat")
        self.emit("reshape", f"{nname}.flat", ins[:1], flat, {"shape": (s[0], s[1], 1, int(np.prod(s[2:])))})
        t = self.tmp(f"{nname}.2d")
        self.emit(op, nname, [flat], t)
        self.emit("reshape", f"{nname}.unflat", [t], out, {"shape": s[:2] + (1,) * (len(s) - 2)})

    def op_GlobalAveragePool(self, node, nname, ins, out, a):
        self._global("global_avgpool", nname, ins, out)

    def op_GlobalMaxPool(self, node, nname, ins, out, a):
        self._global("global_maxpool", nname, ins, out)

    def op_BatchNormalization(self, node, nname, ins, out, a):
        if a.get("training_mode", 0) or ("is_test" in a and not a["is_test"]):
            raise _Refused("training mode (batch statistics)")
        if not a.get("spatial", 1):
            raise _Refused("spatial=0")
        self.no_extra_outputs(node, "running statistics")
        for i, what in zip(ins[1:5], ("scale", "bias", "mean", "var")):
            v = self.need_const(node, i, what)
            if v.dtype != np.float32:
                raise _Refused(f"a {_np_name(v.dtype)} {what}")
        if len(self.shape(ins[0])) < 2:
            raise _Refused("a 1-d input")
        self.emit("batchnorm", nname, ins[:5], out, {"epsilon": float(a.get("epsilon", 1e-5))})

    def op_Pad(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        pads = a.get("pads")
        if pads is None:
            pads = self.need_const(node, ins[1], "pads").tolist()
        value = float(a.get("value", 0.0))
        if len(ins) > 2 and ins[2]:
            cv = self.need_const(node, ins[2], "constant_value")
            value = float(cv.reshape(-1)[0]) if cv.size else 0.0
        pads = [int(p) for p in pads]
        if len(ins) > 3 and ins[3]:
            axes = [int(x) % len(s) for x in self.need_const(node, ins[3], "axes")]
            full = [0] * (2 * len(s))
            for j, ax in enumerate(axes):
                full[ax], full[ax + len(s)] = pads[j], pads[j + len(axes)]
            pads = full
        mode = _decode(a.get("mode", "constant"))
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise _Refused(f"mode {mode}")
        if any(p < 0 for p in pads):
            raise _Refused("negative pads (cropping)")
        if pads[0] or pads[len(s)]:
            raise _Refused("padding of the batch axis")
        if mode == "reflect" and any(pads[i] >= s[i] or pads[i + len(s)] >= s[i] for i in range(len(s))):
            raise _Refused("reflect pads as large as the axis")
        if mode == "wrap" and any(pads[i] > s[i] or pads[i + len(s)] > s[i] for i in range(len(s))):
            raise _Refused("wrap pads larger than the axis")
        self.emit("pad", nname, ins[:1], out, {"pads": tuple(pads), "value": value, "mode": mode})

    # -- slicing and gathering ---------------------------------------------------------------------
    def op_Slice(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        if self.opset < 10:
            starts, ends = list(a["starts"]), list(a["ends"])
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts = self.need_const(node, ins[1], "starts").tolist()
            ends = self.need_const(node, ins[2], "ends").tolist()
            axes = (self.need_const(node, ins[3], "axes").tolist() if len(ins) > 3 and ins[3]
                    else list(range(len(starts))))
            steps = self.need_const(node, ins[4], "steps").tolist() if len(ins) > 4 and ins[4] else [1] * len(starts)
        spec = [(0, d, 1) for d in s]
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            ax = int(ax) % len(s)
            if sp == 0:
                raise _Refused("a zero step")
            spec[ax] = slice(int(max(min(st, 2**62), -2**62)), int(max(min(en, 2**62), -2**62)), int(sp)).indices(s[ax])
        if spec[0] != (0, s[0], 1):
            raise _Refused("slicing of the batch axis")
        self.emit("slice", nname, ins[:1], out, {"starts": tuple(p[0] for p in spec), "ends": tuple(p[1] for p in spec),
                                                   "steps": tuple(p[2] for p in spec)})

    def op_Split(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        ax = int(a.get("axis", 0)) % len(s)
        if ax == 0:
            raise _Refused("axis 0 (the batch axis)")
        n = len(node.output)
        if "split" in a:
            sizes = list(a["split"])
        elif len(ins) > 1 and ins[1]:
            sizes = self.need_const(node, ins[1], "split").tolist()
        else:
            chunk = -(-s[ax] // n)
            sizes = [min(chunk, s[ax] - chunk * i) for i in range(n)]
        if sum(sizes) != s[ax] or len(sizes) != n or min(sizes) < 0:
            raise _Refused(f"split sizes {sizes} for an axis of {s[ax]}")
        start = 0
        for o, size in zip(node.output, sizes):
            if o:
                st = [0] * len(s)
                en = list(s)
                st[ax], en[ax] = start, start + size
                self.emit("slice", f"{nname}.{o}", ins[:1], o, {"starts": tuple(st), "ends": tuple(en),
                                                                 "steps": (1,) * len(s)})
            start += size

    def op_Expand(self, node, nname, ins, out, a):
        shape = self.need_const(node, ins[1], "shape")
        xs = self.shape(ins[0])
        target = tuple(int(v) for v in shape)
        if len(target) > len(xs):
            raise _Refused(f"a shape {target} of higher rank than the input {xs} (it would move the batch axis)")
        self.emit("expand", nname, ins[:1], out, {"shape": (1,) * (len(xs) - len(target)) + target})

    def op_Gather(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        if not self.is_const(ins[1]) and self.is_const(ins[0]) and int(a.get("axis", 0)) == 0:
            table = self.const(ins[0])
            if table.dtype != np.float32 or table.ndim != 2:
                raise _Refused("an embedding table that is not a 2-d float32 constant")
            if self.g.types[self.name(ins[1])].dtype.is_float:
                raise _Refused("float indices")
            self.emit("embedding", nname, [ins[1], ins[0]], out, int_ok=True)
            return
        idx = self.need_const(node, ins[1], "indices (token-id embedding lookups are not implemented)")
        ax = int(a.get("axis", 0)) % len(s)
        if ax == 0:
            raise _Refused("axis 0 (the batch axis)")
        if idx.dtype.kind not in "iu" or np.any(idx < -s[ax]) or np.any(idx >= s[ax]):
            raise _Refused("indices out of range")
        idx = np.where(idx < 0, idx + s[ax], idx)
        self.emit("gather", nname, ins[:1], out, {"axis": ax, "indices": tuple(int(v) for v in idx.reshape(-1)),
                                                   "indices_shape": tuple(int(d) for d in idx.shape)})

    # -- reductions and resizing -----------------------------------------------------------------
    def _reduce(self, kind, node, nname, ins, out, a):
        s = self.shape(ins[0])
        if "axes" in a:
            axes = list(a["axes"])
        elif len(ins) > 1 and ins[1]:
            axes = self.need_const(node, ins[1], "axes").tolist()
        else:
            axes = []
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                self.alias[out] = self.ir_input(ins[0])
                return
            axes = list(range(len(s)))
        axes = tuple(sorted({int(x) % len(s) for x in axes}))
        if 0 in axes and s[0] != 1:
            raise _Refused("a reduction over the batch axis")
        if 0 in axes:
            raise _Refused("a reduction over the batch axis")
        self.emit("reduce_" + kind, nname, ins[:1], out, {"axes": axes, "keepdims": int(a.get("keepdims", 1))})

    def op_ReduceMean(self, node, nname, ins, out, a):
        self._reduce("mean", node, nname, ins, out, a)

    def op_ReduceSum(self, node, nname, ins, out, a):
        self._reduce("sum", node, nname, ins, out, a)

    def op_ReduceMax(self, node, nname, ins, out, a):
        self._reduce("max", node, nname, ins, out, a)

    def op_Resize(self, node, nname, ins, out, a):
        s = self.shape(ins[0])
        mode = _decode(a.get("mode", "nearest"))
        ctm = _decode(a.get("coordinate_transformation_mode", "half_pixel"))
        nearest = _decode(a.get("nearest_mode", "round_prefer_floor"))
        if mode not in ("nearest", "linear"):
            raise _Refused(f"mode {mode}")
        if a.get("antialias", 0) and mode == "linear":
            raise _Refused("antialias=1")
        if self.opset < 11:
            raise _Refused("opset-10 semantics")
        if "axes" in a or _decode(a.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
            raise _Refused("axes/keep_aspect_ratio_policy")
        if ctm not in ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"):
            raise _Refused(f"coordinate_transformation_mode {ctm}")
        if mode == "nearest" and nearest not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
            raise _Refused(f"nearest_mode {nearest}")
        if len(s) != 4:
            raise _Refused(f"a rank-{len(s)} input")
        scales = sizes = None
        if len(ins) > 3 and ins[3]:
            sizes = self.need_const(node, ins[3], "sizes")
        if sizes is None or sizes.size == 0:
            scales = self.need_const(node, ins[2], "scales")
        if len(ins) > 1 and ins[1] and (self.const(ins[1]) is None or self.const(ins[1]).size):
            raise _Refused("a roi input")
        if sizes is not None and sizes.size:
            sizes = [int(v) for v in sizes]
            scales = [sizes[i] / s[i] for i in range(4)]
        else:
            scales = [float(v) for v in scales]
            sizes = [int(np.floor(s[i] * scales[i])) for i in range(4)]
        if sizes[:2] != list(s[:2]) or scales[:2] != [1.0, 1.0]:
            raise _Refused("resizing of the batch or channel axis")
        self.emit("resize", nname, ins[:1], out, {"mode": mode, "coord": ctm, "nearest": nearest,
                                                   "scales": tuple(float(v) for v in scales[2:]),
                                                   "sizes": tuple(sizes[2:])})

    # -- pointwise math, masks, normalisations ---------------------------------------------------
    # (nodes whose inputs are all constants never get here: try_fold evaluates them)
    def _unsupported(self, node, nname, what):
        raise _Refused(f"{node.op_type} {what}")

    def _unary(self, node, nname, ins, out, a):
        op = self.UNARY[node.op_type]
        attrs = {}
        if op == "hard_sigmoid":
            attrs = {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))}
        elif op in ("elu", "celu", "thresholded_relu"):
            attrs = {"alpha": float(a.get("alpha", 1.0))}
        elif op == "shrink":
            attrs = {"bias": float(a.get("bias", 0.0)), "lambd": float(a.get("lambd", 0.5))}
        elif op == "selu":
            attrs = {"alpha": float(a.get("alpha", SELU_ALPHA)), "gamma": float(a.get("gamma", SELU_GAMMA))}
        elif op == "gelu":
            approx = _decode(a.get("approximate", "none"))
            if approx not in ("none", "tanh"):
                self._unsupported(node, nname, f"with approximate={approx!r} (the spec allows 'none', 'tanh')")
            attrs = {"approximate": approx}
        self.emit(op, nname, ins[:1], out, attrs)

    op_Sqrt = op_Exp = op_Reciprocal = op_Neg = op_Abs = op_Erf = op_Softplus = _unary
    op_HardSwish = op_HardSigmoid = op_Elu = op_Selu = op_Gelu = _unary
    op_Sin = op_Cos = op_Tan = op_Asin = op_Acos = op_Atan = op_Sinh = op_Cosh = op_Asinh = op_Acosh = _unary
    op_Atanh = op_Log = op_Sign = op_Floor = op_Ceil = op_Round = op_Softsign = op_Mish = op_Celu = _unary
    op_ThresholdedRelu = op_Shrink = _unary

    def op_Pow(self, node, nname, ins, out, a):
        e = self.const(ins[1])
        if e is None:
            self._unsupported(node, nname, "with a computed exponent")
        e = np.asarray(e, dtype=np.float64)
        if e.size != 1 and (np.ptp(e) != 0 or np.broadcast_shapes(self.shape(ins[0]), e.shape) != self.shape(ins[0])):
            self._unsupported(node, nname, "with an exponent that varies per element or widens the base")
        self.emit("pow", nname, ins[:1], out, {"exponent": float(e.reshape(-1)[0])})

    def _variadic(self, node, nname, ins, out, op):
        """Max/Min/Sum of any number of broadcasting tensors as a chain of binary ops, left to right."""
        if len(ins) == 1:
            self.op_Identity(node, nname, ins, out, {})
            return
        acc = ins[0]
        for i, t in enumerate(ins[1:], 1):
            last = i == len(ins) - 1
            step_out = out if last else self.tmp(f"{out}.{i}")
            self._binary(node, nname if last else f"{nname}.{i}", [acc, t], step_out, op)
            acc = step_out

    def op_Max(self, node, nname, ins, out, a):
        self._variadic(node, nname, ins, out, "max")

    def op_Min(self, node, nname, ins, out, a):
        self._variadic(node, nname, ins, out, "min")

    def op_Sum(self, node, nname, ins, out, a):
        self._variadic(node, nname, ins, out, "add")

    def op_PRelu(self, node, nname, ins, out, a):
        slope = self.const(ins[1])
        if slope is None:
            self._unsupported(node, nname, "with a computed slope")
        slope = np.asarray(slope, dtype=np.float64)
        if np.ptp(slope) == 0 and slope.reshape(-1)[0] >= 0 and \
                np.broadcast_shapes(self.shape(ins[0]), slope.shape) == self.shape(ins[0]):
            self.emit("leaky_relu", nname, ins[:1], out, {"alpha": float(slope.reshape(-1)[0])})
        else:
            self.emit("prelu", nname, [ins[0], self.add_const(f"{nname}.slope", slope)], out)

    def _is_mask(self, t):
        if self.is_const(t):
            return self.const(t).dtype == np.bool_
        return self.g.types[self.name(t)].dtype == BOOL

    def _operand(self, nname, t):
        """A float operand of a mask op (a float32 constant is materialised under a fresh name)."""
        if not self.is_const(t):
            return t
        v = self.const(t)
        if v.dtype != np.float32:
            raise _Refused(f"a {_np_name(v.dtype)} operand")
        return self.add_const(f"{nname}.const", v)

    def _compare(self, node, nname, ins, out, a):
        if any(self._is_mask(i) or (not self.is_const(i) and not self.g.types[self.name(i)].dtype.is_float)
               for i in ins):
            self._unsupported(node, nname, "on bool or integer tensors (lbc compares float activations)")
        self._check_broadcast(ins)
        self.emit(self.COMPARE[node.op_type], nname, [self._operand(nname, i) for i in ins], out, dtype=BOOL)

    op_Equal = op_Less = op_Greater = op_LessOrEqual = op_GreaterOrEqual = _compare

    def _check_broadcast(self, ins):
        """The broadcast of several operands keeps the batch axis of the first computed one."""
        shapes = [self.shape(i) for i in ins]
        try:
            r = np.broadcast_shapes(*shapes)
        except ValueError:
            raise _Refused(f"operands of shapes {', '.join(map(str, shapes))} that do not broadcast") from None
        sx = next(self.shape(i) for i in ins if not self.is_const(i))
        if len(r) != len(sx) or r[0] != sx[0]:
            raise _Refused(f"operands of shapes {', '.join(map(str, shapes))} whose broadcast changes the batch axis")

    def _logic(self, node, nname, ins, out, a):
        if not all(self._is_mask(i) for i in ins):
            self._unsupported(node, nname, "on a tensor that is not a bool mask")
        self.emit(node.op_type.lower(), nname, ins, out, dtype=BOOL)

    op_Not = op_And = op_Or = _logic

    def op_Where(self, node, nname, ins, out, a):
        if not self._is_mask(ins[0]):
            self._unsupported(node, nname, "with a condition that is not a bool mask")
        if self._is_mask(ins[1]) or self._is_mask(ins[2]):
            self._unsupported(node, nname, "selecting between bool masks")
        self._check_broadcast(ins)
        self.emit("where", nname, [ins[0]] + [self._operand(nname, i) for i in ins[1:]], out, dtype=F32)

    def op_LRN(self, node, nname, ins, out, a):
        if len(self.shape(ins[0])) < 3:
            self._unsupported(node, nname, "on a tensor without channel and spatial axes")
        self.emit("lrn", nname, ins[:1], out, {"size": int(a["size"]), "alpha": float(a.get("alpha", 1e-4)),
                                               "beta": float(a.get("beta", 0.75)), "bias": float(a.get("bias", 1.0))})

    def op_InstanceNormalization(self, node, nname, ins, out, a):
        for i, what in zip(ins[1:3], ("scale", "B")):
            self.need_const(node, i, what)
        if len(self.shape(ins[0])) < 3:
            self._unsupported(node, nname, "on a tensor without spatial axes")
        self.emit("instance_norm", nname, ins[:3], out, {"epsilon": float(a.get("epsilon", 1e-5))})

def _dtype_name(elem_type):
    from onnx import TensorProto
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"#{elem_type}"


def _np_of(elem_type):
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def _np_name(dt):
    return str(np.dtype(dt).name)


def load_onnx(path, input_shape=None):
    model = read_onnx(path)
    return _Importer(model, path, input_shape).run()


def inspect_onnx(path, input_shape=None):
    """Import as far as possible, for lbc inspect: (partial graph, Problems, trace, the ONNX model).
    The trace has one (node name, op type, IR node names, problem or None) per ONNX node."""
    model = read_onnx(path)
    imp = _Importer(model, path, input_shape, tolerant=True)
    g = imp.run()
    return g, imp.problems, imp.trace, imp.inferred, model
