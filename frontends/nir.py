"""NIR frontend: a `.nir` file (the Neuromorphic Intermediate Representation, HDF5, read with
`nir.read`; nothing is unpickled) into a stateful float lbc graph: one call of the graph is one time
step; every neuron's membrane (and a CubaLIF's synaptic current) is a state tensor.

NIR states its neurons as differential equations and stores no time step; lbc discretises them with
forward Euler and `dt` (default 1e-4, the step snnTorch's exporter assumes: it writes tau = dt / (1 -
beta), so that beta = 1 - dt / tau and the input gain dt * r / tau come back exactly):

    LIF      tau dv/dt = (v_leak - v) + r I   ->  lif(beta = 1 - dt/tau, gain = dt r / tau)
    LI       same without spikes              ->  li
    IF       dv/dt = r I                      ->  lif(beta = 1, gain = dt r)
    I        dv/dt = r I                      ->  li(beta = 1, gain = dt r)
    CubaLIF  tau_syn dI/dt = -I + w_in S, then the LIF membrane driven by the new I
                                              ->  li (synapse) then lif
    Affine / Linear -> dense, Conv2d -> conv2d, Flatten -> reshape, Scale -> mul, Threshold -> threshold

Spikes compare strictly (v > v_threshold) and reset to v_reset in the same step, as NIR defines.
Spiking inputs (the graph input) are marked in meta["spike_inputs"]: they stay 0/1 when quantised.
"""

from pathlib import Path

import numpy as np

from lbc.errors import ModelError, UnsupportedOpError
from lbc.frontends.common import GraphBuilder, report_unsupported
from lbc.ir.dtypes import F32
from lbc.ir.graph import Node, TensorType

DEFAULT_DT = 1e-4
SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "LIF", "CubaLIF", "LI", "IF", "I",
             "Scale", "Threshold")


def _nir():
    try:
        import nir
    except ImportError:
        raise ModelError("reading .nir files needs the Python package nir (pip install nir; make test "
                         "installs it)") from None
    return nir


def _arr(v):
    return np.asarray(v, dtype=np.float64).reshape(-1)


def _tup(v):
    return tuple(float(x) for x in _arr(v))


def load_nir(path, dt=DEFAULT_DT):
    """The float lbc graph of a .nir file, one time step per call."""
    nir = _nir()
    path = Path(path)
    try:
        ng = nir.read(str(path))
    except Exception as e:  # h5py/nir raise many kinds on corrupt files
        raise ModelError(f"{path}: not a readable NIR file ({type(e).__name__}: {e})") from None
    return _Importer(ng, path, float(dt)).run()


class _Importer:
    def __init__(self, ng, path, dt):
        self.ng, self.path, self.dt = ng, path, dt
        self.b = GraphBuilder(path.stem, str(path))

    def _order(self):
        nodes, edges = self.ng.nodes, list(self.ng.edges)
        preds = {k: [] for k in nodes}
        for src, dst in edges:
            if src not in nodes or dst not in nodes:
                raise ModelError(f"{self.path}: edge {src!r} -> {dst!r} names a node that does not exist")
            preds[dst].append(src)
        order, done = [], set()
        pending = sorted(nodes)
        while pending:
            ready = [k for k in pending if all(p in done for p in preds[k])]
            if not ready:
                raise UnsupportedOpError(f"{self.path}: the graph has a cycle (recurrent connections through "
                                         f"{', '.join(pending)}); lbc imports feed-forward NIR graphs")
            for k in ready:
                order.append(k)
                done.add(k)
            pending = [k for k in pending if k not in done]
        return order, preds

    def run(self):
        order, preds = self._order()
        bad = {}
        for k in order:
            kind = type(self.ng.nodes[k]).__name__
            if kind not in SUPPORTED:
                bad.setdefault(f"{kind} (lbc reads {', '.join(SUPPORTED)})", []).append(k)
            elif kind != "Input" and len(preds[k]) != 1:
                bad.setdefault(f"{kind} with {len(preds[k])} inputs (one expected)", []).append(k)
        report_unsupported(str(self.path), bad, "nodes")
        out, outputs = {}, []
        for k in order:
            node = self.ng.nodes[k]
            kind = type(node).__name__
            if kind == "Input":
                shape = tuple(int(d) for d in _arr(node.input_type["input"]))
                out[k] = self.b.add_input(k, (1,) + shape)
                self.b.g.meta.setdefault("spike_inputs", []).append(out[k])
                continue
            x = out[preds[k][0]]
            if kind == "Output":
                outputs.append(x)
                continue
            out[k] = getattr(self, "n_" + kind)(k, node, x)
        if not outputs:
            raise ModelError(f"{self.path}: the NIR graph has no Output node")
        g = self.b.finish(outputs)
        g.meta["nir_dt"] = self.dt
        return g

    # ------------------------------------------------------------------ synapses and layout

    def _flat(self, k, x):
        shape = self.b.shape(x)
        if len(shape) != 2:
            x = self.b.emit("reshape", f"{k}.flatten", [x], attrs={"shape": (1, int(np.prod(shape[1:])))})
        return x

    def n_Affine(self, k, node, x):
        w = np.asarray(node.weight, dtype=np.float32)
        return self.b.emit("dense", k, [self._flat(k, x), self.b.const(f"{k}.weight", w),
                                        self.b.const(f"{k}.bias", np.asarray(node.bias, dtype=np.float32))])

    def n_Linear(self, k, node, x):
        w = np.asarray(node.weight, dtype=np.float32)
        return self.b.emit("dense", k, [self._flat(k, x), self.b.const(f"{k}.weight", w)])

    def n_Conv2d(self, k, node, x):
        w = np.asarray(node.weight, dtype=np.float32)
        if w.ndim != 4:
            raise ModelError(f"{self.path}: Conv2d {k!r}: weight must be 4-d, got {w.shape}")
        shape = self.b.shape(x)
        if len(shape) != 4:
            raise ModelError(f"{self.path}: Conv2d {k!r}: input must be [C, H, W], got {shape[1:]}")
        pad = node.padding
        kh, kw = w.shape[2:]
        stride = tuple(int(s) for s in np.broadcast_to(node.stride, (2,)))
        dil = tuple(int(s) for s in np.broadcast_to(node.dilation, (2,)))
        if isinstance(pad, str):
            if pad == "same" and stride != (1, 1):
                raise UnsupportedOpError(f"{self.path}: Conv2d {k!r}: padding 'same' with stride {stride}")
            ph, pw = ((dil[0] * (kh - 1)) // 2, (dil[1] * (kw - 1)) // 2) if pad == "same" else (0, 0)
            pads = (ph, pw, dil[0] * (kh - 1) - ph, dil[1] * (kw - 1) - pw) if pad == "same" else (0, 0, 0, 0)
        else:
            ph, pw = (int(p) for p in np.broadcast_to(pad, (2,)))
            pads = (ph, pw, ph, pw)
        ins = [x, self.b.const(f"{k}.weight", w)]
        if node.bias is not None and np.size(node.bias):
            ins.append(self.b.const(f"{k}.bias", np.broadcast_to(np.asarray(node.bias, np.float32), (w.shape[0],))))
        return self.b.emit("conv2d", k, ins, attrs={"strides": stride, "pads": pads, "dilations": dil,
                                                    "group": int(node.groups)})

    def n_Flatten(self, k, node, x):
        return self.b.emit("reshape", k, [x], attrs={"shape": (1, int(np.prod(self.b.shape(x)[1:])))})

    def n_Scale(self, k, node, x):
        s = np.asarray(node.scale, dtype=np.float32)
        return self.b.emit("mul", k, [x, self.b.const(f"{k}.scale", s.reshape((1,) + s.shape))])

    def n_Threshold(self, k, node, x):
        return self.b.emit("threshold", k, [x], attrs={"threshold": _tup(node.threshold)})

    # ------------------------------------------------------------------ neurons

    def _stateful(self, op, k, x, attrs, state_name):
        """A neuron node: declares its state (initial value 0) and returns its first output."""
        g = self.b.g
        shape = self.b.shape(x)
        n = int(np.prod(shape[1:]))
        for key, v in attrs.items():
            if isinstance(v, tuple) and len(v) not in (1, n):
                raise ModelError(f"{self.path}: {k!r}: parameter {key} has {len(v)} values for {n} neurons")
        v = g.add_state(g.fresh_name(state_name), TensorType(F32, shape), np.zeros(shape[1:]), "")
        y = g.fresh_name(k)
        g.types[y] = TensorType(F32, shape)
        nxt = g.fresh_name(f"{v}.next")
        g.types[nxt] = TensorType(F32, shape)
        g.nodes.append(Node(op, k, [x, v], [y, nxt], attrs))
        g.add_state(v, g.types[v], np.zeros(shape[1:]), nxt)
        return y

    def _lif(self, k, x, tau, r, v_leak, thr, v_reset, state="v"):
        tau = _arr(tau)
        if np.any(tau <= 0):
            raise ModelError(f"{self.path}: {k!r}: time constants must be positive")
        attrs = {"beta": _tup(1 - self.dt / tau), "gain": _tup(self.dt * _arr(r) / tau), "v_leak": _tup(v_leak),
                 "threshold": _tup(thr), "v_reset": _tup(v_reset), "reset": "zero"}
        return self._stateful("lif", k, x, attrs, f"{k}.{state}")

    def n_LIF(self, k, node, x):
        return self._lif(k, x, node.tau, node.r, node.v_leak, node.v_threshold, node.v_reset)

    def n_IF(self, k, node, x):
        r = _arr(node.r)
        attrs = {"beta": (1.0,), "gain": _tup(self.dt * r), "v_leak": (0.0,), "threshold": _tup(node.v_threshold),
                 "v_reset": _tup(node.v_reset), "reset": "zero"}
        return self._stateful("lif", k, x, attrs, f"{k}.v")

    def n_LI(self, k, node, x):
        tau = _arr(node.tau)
        attrs = {"beta": _tup(1 - self.dt / tau), "gain": _tup(self.dt * _arr(node.r) / tau),
                 "v_leak": _tup(node.v_leak)}
        return self._stateful("li", k, x, attrs, f"{k}.v")

    def n_I(self, k, node, x):
        return self._stateful("li", k, x, {"beta": (1.0,), "gain": _tup(self.dt * _arr(node.r))}, f"{k}.v")

    def n_CubaLIF(self, k, node, x):
        ts = _arr(node.tau_syn)
        syn = self._stateful("li", f"{k}.syn", x, {"beta": _tup(1 - self.dt / ts),
                                                  "gain": _tup(self.dt * _arr(node.w_in) / ts)}, f"{k}.i")
        return self._lif(k, syn, node.tau_mem, node.r, node.v_leak, node.v_threshold, node.v_reset)
