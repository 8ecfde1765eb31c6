"""PyTorch frontend: an nn.Module with an example input, or a saved torch.export program (.pt2),
-> float lbc graph.

Route: torch.export, not the ONNX exporter. `from_module` runs `torch.export.export` (the default
ATen-level IR: aten.linear, aten.conv2d, aten.batch_norm, ...) and converts the ExportedProgram's
FX graph directly; no onnxscript, no intermediate file, and node names stay the FX names.

Saved programs: `torch.export.load` unpickles (sample inputs fall back to `torch.load(weights_only=
False)`, pickled weights and opaque constants go through `pickle.loads`, and symbolic shapes through
sympy's eval-based parser), so lbc never calls it. A .pt2 is a zip holding the graph as JSON
(models/<name>.json) and each weight as raw little-endian bytes described in a JSON config; lbc reads
exactly those with zipfile + json + numpy, refuses any payload marked as pickled, and so compiles a
.pt2 without torch installed and without executing anything from the file.

Both sources become one neutral node list (`Program`: target string such as "aten.conv2d.default",
arguments by schema name, output names, static shapes), which a single converter maps to IR ops.
Unsupported ops are collected over the whole program and reported at once. 1-d convolution and
pooling ([N, C, L] tensors: conv1d, max/avg_pool1d, adaptive_avg_pool1d) run as the 2-d ops on the
height-1 image [N, C, 1, L], between two free reshapes.

QAT models (`lbc.qat`) export their activation quantizers as aten.fake_quantize_per_tensor_affine
with power-of-two scales: those become exponent hints (meta["exp_hints"]) that the quantize pass
uses instead of calibration, exactly like ONNX Q/DQ pairs.
"""

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lbc.errors import InternalError, ModelError, safe_name
from lbc.frontends.common import GraphBuilder, report_unsupported
from lbc.ir.dtypes import I32


@dataclass(frozen=True)
class Ref:
    """A tensor argument, by name."""
    name: str


@dataclass
class TNode:
    name: str
    target: str  # "aten.conv2d.default"
    args: dict  # schema argument name -> value (Ref, list of Ref, int, float, bool, str, None, list)
    outputs: list  # tensor names, None where an output is unused


@dataclass
class Program:
    name: str
    where: str
    inputs: list
    outputs: list
    nodes: list
    consts: dict = field(default_factory=dict)  # tensor name -> np.ndarray
    shapes: dict = field(default_factory=dict)  # tensor name -> static shape tuple


# ------------------------------------------------------------------------------ nn.Module route

def from_module(module, example_input, name=None):
    """Export `module` with torch.export on `example_input` (a float tensor or array, or a tuple of
    them for a module with several inputs) and convert it. The module is exported in eval mode; its training flag is restored."""
    import torch
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    xs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not xs or any(x is None for x in xs):
        raise ModelError("a torch module needs an example input (a tensor of the input shape, batch first; a "
                         "tuple of them for a module with several inputs)")
    args = []
    for x in xs:
        t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        if not t.dtype.is_floating_point:
            raise ModelError(f"example input of dtype {t.dtype}: modules are imported with float inputs; export a "
                             f"model with integer inputs (token ids) to ONNX")
        args.append(t.float())
    name = name or type(module).__name__.lower()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ep = torch.export.export(module, tuple(args))
    except Exception as e:  # noqa: BLE001 - torch raises many kinds; all mean "cannot trace this module"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{name}: torch.export could not trace the module: {first}") from None
    finally:
        module.train(was_training)
    return convert(program_from_exported(ep, name))


def save_pt2(module, example_input, path):
    """Export `module` (eval mode) with torch.export and save it as a .pt2 lbc can compile, without
    the per-node Python stack traces torch records (they hold absolute source paths, so the file
    would differ from machine to machine)."""
    import torch
    x = example_input if isinstance(example_input, torch.Tensor) else torch.as_tensor(np.asarray(example_input))
    was_training = module.training
    try:
        ep = torch.export.export(module.eval(), (x,))
    finally:
        module.train(was_training)
    for n in ep.graph.nodes:
        n.meta.pop("stack_trace", None)
    torch.export.save(ep, str(path))
    return Path(path)


def _schema_name(target):
    return str(target)  # OpOverload prints as "aten.conv2d.default"


def _shape_of(val, where, what):
    shape = []
    for d in val.shape:
        if not isinstance(d, int):
            try:
                d = int(d)
            except Exception:  # noqa: BLE001 - an unbacked symbol
                raise ModelError(f"{where}: {what} has a dynamic dimension; export with static shapes") from None
        shape.append(int(d))
    return tuple(shape)


def program_from_exported(ep, name):
    """ExportedProgram -> Program (arguments named by the op schema, as in the .pt2 JSON)."""
    import operator

    import torch
    where = name
    sig = ep.graph_signature
    prog = Program(name, where, [], [], [])
    kinds = {}
    for spec in sig.input_specs:
        kind = spec.kind.name
        arg = spec.arg.name
        kinds[arg] = kind
        if kind == "USER_INPUT":
            prog.inputs.append(arg)
        elif kind in ("PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
            t = ep.state_dict.get(spec.target)
            if t is None:
                t = ep.constants.get(spec.target)
            if not isinstance(t, torch.Tensor):
                raise ModelError(f"{where}: input {spec.target!r} ({kind.lower()}) is not a tensor")
            prog.consts[arg] = t.detach().cpu().numpy().copy()
        else:
            raise ModelError(f"{where}: unsupported program input kind {kind} ({arg})")
    by_node = {}
    for n in ep.graph.nodes:
        if n.op == "placeholder":
            if kinds.get(n.name) == "USER_INPUT":
                prog.shapes[n.name] = _shape_of(n.meta["val"], where, f"input {n.name!r}")
        elif n.op == "call_function":
            if n.target is operator.getitem:
                src, idx = n.args
                tn = by_node[src.name]
                tn.outputs[idx] = n.name
                prog.shapes[n.name] = _shape_of(n.meta["val"], where, n.name)
                continue
            if not isinstance(n.target, torch._ops.OpOverload):
                tn = TNode(n.name, getattr(n.target, "__name__", str(n.target)), {}, [n.name])
                prog.nodes.append(tn)
                by_node[n.name] = tn
                continue
            schema = n.target._schema
            args = {}
            for a, v in zip(schema.arguments, n.args):
                args[a.name] = _fx_value(v)
            for k, v in n.kwargs.items():
                args[k] = _fx_value(v)
            val = n.meta.get("val")
            if isinstance(val, (tuple, list)):
                outs = [None] * len(val)
            else:
                outs = [n.name] if val is not None else []
                if val is not None:
                    prog.shapes[n.name] = _shape_of(val, where, n.name)
            tn = TNode(n.name, _schema_name(n.target), args, outs)
            prog.nodes.append(tn)
            by_node[n.name] = tn
        elif n.op == "output":
            outs = n.args[0]
            prog.outputs = [o.name if o is not None else None for o in (outs if isinstance(outs, (tuple, list)) else [outs])]
    return prog


def _fx_value(v):
    import torch
    if isinstance(v, torch.fx.Node):
        return Ref(v.name)
    if isinstance(v, (list, tuple)):
        return [_fx_value(x) for x in v]
    if isinstance(v, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
        return str(v)
    return v


# ------------------------------------------------------------------------------ .pt2 route

# torch._export.serde.schema.ScalarType -> numpy
_PT2_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float16, 7: np.float32,
               8: np.float64, 12: np.bool_}


def load_pt2(path):
    """A .pt2 file written by torch.export.save -> float graph, read without torch or pickle."""
    return convert(program_from_pt2(Path(path)))


def program_from_pt2(path):
    where = str(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelError(f"{where}: not a .pt2 archive (not a zip file: {e}); save it with torch.export.save") from None
    with z:
        names = z.namelist()
        fmt = [n for n in names if n.endswith("archive_format") and n.count("/") <= 1]
        if not fmt or z.read(fmt[0]).decode(errors="replace").strip() != "pt2":
            raise ModelError(f"{where}: not a torch.export archive (no archive_format 'pt2'); "
                             f"save the program with torch.export.save(torch.export.export(model, (x,)), path)")
        root = fmt[0][: -len("archive_format")]
        if any(n.startswith(root + "data/aotinductor/") for n in names) and not any(
                n.startswith(root + "models/") for n in names):
            raise ModelError(f"{where}: an AOTInductor package, not a saved ExportedProgram")
        models = sorted(n for n in names if n.startswith(root + "models/") and n.endswith(".json"))
        if len(models) != 1:
            raise ModelError(f"{where}: expected one exported program in models/, found {len(models)}")
        model_name = models[0][len(root + "models/"): -len(".json")]
        if (root + "byteorder") in names and z.read(root + "byteorder").decode().strip() != "little":
            raise ModelError(f"{where}: big-endian archives are not supported")
        try:
            doc = json.loads(z.read(models[0]))
        except ValueError as e:
            raise ModelError(f"{where}: the program JSON is unreadable ({e})") from None
        if (root + f"data/weights/{model_name}.pt") in names or (root + f"data/constants/{model_name}.pt") in names:
            raise ModelError(f"{where}: weights in the legacy pickled format; lbc never unpickles model files. "
                             f"Re-save with a recent torch.export.save")
        weights = _payloads(z, root, f"data/weights/{model_name}_weights_config.json", "data/weights/", where)
        consts = _payloads(z, root, f"data/constants/{model_name}_constants_config.json", "data/constants/", where)
    return _program_from_json(doc, weights, consts, Path(path).stem, where)


def _payloads(z, root, config, folder, where):
    """fqn -> np.ndarray for every raw (non-pickled) payload listed in the config file."""
    if root + config not in z.namelist():
        return {}
    cfg = json.loads(z.read(root + config)).get("config", {})
    out = {}
    for fqn, meta in cfg.items():
        if meta.get("use_pickle") or not meta.get("path_name", "").startswith(("weight_", "tensor_")):
            raise ModelError(f"{where}: {fqn!r} is stored as a pickled object; lbc never unpickles model files "
                             f"(re-export the program with plain tensors)")
        tm = meta.get("tensor_meta") or {}
        dt = _PT2_DTYPES.get(tm.get("dtype"))
        if dt is None:
            raise ModelError(f"{where}: {fqn!r} has an unsupported dtype code {tm.get('dtype')}")
        raw = z.read(root + folder + meta["path_name"])
        flat = np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder("<"))
        sizes = [_int(s, where) for s in tm.get("sizes", [])]
        strides = [_int(s, where) for s in tm.get("strides", [])]
        offset = _int(tm.get("storage_offset", {"as_int": 0}), where)
        if len(strides) != len(sizes) or any(s < 0 for s in strides) or offset < 0:
            raise ModelError(f"{where}: {fqn!r} has an invalid layout")
        if sizes and min(sizes) == 0:
            out[fqn] = np.zeros(sizes, dtype=dt)
            continue
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides))
        if last >= max(flat.size, 1) and not (flat.size == 0 and not sizes):
            raise ModelError(f"{where}: {fqn!r} reads past its data ({flat.size} elements)")
        item = flat.itemsize
        arr = np.lib.stride_tricks.as_strided(flat[offset:], shape=sizes, strides=[s * item for s in strides])
        out[fqn] = np.array(arr, dtype=dt)  # copy: never alias the zip buffer
    return out


def _int(v, where):
    if isinstance(v, int):
        return v
    if isinstance(v, dict) and "as_int" in v:
        return int(v["as_int"])
    raise ModelError(f"{where}: the program has symbolic (dynamic) shapes; export it with static shapes")


def _json_arg(a, where):
    (kind, v), = a.items() if isinstance(a, dict) and len(a) == 1 else ((None, None),)
    if kind is None:
        raise ModelError(f"{where}: unreadable argument {str(a)[:60]}")
    if kind == "as_tensor":
        return Ref(v["name"])
    if kind == "as_tensors":
        return [Ref(t["name"]) for t in v]
    if kind == "as_optional_tensors":
        return [Ref(t["as_tensor"]["name"]) if "as_tensor" in t else None for t in v]
    if kind == "as_optional_tensor":
        return Ref(v["as_tensor"]["name"]) if "as_tensor" in v else None
    if kind == "as_none":
        return None
    if kind in ("as_int", "as_ints", "as_float", "as_floats", "as_bool", "as_bools", "as_string", "as_strings"):
        return v
    if kind in ("as_scalar_type", "as_memory_format", "as_layout", "as_device"):
        return f"<{kind[3:]} {v}>"
    if kind.startswith("as_sym"):
        raise ModelError(f"{where}: the program has symbolic (dynamic) shapes; export it with static shapes")
    raise ModelError(f"{where}: unsupported argument kind {kind}")


def _program_from_json(doc, weights, consts, name, where):
    gm = doc.get("graph_module") or {}
    graph, sig = gm.get("graph") or {}, gm.get("signature") or {}
    if doc.get("range_constraints"):
        raise ModelError(f"{where}: the program has symbolic (dynamic) shapes; export it with static shapes")
    prog = Program(name, where, [], [], [])
    for spec in sig.get("input_specs", []):
        (kind, v), = spec.items()
        if kind == "user_input":
            prog.inputs.append(_json_arg(v["arg"], where).name)
        elif kind == "parameter":
            prog.consts[v["arg"]["name"]] = _lookup(weights, consts, v["parameter_name"], where)
        elif kind == "buffer":
            prog.consts[v["arg"]["name"]] = _lookup(weights, consts, v["buffer_name"], where)
        elif kind == "tensor_constant":
            prog.consts[v["arg"]["name"]] = _lookup(weights, consts, v["tensor_constant_name"], where)
        else:
            raise ModelError(f"{where}: unsupported program input kind {kind}")
    for tname, tv in (graph.get("tensor_values") or {}).items():
        prog.shapes[tname] = tuple(_int(s, where) for s in tv.get("sizes", []))
    for i, n in enumerate(graph.get("nodes", [])):
        target = n.get("target", "?")
        if target.startswith("torch.ops."):
            target = target[len("torch.ops."):]
        args = {a["name"]: _json_arg(a["arg"], where) for a in n.get("inputs", [])}
        outs = []
        for o in n.get("outputs", []):
            v = _json_arg(o, where)
            outs.extend([t.name for t in v] if isinstance(v, list) else [v.name if isinstance(v, Ref) else None])
        prog.nodes.append(TNode(n.get("name") or (outs[0] if outs and outs[0] else f"node{i}"), target, args, outs))
    for spec in sig.get("output_specs", []):
        (kind, v), = spec.items()
        if kind != "user_output":
            raise ModelError(f"{where}: unsupported program output kind {kind} (buffer mutation?)")
        prog.outputs.append(_json_arg(v["arg"], where).name)
    return prog


def _lookup(weights, consts, fqn, where):
    if fqn in weights:
        return weights[fqn]
    if fqn in consts:
        return consts[fqn]
    raise ModelError(f"{where}: weight {fqn!r} is missing from the archive")


# ------------------------------------------------------------------------------ converter

HANDLERS = {}  # target -> (method name, defaults)


def handles(*targets, **defaults):
    def register(fn):
        for t in targets:
            HANDLERS[t] = (fn.__name__, defaults)
        return fn
    return register


IGNORED = {"aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range.default",
           "aten.sym_constrain_range_for_size.default", "aten._assert_async.msg"}
IDENTITY = ("aten.clone.default", "aten.detach.default", "aten.detach_.default", "aten.alias.default",
            "aten.contiguous.default", "aten.lift_fresh_copy.default", "aten._to_copy.default", "aten.to.dtype",
            "aten.to.dtype_layout", "aten.alias_copy.default", "aten.detach_copy.default")
RESHAPES = ("aten.view.default", "aten.reshape.default", "aten._unsafe_view.default", "aten.flatten.using_ints",
            "aten.unsqueeze.default", "aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze.default",
            "aten.view_copy.default", "aten.unflatten.int")


def convert(prog):
    return _Converter(prog).run()


class _Converter:
    def __init__(self, prog):
        self.p = prog
        self.b = GraphBuilder(prog.name, prog.where)
        self.consts = dict(prog.consts)  # torch tensor name -> np array (folded as we go)
        self.alias = {}  # torch tensor name -> IR tensor name
        self.hints = {}
        self.node = None

    # -- helpers -------------------------------------------------------------------------------------
    def is_const(self, v):
        return isinstance(v, Ref) and v.name in self.consts

    def cval(self, v):
        return self.consts[v.name]

    def t(self, v):
        """IR tensor name for a (non-constant) tensor argument; constants are materialised."""
        if self.is_const(v):
            return self.b.const(v.name, self.cval(v))
        return self.alias.get(v.name, v.name)

    def ir_shape(self, v):
        return self.b.shape(self.t(v)) if not self.is_const(v) else tuple(self.cval(v).shape)

    def out_shape(self, i=0):
        """The output's shape with the batch entry set to 1 (lbc compiles one sample per call)."""
        s = self.p.shapes.get(self.node.outputs[i])
        if s is None:
            raise InternalError(f"no shape recorded for {self.node.outputs[i]}")
        return (1,) + tuple(s[1:]) if s else s

    def emit(self, op, inputs, attrs=None, out=0, dtype=None):
        name = self.node.outputs[out]
        kw = {"dtype": dtype} if dtype is not None else {}
        ir = self.b.emit(op, self.node.name, inputs, name, attrs, **kw)
        self.alias[name] = ir
        return ir

    def same(self, v, out=0):
        """The output is the input (identity, dropout, a quantizer annotation)."""
        if self.is_const(v):
            self.consts[self.node.outputs[out]] = self.cval(v)
        else:
            self.alias[self.node.outputs[out]] = self.t(v)

    def fail(self, why):
        report_unsupported(self.p.where, {why: [self.node.name]}, "ops")

    # -- walk ----------------------------------------------------------------------------------------
    def run(self):
        bad = {}
        for n in self.p.nodes:
            why = self.unsupported_reason(n)
            if why:
                bad.setdefault(why, []).append(n.name)
        other = [f"input {safe_name(inp)!r} has shape {list(self.p.shapes[inp])}; lbc needs a batch axis first"
                 for inp in self.p.inputs if len(self.p.shapes[inp]) < 2]
        report_unsupported(self.p.where, bad, "ops", other)
        for inp in self.p.inputs:
            self.b.add_input(inp, (1,) + tuple(self.p.shapes[inp][1:]))
        for n in self.p.nodes:
            self.node = n
            if n.target in IGNORED:
                continue
            method, defaults = HANDLERS[n.target]
            a = dict(defaults)
            a.update(n.args)
            getattr(self, method)(a)
        outs = []
        for o in self.p.outputs:
            if o is None or o in self.consts:
                raise ModelError(f"{self.p.where}: an output is a constant; nothing to compile")
            outs.append(self.alias.get(o, o))
        self._check_shapes()
        return self.b.finish(outs, self.hints)

    def _check_shapes(self):
        for name, ir in self.alias.items():
            s = self.p.shapes.get(name)
            if s and ir in self.b.g.types and len(s) == len(self.b.shape(ir)) \
                    and tuple(s[1:]) != self.b.shape(ir)[1:]:
                raise InternalError(f"torch frontend: {name} has shape {s} in torch but {self.b.shape(ir)} in lbc")

    def unsupported_reason(self, n):
        t = n.target
        if t in IGNORED:
            return None
        if t not in HANDLERS:
            return t
        a = n.args
        if t.startswith("aten.max_pool2d") or t == "aten.avg_pool2d.default":
            if a.get("ceil_mode"):
                return f"{t} with ceil_mode=True"
            if any(d != 1 for d in _pair(a.get("dilation", 1))):
                return f"{t} with dilation"
        if t == "aten.avg_pool2d.default" and a.get("divisor_override") is not None:
            return f"{t} with divisor_override"
        if t == "aten.convolution.default" and (a.get("transposed") or len(_list(a.get("stride"))) not in (1, 2)):
            return "transposed or 3-d convolution"
        if (t.startswith("aten.max_pool1d") or t == "aten.avg_pool1d.default") and a.get("ceil_mode"):
            return f"{t} with ceil_mode=True"
        if t in ("aten.conv2d.default", "aten.conv2d.padding") and isinstance(a.get("weight"), Ref) \
                and a["weight"].name in self.p.shapes and len(self.p.shapes[a["weight"].name]) != 4:
            return f"{t} that is not 2-d"
        if t in ("aten.batch_norm.default", "aten.native_batch_norm.default") and a.get("training"):
            return "batch_norm in training mode (export the module in eval mode)"
        if t == "aten.pad.default" and a.get("mode", "constant") != "constant":
            return f"pad mode {a.get('mode')}"
        return None

    # -- op handlers ---------------------------------------------------------------------------------
    @handles(*IDENTITY)
    def h_identity(self, a):
        self.same(a["self"])

    @handles("aten.dropout.default", "aten.feature_dropout.default", "aten.alpha_dropout.default")
    def h_dropout(self, a):
        self.same(a["input"])

    @handles("aten.fake_quantize_per_tensor_affine.default", "aten.fake_quantize_per_tensor_affine.tensor_qparams")
    def h_fake_quantize(self, a):
        x = a["self"]
        scale, zp = a["scale"], a["zero_point"]
        if isinstance(scale, Ref):
            scale = float(np.asarray(self.cval(scale)).reshape(-1)[0]) if self.is_const(scale) else None
        if isinstance(zp, Ref):
            zp = int(np.asarray(self.cval(zp)).reshape(-1)[0]) if self.is_const(zp) else None
        if self.is_const(x):  # a fake-quantised weight: fold it (torch rounds half to even)
            s = float(scale)
            q = np.clip(np.round(self.cval(x) / s) + zp, a["quant_min"], a["quant_max"])
            self.consts[self.node.outputs[0]] = ((q - zp) * s).astype(np.float32)
            return
        self.same(x)
        if scale is None or zp != 0 or scale <= 0:
            return  # not a power-of-two int8 annotation: keep the float value, calibrate as usual
        e = -np.log2(scale)
        if abs(e - round(e)) > 1e-9 or a["quant_min"] < -128 or a["quant_max"] > 127:
            return
        src = self.t(x)
        e = int(round(e))
        if self.hints.get(src, e) != e:
            raise ModelError(f"{self.p.where}: tensor {src!r} is quantised twice with different scales "
                             f"(2**-{self.hints[src]} and 2**-{e})")
        self.hints[src] = e

    @handles("aten.linear.default", bias=None)
    def h_linear(self, a):
        w = self.need_const(a, "weight")
        if w.ndim != 2:
            self.fail("aten.linear with a non-2-d weight")
        ins = [self.t(a["input"]), self.b.const(f"{self.node.name}.weight", w)]
        if a["bias"] is not None:
            ins.append(self.b.const(f"{self.node.name}.bias", self.need_const(a, "bias")))
        self.emit("dense", ins)

    @handles("aten.addmm.default", beta=1, alpha=1)
    def h_addmm(self, a):
        w = self.need_const(a, "mat2").astype(np.float64) * a["alpha"]
        b = np.broadcast_to(self.need_const(a, "self").astype(np.float64).reshape(-1) * a["beta"], (w.shape[1],))
        self.emit("dense", [self.t(a["mat1"]), self.b.const(f"{self.node.name}.weight", w.T),
                            self.b.const(f"{self.node.name}.bias", b)])

    @handles("aten.mm.default", "aten.matmul.default")
    def h_mm(self, a):
        key = "mat2" if "mat2" in a else "other"
        w = self.need_const(a, key)
        if w.ndim != 2:
            self.fail(f"{self.node.target} with a {w.ndim}-d right operand")
        self.emit("dense", [self.t(a["self"]), self.b.const(f"{self.node.name}.weight", w.T)])

    def need_const(self, a, key):
        v = a.get(key)
        if not self.is_const(v):
            self.fail(f"{self.node.target} with a computed {key}")
        return self.cval(v)

    def _as_2d(self, x):
        """A [N, C, L] tensor as [N, C, 1, L]: 1-d convolution and pooling run as the 2-d ops with height 1."""
        n, c, length = self.b.shape(x)
        return self.b.emit("reshape", f"{self.node.name}.2d", [x], attrs={"shape": (n, c, 1, length)})

    def _emit_1d(self, op, ins, attrs):
        """Emit the 2-d `op` on the height-1 view of ins[0] and reshape its result back to 3-d."""
        mid = self.b.emit(op, f"{self.node.name}.h1", [self._as_2d(ins[0])] + ins[1:], attrs=attrs)
        return self.emit("reshape", [mid], {"shape": self.out_shape()})

    def _conv(self, a, stride, padding, dilation, groups):
        w = self.need_const(a, "weight")
        if w.ndim not in (3, 4):
            self.fail(f"{self.node.target} that is not 1-d or 2-d")
        one_d = w.ndim == 3
        if one_d:  # [M, C/g, k] -> [M, C/g, 1, k]; stride, padding and dilation apply to the width
            w = w[:, :, None, :]
            stride, dilation = (1, _list(stride)[0]), (1, _list(dilation)[0])
            if not isinstance(padding, str):
                padding = (0, _list(padding)[0])
        kh, kw = w.shape[2:]
        stride, dilation = _pair(stride), _pair(dilation)
        if isinstance(padding, str):
            if padding == "valid":
                pads = (0, 0, 0, 0)
            else:  # "same" (stride 1): torch puts the odd extra pixel at the end
                th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
                pads = (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        else:
            p = _pair(padding)
            pads = (p[0], p[1], p[0], p[1])
        ins = [self.t(a["input"]), self.b.const(f"{self.node.name}.weight", w)]
        if a.get("bias") is not None:
            ins.append(self.b.const(f"{self.node.name}.bias", self.need_const(a, "bias")))
        attrs = {"strides": stride, "pads": pads, "dilations": dilation, "group": int(groups)}
        if one_d:
            self._emit_1d("conv2d", ins, attrs)
        else:
            self.emit("conv2d", ins, attrs)

    @handles("aten.conv1d.default", "aten.conv1d.padding", bias=None, stride=(1,), padding=(0,), dilation=(1,),
             groups=1)
    def h_conv1d(self, a):
        self._conv(a, a["stride"], a["padding"], a["dilation"], a["groups"])

    @handles("aten.conv2d.default", "aten.conv2d.padding", bias=None, stride=(1, 1), padding=(0, 0),
             dilation=(1, 1), groups=1)
    def h_conv2d(self, a):
        self._conv(a, a["stride"], a["padding"], a["dilation"], a["groups"])

    @handles("aten.convolution.default")
    def h_convolution(self, a):
        self._conv(a, a["stride"], a["padding"], a["dilation"], a["groups"])

    @handles("aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default",
             "aten.native_batch_norm.default", weight=None, bias=None, eps=1e-5)
    def h_batch_norm(self, a):
        c = self.ir_shape(a["input"])[1]
        mean, var = self.need_const(a, "running_mean"), self.need_const(a, "running_var")
        s = self.need_const(a, "weight") if a["weight"] is not None else np.ones(c, np.float32)
        b = self.need_const(a, "bias") if a["bias"] is not None else np.zeros(c, np.float32)
        n = self.node.name
        self.emit("batchnorm", [self.t(a["input"]), self.b.const(f"{n}.scale", s), self.b.const(f"{n}.bias", b),
                                self.b.const(f"{n}.mean", mean), self.b.const(f"{n}.var", var)],
                  {"epsilon": float(a["eps"])})

    @handles("aten.relu.default", "aten.relu_.default")
    def h_relu(self, a):
        self.emit("relu", [self.t(a["self"])])

    @handles("aten.hardtanh.default", "aten.hardtanh_.default", min_val=-1.0, max_val=1.0)
    def h_hardtanh(self, a):
        self.emit("clip", [self.t(a["self"])], {"min": float(a["min_val"]), "max": float(a["max_val"])})

    @handles("aten.relu6.default")
    def h_relu6(self, a):
        self.emit("clip", [self.t(a["self"])], {"min": 0.0, "max": 6.0})

    @handles("aten.clamp.default", "aten.clamp_.default", min=None, max=None)
    def h_clamp(self, a):
        lo = float("-inf") if a["min"] is None else float(a["min"])
        hi = float("inf") if a["max"] is None else float(a["max"])
        self.emit("clip", [self.t(a["self"])], {"min": lo, "max": hi})

    @handles("aten.leaky_relu.default", "aten.leaky_relu_.default", negative_slope=0.01)
    def h_leaky_relu(self, a):
        self.emit("leaky_relu", [self.t(a["self"])], {"alpha": float(a["negative_slope"])})

    @handles("aten.sigmoid.default")
    def h_sigmoid(self, a):
        self.emit("sigmoid", [self.t(a["self"])])

    @handles("aten.tanh.default")
    def h_tanh(self, a):
        self.emit("tanh", [self.t(a["self"])])

    def _pool_attrs(self, a):
        k = _pair(a["kernel_size"])
        s = _pair(a["stride"]) if _list(a.get("stride")) else k
        p = _pair(a.get("padding", 0))
        return {"kernel": k, "strides": s, "pads": (p[0], p[1], p[0], p[1])}

    @handles("aten.max_pool2d.default", "aten.max_pool2d_with_indices.default", stride=(), padding=(0, 0),
             dilation=(1, 1), ceil_mode=False)
    def h_max_pool2d(self, a):
        if len(self.node.outputs) > 1 and self.node.outputs[1] is not None:
            self.fail("max_pool2d with its indices used")
        self.emit("maxpool", [self.t(a["self"])], self._pool_attrs(a))

    @handles("aten.avg_pool2d.default", stride=(), padding=(0, 0), ceil_mode=False, count_include_pad=True,
             divisor_override=None)
    def h_avg_pool2d(self, a):
        attrs = self._pool_attrs(a)
        attrs["count_include_pad"] = int(bool(a["count_include_pad"]))
        self.emit("avgpool", [self.t(a["self"])], attrs)

    @handles("aten.adaptive_avg_pool2d.default", "aten._adaptive_avg_pool2d.default")
    def h_adaptive_avg_pool2d(self, a):
        x = self.t(a["self"])
        h, w = self.b.shape(x)[2:]
        oh, ow = _pair(a["output_size"])
        if (oh, ow) == (1, 1):
            self.emit("global_avgpool", [x])
        elif h % oh == 0 and w % ow == 0:
            k = (h // oh, w // ow)
            self.emit("avgpool", [x], {"kernel": k, "strides": k, "pads": (0, 0, 0, 0), "count_include_pad": 1})
        else:
            self.fail("adaptive_avg_pool2d whose output size does not divide the input")

    def _pool1d_attrs(self, a):
        k = _list(a["kernel_size"])[0]
        st = _list(a.get("stride"))
        p = _list(a.get("padding", 0))[0]
        return {"kernel": (1, k), "strides": (1, st[0] if st else k), "pads": (0, p, 0, p)}

    @handles("aten.max_pool1d.default", "aten.max_pool1d_with_indices.default", stride=(), padding=(0,),
             dilation=(1,), ceil_mode=False)
    def h_max_pool1d(self, a):
        if len(self.node.outputs) > 1 and self.node.outputs[1] is not None:
            self.fail("max_pool1d with its indices used")
        if _list(a["dilation"]) not in ([1], []):
            self.fail("max_pool1d with dilation")
        self._emit_1d("maxpool", [self.t(a["self"])], self._pool1d_attrs(a))

    @handles("aten.avg_pool1d.default", stride=(), padding=(0,), ceil_mode=False, count_include_pad=True)
    def h_avg_pool1d(self, a):
        attrs = self._pool1d_attrs(a)
        attrs["count_include_pad"] = int(bool(a["count_include_pad"]))
        self._emit_1d("avgpool", [self.t(a["self"])], attrs)

    @handles("aten.adaptive_avg_pool1d.default")
    def h_adaptive_avg_pool1d(self, a):
        x = self.t(a["self"])
        length = self.b.shape(x)[2]
        (o,) = _list(a["output_size"])
        if o == 1:
            self._emit_1d("global_avgpool", [x], {})
        elif length % o == 0:
            k = length // o
            self._emit_1d("avgpool", [x], {"kernel": (1, k), "strides": (1, k), "pads": (0, 0, 0, 0),
                                           "count_include_pad": 1})
        else:
            self.fail("adaptive_avg_pool1d whose output size does not divide the input")

    @handles("aten.mean.dim", keepdim=False, dtype=None)
    def h_mean(self, a):
        x = self.t(a["self"])
        rank = len(self.b.shape(x))
        dims = sorted(int(d) % rank for d in _list(a["dim"]))
        if rank < 3 or dims != list(range(2, rank)):
            self.fail("mean over axes other than the spatial ones")
        if a["keepdim"]:
            self.emit("global_avgpool", [x])
        else:
            mid = self.b.emit("global_avgpool", f"{self.node.name}.pool", [x])
            self.emit("reshape", [mid], {"shape": self.out_shape()})

    @handles(*RESHAPES)
    def h_reshape(self, a):
        src = a.get("self", a.get("input"))
        if self.is_const(src):
            self.consts[self.node.outputs[0]] = self.cval(src).reshape(self.p.shapes[self.node.outputs[0]])
            return
        full_in = self.p.shapes.get(src.name)
        full_out = self.p.shapes[self.node.outputs[0]]
        if len(full_out) < 2 or (full_in and full_in[0] != full_out[0]):
            self.fail(f"{self.node.target} that merges or splits the batch axis")
        self.emit("reshape", [self.t(src)], {"shape": self.out_shape()})

    @handles("aten.permute.default", "aten.transpose.int", "aten.t.default", "aten.permute_copy.default")
    def h_permute(self, a):
        x = a["self"]
        rank = len(self.ir_shape(x))
        if "dims" in a:
            perm = [int(d) % rank for d in a["dims"]]
        else:
            d0, d1 = (int(a["dim0"]) % rank, int(a["dim1"]) % rank) if "dim0" in a else (0, 1)
            perm = list(range(rank))
            perm[d0], perm[d1] = perm[d1], perm[d0]
        if self.is_const(x):
            self.consts[self.node.outputs[0]] = np.transpose(self.cval(x), perm)
            return
        if perm[0] != 0:
            self.fail(f"{self.node.target} that moves the batch axis")
        if perm == list(range(rank)):
            self.same(x)
        else:
            self.emit("transpose", [self.t(x)], {"perm": tuple(perm)})

    def _binary(self, a, op, fn, other_key="other"):
        x, y = a["self"], a[other_key]
        alpha = a.get("alpha", 1)
        if not isinstance(y, Ref):
            y_val = np.asarray(y, dtype=np.float64)
        elif self.is_const(y):
            y_val = self.cval(y).astype(np.float64)
        else:
            y_val = None
        if self.is_const(x) and y_val is not None:
            self.consts[self.node.outputs[0]] = np.asarray(fn(self.cval(x).astype(np.float64), alpha * y_val),
                                                           dtype=np.float32)
            return None
        return x, y, y_val, alpha

    @handles("aten.add.Tensor", "aten.add.Scalar", "aten.add_.Tensor", alpha=1)
    def h_add(self, a):
        r = self._binary(a, "add", np.add)
        if r is None:
            return
        x, y, y_val, alpha = r
        if y_val is not None:
            self.emit("add", [self.t(x), self.b.const(f"{self.node.name}.const", alpha * y_val)])
        elif self.is_const(x):
            yt = self.t(y)
            if alpha != 1:
                yt = self.b.emit("mul", f"{self.node.name}.alpha", [yt, self.b.const(f"{self.node.name}.alpha", alpha)])
            self.emit("add", [yt, self.b.const(f"{self.node.name}.const", self.cval(x))])
        else:
            yt = self.t(y)
            if alpha != 1:
                yt = self.b.emit("mul", f"{self.node.name}.alpha", [yt, self.b.const(f"{self.node.name}.alpha", alpha)])
            self.emit("add", [self.t(x), yt])

    @handles("aten.sub.Tensor", "aten.sub.Scalar", alpha=1)
    def h_sub(self, a):
        r = self._binary(a, "add", np.subtract)
        if r is None:
            return
        x, y, y_val, alpha = r
        if y_val is not None:
            self.emit("add", [self.t(x), self.b.const(f"{self.node.name}.const", -alpha * y_val)])
            return
        neg = self.b.emit("mul", f"{self.node.name}.negate", [self.t(y), self.b.const(f"{self.node.name}.minus",
                                                                                        -float(alpha))])
        if self.is_const(x):
            self.emit("add", [neg, self.b.const(f"{self.node.name}.const", self.cval(x))])
        else:
            self.emit("add", [self.t(x), neg])

    @handles("aten.mul.Tensor", "aten.mul.Scalar", "aten.mul_.Tensor")
    def h_mul(self, a):
        r = self._binary(a, "mul", np.multiply)
        if r is None:
            return
        x, y, y_val, _ = r
        if y_val is not None:
            self.emit("mul", [self.t(x), self.b.const(f"{self.node.name}.const", y_val)])
        elif self.is_const(x):
            self.emit("mul", [self.t(y), self.b.const(f"{self.node.name}.const", self.cval(x))])
        else:
            self.emit("mul", [self.t(x), self.t(y)])

    @handles("aten.div.Tensor", "aten.div.Scalar")
    def h_div(self, a):
        r = self._binary(a, "mul", np.divide)
        if r is None:
            return
        x, y, y_val, _ = r
        if y_val is None or self.is_const(x):
            self.fail("aten.div by a computed tensor")
        self.emit("mul", [self.t(x), self.b.const(f"{self.node.name}.recip", 1.0 / y_val)])

    @handles("aten.neg.default")
    def h_neg(self, a):
        x = a["self"]
        if self.is_const(x):
            self.consts[self.node.outputs[0]] = -self.cval(x)
        else:
            self.emit("mul", [self.t(x), self.b.const(f"{self.node.name}.minus1", -1.0)])

    @handles("aten.cat.default", dim=0)
    def h_cat(self, a):
        ts = a["tensors"]
        rank = len(self.ir_shape(ts[0]))
        dim = int(a["dim"]) % rank
        if all(self.is_const(t) for t in ts):
            self.consts[self.node.outputs[0]] = np.concatenate([self.cval(t) for t in ts], axis=dim)
            return
        if dim == 0:
            self.fail("aten.cat along the batch axis")
        self.emit("concat", [self.t(t) for t in ts], {"axis": dim})

    @handles("aten.constant_pad_nd.default", "aten.pad.default", value=0.0, mode="constant")
    def h_pad(self, a):
        x = self.t(a["self"])
        rank = len(self.b.shape(x))
        pad = [int(p) for p in a["pad"]]
        begin, end = [0] * rank, [0] * rank
        for i in range(len(pad) // 2):  # torch lists (begin, end) pairs from the last axis backwards
            begin[rank - 1 - i], end[rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
        if min(pad, default=0) < 0:
            self.fail("negative padding (cropping)")
        value = 0.0 if a["value"] is None else float(a["value"])
        self.emit("pad", [x], {"pads": tuple(begin + end), "value": value})

    @handles("aten.softmax.int", "aten._softmax.default", dtype=None, half_to_float=False)
    def h_softmax(self, a):
        x = self.t(a["self"])
        self.emit("softmax", [x], {"axis": int(a["dim"]) % len(self.b.shape(x))})

    @handles("aten.argmax.default", dim=None, keepdim=False)
    def h_argmax(self, a):
        x = self.t(a["self"])
        if a["dim"] is None:
            self.fail("aten.argmax over the flattened tensor (give dim)")
        self.emit("argmax", [x], {"axis": int(a["dim"]) % len(self.b.shape(x)), "keepdims": int(bool(a["keepdim"]))},
                  dtype=I32)


def _list(v):
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _pair(v):
    v = _list(v)
    if len(v) == 1:
        v = v * 2
    return tuple(int(x) for x in v)
