"""Keras frontend: a Keras 3 `.keras` file -> float lbc graph, without keras or TensorFlow.

A .keras file is a zip of config.json (the architecture) and model.weights.h5 (the variables; read
with h5py). Each layer's variables sit in a group `layers/<class in snake case>[_<n>]/vars/<i>` whose
`name` attribute is the layer name; variables are positional ([kernel, bias], BN [gamma, beta,
moving_mean, moving_variance] minus the ones disabled by use_bias/center/scale). Nothing in the file
is executed or imported: custom layers and serialized functions are reported as unsupported.

Layout: Keras tensors are NHWC, lbc's spatial ops are NCHW. The graph input keeps the Keras shape
(so users feed the same arrays as to Keras); a 4-d tensor is converted to NCHW just before the first
op that needs it (a free reshape when C == 1 or H*W == 1, a transpose otherwise). Flatten of an NCHW
tensor is a plain reshape whose feature order is recorded as a permutation, folded into the next
Dense layer's weight rows (or undone by reshape-transpose-reshape if something else consumes it),
so the usual Conv -> Flatten -> Dense costs no transpose. Outputs are returned in Keras order.

Layers: Dense, Conv2D, DepthwiseConv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
Conv1D, MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D (1-d layers run as the 2-d ops on a
height-1 image),
Flatten, Reshape, BatchNormalization, ReLU, LeakyReLU, Softmax, Activation, Dropout, Add, Rescaling,
InputLayer; Sequential models and Functional models with any number of inputs and outputs. Every problem
(unsupported layers with their names, input shapes) is reported at once.
"""

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lbc.errors import ModelError, safe_name
from lbc.frontends.common import GraphBuilder, report_unsupported

ACTIVATIONS = {"linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "leaky_relu"}
LAYERS = {"InputLayer", "Dense", "Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D",
          "GlobalAveragePooling2D", "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "Flatten", "Reshape", "BatchNormalization", "ReLU", "LeakyReLU", "Softmax",
          "Activation", "Dropout", "Add", "Rescaling"}
ALIASES = {"MaxPool2D": "MaxPooling2D", "AvgPool2D": "AveragePooling2D", "AveragePool2D": "AveragePooling2D",
           "GlobalAvgPool2D": "GlobalAveragePooling2D", "Convolution2D": "Conv2D", "MaxPool1D": "MaxPooling1D",
           "AvgPool1D": "AveragePooling1D", "AveragePool1D": "AveragePooling1D",
           "GlobalAvgPool1D": "GlobalAveragePooling1D", "Convolution1D": "Conv1D"}


def snake(name):
    """keras.src.utils.naming.to_snake_case: the weight-group name of a layer class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read_keras(path):
    """(model config dict, {layer name: [arrays]}) from a .keras zip."""
    where = str(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelError(f"{where}: not a .keras file (not a zip archive: {e}); save with model.save('m.keras')") \
            from None
    with z:
        names = z.namelist()
        if "config.json" not in names:
            raise ModelError(f"{where}: not a Keras 3 .keras file (no config.json)")
        try:
            cfg = json.loads(z.read("config.json"))
        except ValueError as e:
            raise ModelError(f"{where}: config.json is unreadable ({e})") from None
        raw = z.read("model.weights.h5") if "model.weights.h5" in names else None
    weights = {}
    if raw is not None:
        try:
            import h5py
        except ModuleNotFoundError:
            raise ModelError("reading .keras weights needs h5py: pip install h5py") from None
        with h5py.File(io.BytesIO(raw), "r") as h5:
            weights = _weights(h5, cfg)
    return cfg, weights


def _weights(h5, cfg):
    """Layer name -> list of its variables, by the `name` attribute of each vars group, falling back
    to the class-name counters Keras uses for the group names."""
    root = h5.get("layers") or h5.get("_layer_checkpoint_dependencies")
    by_name, by_group = {}, {}
    if root is not None:
        for gname, grp in root.items():
            v = grp.get("vars")
            if v is None:
                continue
            arrays = [v[str(i)][()] for i in range(len(v))]
            by_group[gname] = arrays
            lname = v.attrs.get("name")
            if isinstance(lname, bytes):
                lname = lname.decode()
            if lname:
                by_name[str(lname)] = arrays
    out, seen = {}, {}
    for layer in (cfg.get("config") or {}).get("layers", []):
        lname = (layer.get("config") or {}).get("name", layer.get("name"))
        base = snake(layer.get("class_name", ""))
        k = seen.get(base, 0)
        seen[base] = k + 1
        if lname in by_name:
            out[lname] = by_name[lname]
        else:
            out[lname] = by_group.get(base if k == 0 else f"{base}_{k}", [])
    return out


def load_keras(path, input_shape=None):
    cfg, weights = read_keras(Path(path))
    return _Importer(cfg, weights, str(path), input_shape).run()


@dataclass
class KT:
    """A Keras tensor in the lbc graph: IR name, Keras shape (batch included), whether a 4-d tensor
    is stored NCHW, and for a flattened NCHW tensor the Keras feature index of each IR feature."""
    name: str
    kshape: tuple
    nchw: bool = False
    perm: object = None
    perm_src: tuple = None  # the NHWC Keras shape the permuted features were flattened from
    one_d: bool = False  # a Keras [N, L, C] tensor held as the 4-d (N, 1, L, C) image (NCHW: [N, C, 1, L])


class _Importer:
    def __init__(self, cfg, weights, where, input_shape):
        self.cfg, self.weights, self.where = cfg, weights, where
        self.input_shape = input_shape
        mc = cfg.get("config") or {}
        self.kind = cfg.get("class_name")
        self.b = GraphBuilder(mc.get("name") or Path(where).stem, where)
        self.layers = mc.get("layers") or []
        self.mc = mc
        self.cache = {}

    # -- checks -------------------------------------------------------------------------------------
    def unsupported(self, layer):
        cls = ALIASES.get(layer.get("class_name"), layer.get("class_name"))
        c = layer.get("config") or {}
        if cls in ("Sequential", "Functional", "Model"):
            return f"nested model {cls}"
        if cls not in LAYERS:
            return cls if not layer.get("registered_name") or layer.get("module", "").startswith("keras") \
                else f"custom layer {layer.get('registered_name')}"
        if c.get("data_format", "channels_last") != "channels_last":
            return f"{cls} with data_format={c['data_format']}"
        if c.get("padding") not in (None, "valid", "same"):
            return f"{cls} with padding={c['padding']}"
        act = c.get("activation")
        if act is not None and (not isinstance(act, str) or act not in ACTIVATIONS):
            return f"{cls} with activation {act if isinstance(act, str) else 'object'}"
        if cls == "ReLU":
            if c.get("threshold", 0.0):
                return "ReLU with threshold"
            if c.get("max_value") is not None and c.get("negative_slope", 0.0):
                return "ReLU with both max_value and negative_slope"
        if cls == "BatchNormalization":
            ax = c.get("axis", -1)
            if isinstance(ax, list):
                ax = ax[0] if len(ax) == 1 else None
            if ax not in (-1, 3, 1):
                return f"BatchNormalization over axis {c.get('axis')}"
        if cls in ("Softmax",) and c.get("axis", -1) != -1:
            return f"Softmax over axis {c.get('axis')}"
        return None

    # -- driver -------------------------------------------------------------------------------------
    def run(self):
        if self.kind not in ("Sequential", "Functional", "Model"):
            raise ModelError(f"{self.where}: the model is a {self.kind}; lbc reads Sequential and Functional models")
        bad = {}
        for layer in self.layers:
            why = self.unsupported(layer)
            if why:
                bad.setdefault(why, []).append(_lname(layer))
        report_unsupported(self.where, bad, "layers", self.input_problems())
        outs = [self.sequential()] if self.kind == "Sequential" else self.functional()
        return self.b.finish([self.to_keras(o).name for o in outs])

    def input_specs(self):
        """(name, batch shape) of every model input, from the config."""
        if self.kind == "Sequential":
            layers = self.layers
            if layers and layers[0].get("class_name") == "InputLayer":
                c = layers[0].get("config") or {}
                return [(c.get("name", "input"), c.get("batch_shape") or c.get("batch_input_shape"))]
            first = layers[0] if layers else {}
            return [("input", self.mc.get("build_input_shape") or (first.get("config") or {}).get("batch_input_shape")
                     or (first.get("build_config") or {}).get("input_shape"))]
        return [(_lname(layer), (layer.get("config") or {}).get("batch_shape")
                 or (layer.get("config") or {}).get("batch_input_shape"))
                for layer in self.layers if layer.get("class_name") == "InputLayer"]

    def input_problems(self):
        specs = self.input_specs()
        if self.input_shape is not None:
            if len(specs) > 1:
                return [f"--input-shape gives one shape but the model has {len(specs)} inputs"]
            return []
        return [f"input {safe_name(name)!r} has shape {list(shape or [])}; give the full shape with --input-shape"
                for name, shape in specs if not shape or any(d is None for d in list(shape)[1:])]

    def make_input(self, name, batch_shape):
        shape = list(batch_shape or [])
        if self.input_shape is not None:
            if len(self.input_shape) != len(shape):
                raise ModelError(f"--input-shape has {len(self.input_shape)} dims, the Keras input has {len(shape)}")
            shape = list(self.input_shape)
        if not shape or any(d is None for d in shape[1:]):
            raise ModelError(f"{self.where}: input {name!r} has shape {shape}; give the full shape with --input-shape")
        shape = [1] + [int(d) for d in shape[1:]]
        self.b.add_input(name, shape)
        return KT(name, tuple(shape))

    def sequential(self):
        layers = list(self.layers)
        if layers and layers[0].get("class_name") == "InputLayer":
            c = layers.pop(0).get("config") or {}
            x = self.make_input(c.get("name", "input"), c.get("batch_shape") or c.get("batch_input_shape"))
        else:
            first = layers[0] if layers else {}
            shape = (self.mc.get("build_input_shape") or (first.get("config") or {}).get("batch_input_shape")
                     or (first.get("build_config") or {}).get("input_shape"))
            x = self.make_input("input", shape)
        for layer in layers:
            x = self.layer(layer, [x])
        return x

    def functional(self):
        ins, outs = _refs(self.mc.get("input_layers")), _refs(self.mc.get("output_layers"))
        specs = dict(self.input_specs())
        tensors = {}
        for name in [r[0] for r in ins] + sorted(set(specs) - {r[0] for r in ins}):  # graph inputs in model order
            tensors[(name, 0, 0)] = self.make_input(name, specs.get(name))
        pending = [(layer, i, node) for layer in self.layers if layer.get("class_name") != "InputLayer"
                   for i, node in enumerate(layer.get("inbound_nodes") or [])]
        while pending:
            progress = False
            for item in list(pending):
                layer, i, node = item
                refs = _history(node.get("args", []))
                if all(r in tensors for r in refs):
                    tensors[(_lname(layer), i, 0)] = self.layer(layer, [tensors[r] for r in refs])
                    pending.remove(item)
                    progress = True
            if not progress:
                missing = sorted({_lname(p[0]) for p in pending})
                raise ModelError(f"{self.where}: cannot order the layers {', '.join(missing)} (missing inputs)")
        missing = [o[0] for o in outs if o not in tensors]
        if missing or not outs:
            raise ModelError(f"{self.where}: output(s) {', '.join(map(safe_name, missing)) or '(none)'} not computed "
                             f"from the inputs")
        return [tensors[o] for o in outs]

    # -- layout helpers ------------------------------------------------------------------------------
    def as_nchw(self, t):
        if len(t.kshape) != 4 or t.nchw:
            return t
        key = ("nchw", t.name)
        if key not in self.cache:
            n, h, w, c = t.kshape
            if c == 1 or h * w == 1:
                y = self.b.emit("reshape", f"{t.name}.nchw", [t.name], attrs={"shape": (1, c, h, w)})
            else:
                y = self.b.emit("transpose", f"{t.name}.nchw", [t.name], attrs={"perm": (0, 3, 1, 2)})
            self.cache[key] = KT(y, t.kshape, nchw=True)
        return self.cache[key]

    def to_keras(self, t):
        """The same tensor in Keras element order (NHWC, unpermuted features)."""
        if t.perm is not None:
            key = ("unperm", t.name)
            if key not in self.cache:
                n, h, w, c = t.perm_src
                y = self.b.emit("reshape", f"{t.name}.chw", [t.name], attrs={"shape": (1, c, h, w)})
                y = self.b.emit("transpose", f"{t.name}.hwc", [y], attrs={"perm": (0, 2, 3, 1)})
                y = self.b.emit("reshape", f"{t.name}.flat", [y], attrs={"shape": (1, h * w * c)})
                self.cache[key] = KT(y, t.kshape)
            return self.cache[key]
        if len(t.kshape) == 4 and t.nchw and t.one_d:
            key = ("nlc", t.name)
            if key not in self.cache:
                n, h, w, c = t.kshape
                y = t.name
                if c > 1 and w > 1:
                    y = self.b.emit("transpose", f"{t.name}.nhwc", [y], attrs={"perm": (0, 2, 3, 1)})
                y = self.b.emit("reshape", f"{t.name}.nlc", [y], attrs={"shape": (1, w, c)})
                self.cache[key] = KT(y, (1, w, c))
            return self.cache[key]
        if len(t.kshape) == 4 and t.nchw:
            key = ("nhwc", t.name)
            if key not in self.cache:
                n, h, w, c = t.kshape
                if c == 1 or h * w == 1:
                    y = self.b.emit("reshape", f"{t.name}.nhwc", [t.name], attrs={"shape": (1, h, w, c)})
                else:
                    y = self.b.emit("transpose", f"{t.name}.nhwc", [t.name], attrs={"perm": (0, 2, 3, 1)})
                self.cache[key] = KT(y, t.kshape)
            return self.cache[key]
        return t

    def like(self, t, name, kshape=None):
        """A new tensor in the same layout as t (elementwise results)."""
        return KT(name, kshape or t.kshape, t.nchw, t.perm, t.perm_src, t.one_d)

    def channel_vector(self, t, v):
        """A per-channel (last Keras axis) constant shaped to broadcast against t's IR layout."""
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if t.perm is not None:
            n, h, w, c = t.perm_src
            full = np.tile(v, h * w) if v.size == c else v
            return full[t.perm]
        if len(t.kshape) == 4 and t.nchw:
            return v.reshape(1, -1, 1, 1)
        return v

    # -- layers --------------------------------------------------------------------------------------
    def layer(self, layer, inputs):
        cls = ALIASES.get(layer["class_name"], layer["class_name"])
        c = layer.get("config") or {}
        self.name = _lname(layer)
        self.w = list(self.weights.get(self.name, []))
        return getattr(self, "l_" + cls)(c, inputs)

    def take(self, what, present=True):
        if not present:
            return None
        if not self.w:
            raise ModelError(f"{self.where}: layer {self.name!r} has no stored {what} (weights file incomplete?)")
        return self.w.pop(0)

    def done(self):
        if self.w:
            raise ModelError(f"{self.where}: layer {self.name!r} stores {len(self.w)} more variables than lbc expects "
                             f"(a quantized or LoRA layer?)")

    def activation(self, t, act, name=None):
        name = name or self.name
        if act in (None, "linear"):
            return t
        if act == "softmax":
            if t.perm is not None:
                t = self.to_keras(t)
            axis = 1 if (len(t.kshape) == 4 and t.nchw) else len(t.kshape) - 1
            return self.like(t, self.b.emit("softmax", name, [t.name], name, {"axis": axis}))
        op, attrs = {"relu": ("relu", {}), "relu6": ("clip", {"min": 0.0, "max": 6.0}), "sigmoid": ("sigmoid", {}),
                     "tanh": ("tanh", {}), "leaky_relu": ("leaky_relu", {"alpha": 0.2})}[act]
        return self.like(t, self.b.emit(op, name, [t.name], name, attrs))

    def l_InputLayer(self, c, ins):
        return ins[0]

    def l_Dropout(self, c, ins):
        return ins[0]

    def l_Dense(self, c, ins):
        x = ins[0]
        if len(x.kshape) == 4 and x.nchw:
            x = self.to_keras(x)
        kernel = self.take("kernel").astype(np.float64)
        bias = self.take("bias", c.get("use_bias", True))
        self.done()
        w = kernel.T  # [out, in]
        if x.perm is not None:
            w = w[:, x.perm]
        ins_ = [x.name, self.b.const(f"{self.name}.kernel", w)]
        if bias is not None:
            ins_.append(self.b.const(f"{self.name}.bias", bias))
        pre = f"{self.name}.linear" if c.get("activation") not in (None, "linear") else self.name
        y = self.b.emit("dense", self.name, ins_, pre)
        t = KT(y, tuple(x.kshape[:-1]) + (int(c["units"]),))
        return self.activation(t, c.get("activation"))

    def _pads(self, c, hw, k, s, d=(1, 1)):
        if c.get("padding", "valid") == "valid":
            return (0, 0, 0, 0)
        pads = []
        for i in range(2):
            out = -(-hw[i] // s[i])
            total = max((out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - hw[i], 0)
            pads.append((total // 2, total - total // 2))
        return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])

    def _conv(self, c, x, w, bias, group):
        x = self.as_nchw(x)
        k, s, d = tuple(w.shape[2:]), _pair(c.get("strides", 1)), _pair(c.get("dilation_rate", 1))
        attrs = {"strides": s, "pads": self._pads(c, x.kshape[1:3], k, s, d), "dilations": d, "group": group}
        ins_ = [x.name, self.b.const(f"{self.name}.kernel", w)]
        if bias is not None:
            ins_.append(self.b.const(f"{self.name}.bias", bias))
        pre = f"{self.name}.conv" if c.get("activation") not in (None, "linear") else self.name
        y = self.b.emit("conv2d", self.name, ins_, pre, attrs)
        n, ch, oh, ow = self.b.shape(y)
        return self.activation(KT(y, (1, oh, ow, ch), nchw=True), c.get("activation"))

    def l_Conv2D(self, c, ins):
        kernel = self.take("kernel").astype(np.float64)
        bias = self.take("bias", c.get("use_bias", True))
        self.done()
        return self._conv(c, ins[0], kernel.transpose(3, 2, 0, 1), bias, int(c.get("groups", 1)))

    def l_DepthwiseConv2D(self, c, ins):
        kernel = self.take("depthwise kernel").astype(np.float64)  # kh, kw, C, multiplier
        bias = self.take("bias", c.get("use_bias", True))
        self.done()
        kh, kw, ch, mult = kernel.shape
        w = kernel.transpose(2, 3, 0, 1).reshape(ch * mult, 1, kh, kw)
        return self._conv(c, ins[0], w, bias, ch)

    def _pool(self, c, ins, op):
        x = self.as_nchw(ins[0])
        k = _pair(c.get("pool_size", 2))
        s = _pair(c.get("strides") or k)
        attrs = {"kernel": k, "strides": s, "pads": self._pads(c, x.kshape[1:3], k, s)}
        if op == "avgpool":
            attrs["count_include_pad"] = 0  # Keras averages over the valid pixels only
        y = self.b.emit(op, self.name, [x.name], self.name, attrs)
        n, ch, oh, ow = self.b.shape(y)
        return KT(y, (1, oh, ow, ch), nchw=True)

    def as_image(self, t):
        """A Keras [N, L, C] tensor as the NCHW image [N, C, 1, L] (1-d layers are 2-d with height 1)."""
        if t.one_d:
            return t
        t = self.to_keras(t)
        if len(t.kshape) != 3:
            raise ModelError(f"{self.where}: layer {self.name!r} needs a [batch, steps, channels] input, got "
                             f"{list(t.kshape)}")
        n, length, c = t.kshape
        key = ("image", t.name)
        if key not in self.cache:
            y = self.b.emit("reshape", f"{t.name}.image", [t.name], attrs={"shape": (1, 1, length, c)})
            self.cache[key] = self.as_nchw(KT(y, (1, 1, length, c)))
        return KT(self.cache[key].name, (1, 1, length, c), nchw=True, one_d=True)

    @staticmethod
    def _config_1d(c, *keys):
        """The 2-d config of a 1-d layer: every size becomes (1, size)."""
        c = dict(c)
        for k in keys:
            if c.get(k) is not None:
                v = c[k]
                c[k] = (1, int(v[0] if isinstance(v, (list, tuple)) else v))
        return c

    def l_Conv1D(self, c, ins):
        kernel = self.take("kernel").astype(np.float64)  # k, C/groups, M
        bias = self.take("bias", c.get("use_bias", True))
        self.done()
        c2 = self._config_1d(c, "strides", "dilation_rate")
        w = kernel[None].transpose(3, 2, 0, 1)  # [M, C/groups, 1, k]
        y = self._conv(c2, self.as_image(ins[0]), w, bias, int(c.get("groups", 1)))
        return KT(y.name, y.kshape, True, one_d=True)

    def l_MaxPooling1D(self, c, ins):
        y = self._pool(self._config_1d(c, "pool_size", "strides"), [self.as_image(ins[0])], "maxpool")
        return KT(y.name, y.kshape, True, one_d=True)

    def l_AveragePooling1D(self, c, ins):
        y = self._pool(self._config_1d(c, "pool_size", "strides"), [self.as_image(ins[0])], "avgpool")
        return KT(y.name, y.kshape, True, one_d=True)

    def l_GlobalAveragePooling1D(self, c, ins):
        x = self.as_image(ins[0])
        ch = x.kshape[3]
        y = self.b.emit("global_avgpool", f"{self.name}.pool", [x.name])
        if c.get("keepdims", False):
            return KT(self.b.emit("reshape", self.name, [y], self.name, {"shape": (1, 1, ch)}), (1, 1, ch))
        return KT(self.b.emit("reshape", self.name, [y], self.name, {"shape": (1, ch)}), (1, ch))

    def l_MaxPooling2D(self, c, ins):
        return self._pool(c, ins, "maxpool")

    def l_AveragePooling2D(self, c, ins):
        return self._pool(c, ins, "avgpool")

    def l_GlobalAveragePooling2D(self, c, ins):
        x = self.as_nchw(ins[0])
        ch = x.kshape[3]
        if c.get("keepdims", False):
            y = self.b.emit("global_avgpool", self.name, [x.name], self.name)
            return KT(y, (1, 1, 1, ch), nchw=True)
        y = self.b.emit("global_avgpool", f"{self.name}.pool", [x.name])
        y = self.b.emit("reshape", self.name, [y], self.name, {"shape": (1, ch)})
        return KT(y, (1, ch))

    def l_Flatten(self, c, ins):
        x = ins[0]
        size = int(np.prod(x.kshape[1:]))
        if len(x.kshape) <= 2:
            return x
        if len(x.kshape) == 4 and x.nchw:
            n, h, w, ch = x.kshape
            y = self.b.emit("reshape", self.name, [x.name], self.name, {"shape": (1, size)})
            if ch == 1 or h * w == 1:
                return KT(y, (1, size))
            # IR feature j = (c, y, x) in CHW order holds Keras feature (y, x, c) in HWC order
            cc, yy, xx = np.meshgrid(np.arange(ch), np.arange(h), np.arange(w), indexing="ij")
            return KT(y, (1, size), perm=((yy * w + xx) * ch + cc).reshape(-1), perm_src=x.kshape)
        y = self.b.emit("reshape", self.name, [x.name], self.name, {"shape": (1, size)})
        return KT(y, (1, size))

    def l_Reshape(self, c, ins):
        x = self.to_keras(ins[0])
        target = [int(d) for d in c["target_shape"]]
        size = int(np.prod(x.kshape[1:]))
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = size // max(known, 1)
        if int(np.prod(target)) != size:
            raise ModelError(f"{self.where}: layer {self.name!r} cannot reshape {list(x.kshape[1:])} to {target}")
        y = self.b.emit("reshape", self.name, [x.name], self.name, {"shape": (1, *target)})
        return KT(y, (1, *target))

    def l_BatchNormalization(self, c, ins):
        x = ins[0]
        if len(x.kshape) == 4:
            x = self.as_nchw(x)
        elif len(x.kshape) != 2:
            x = self.to_keras(x)
        gamma = self.take("gamma", c.get("scale", True))
        beta = self.take("beta", c.get("center", True))
        mean, var = self.take("moving_mean"), self.take("moving_variance")
        self.done()
        ch = mean.shape[0]
        gamma = np.ones(ch) if gamma is None else gamma
        beta = np.zeros(ch) if beta is None else beta
        if x.perm is not None or len(x.kshape) == 3:
            # per-feature constants broadcast over the IR layout: express as multiply + add
            scale = gamma / np.sqrt(var + float(c.get("epsilon", 1e-3)))
            shift = beta - mean * scale
            y = self.b.emit("mul", f"{self.name}.scale", [x.name, self.b.const(f"{self.name}.scale",
                                                                               self.channel_vector(x, scale))])
            y = self.b.emit("add", self.name, [y, self.b.const(f"{self.name}.shift", self.channel_vector(x, shift))],
                            self.name)
            return self.like(x, y)
        n = self.name
        y = self.b.emit("batchnorm", n, [x.name, self.b.const(f"{n}.gamma", gamma), self.b.const(f"{n}.beta", beta),
                                         self.b.const(f"{n}.mean", mean), self.b.const(f"{n}.var", var)], n,
                        {"epsilon": float(c.get("epsilon", 1e-3))})
        return self.like(x, y)

    def l_ReLU(self, c, ins):
        x = ins[0]
        mx, slope = c.get("max_value"), float(c.get("negative_slope", 0.0) or 0.0)
        if mx is not None:
            return self.like(x, self.b.emit("clip", self.name, [x.name], self.name, {"min": 0.0, "max": float(mx)}))
        if slope:
            return self.like(x, self.b.emit("leaky_relu", self.name, [x.name], self.name, {"alpha": slope}))
        return self.like(x, self.b.emit("relu", self.name, [x.name], self.name))

    def l_LeakyReLU(self, c, ins):
        slope = float(c.get("negative_slope", c.get("alpha", 0.3)))
        return self.like(ins[0], self.b.emit("leaky_relu", self.name, [ins[0].name], self.name, {"alpha": slope}))

    def l_Softmax(self, c, ins):
        return self.activation(ins[0], "softmax")

    def l_Activation(self, c, ins):
        return self.activation(ins[0], c.get("activation"))

    def l_Add(self, c, ins):
        if len(ins) < 2:
            raise ModelError(f"{self.where}: layer {self.name!r} adds {len(ins)} tensor(s)")
        if any(t.perm is not None for t in ins) and len({id(t.perm) for t in ins}) != 1:
            ins = [self.to_keras(t) for t in ins]
        if len({t.nchw for t in ins}) != 1:
            ins = [self.as_nchw(t) for t in ins]
        acc = ins[0]
        for i, t in enumerate(ins[1:]):
            last = i == len(ins) - 2
            name = self.name if last else f"{self.name}.{i}"
            acc = self.like(acc, self.b.emit("add", name, [acc.name, t.name], name),
                            tuple(np.broadcast_shapes(acc.kshape, t.kshape)))
        return acc

    def l_Rescaling(self, c, ins):
        x = ins[0]
        scale, offset = np.asarray(c.get("scale", 1.0), np.float64), np.asarray(c.get("offset", 0.0), np.float64)
        y = x.name
        if not np.all(scale == 1.0):
            s = scale if scale.size == 1 else self.channel_vector(x, scale)
            y = self.b.emit("mul", f"{self.name}.scale", [y, self.b.const(f"{self.name}.scale", s)],
                            self.name if np.all(offset == 0) else None)
        if not np.all(offset == 0.0):
            o = offset if offset.size == 1 else self.channel_vector(x, offset)
            y = self.b.emit("add", self.name, [y, self.b.const(f"{self.name}.offset", o)], self.name)
        return self.like(x, y)


def _lname(layer):
    return (layer.get("config") or {}).get("name") or layer.get("name") or "?"


def _refs(v):
    """input_layers / output_layers: one [name, node, tensor] triple or a list of them."""
    if not v:
        return []
    if isinstance(v[0], str):
        return [tuple(v)]
    return [tuple(r) for r in v]


def _history(args):
    """Every keras_history triple in a call's args, in order (nested lists included)."""
    out = []
    if isinstance(args, dict):
        if args.get("class_name") == "__keras_tensor__":
            h = args["config"]["keras_history"]
            return [(h[0], int(h[1]), int(h[2]))]
        for v in args.values():
            out += _history(v)
    elif isinstance(args, list):
        for v in args:
            out += _history(v)
    return out


def _pair(v):
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in (v * 2 if len(v) == 1 else v))
    return (int(v), int(v))
