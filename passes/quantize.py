"""The quantisation rule shared by the quantize-<dtype> passes (and by `lbc.qat`).

Weights: per output channel (or per tensor) scale s chosen from a fixed grid to minimise the squared
error of w ~ s * clamp(round(w / s), lo, hi); the integer weights are stored with the dtype's value set.
Activations: int8 at power-of-two scales 2**-exp, exp = floor(log2(127 / max|x|)) over the calibration
data (or a Q/DQ hint from the model). Bias: round(b / (s_x * s_w)) as i32. Each layer then requantises
with m * 2**-k ~ s_x * s_w / s_y (see `lbc.ir.quant`).

Expects a float graph after fold-batchnorm and fuse-activation. Guarantees an integer graph that
passes the verifier (accumulators proven to fit 32 bits); a softmax at the output is removed and
recorded in meta["output_softmax"] so runners apply it to the dequantised output.
"""

from dataclasses import dataclass

import numpy as np

from lbc import progress
from lbc.errors import LbcError
from lbc.ir.dtypes import B1, I8, I32, QUANT_DTYPES
from lbc.ir.graph import TensorType
from lbc.ir.interpreter import run as interpret
from lbc.ir.ops import OPS
from lbc.ir.ops.spiking import U_LIMIT, state_bound
from lbc.ir.ops.pointwise import build_table
from lbc.ir.quant import choose_multiplier

EXP_MIN, EXP_MAX = -16, 24
GRID = np.linspace(0.2, 1.2, 51)
DEFAULT_CALIBRATION = "256 samples drawn uniformly from [-1, 1] (seed 0; integer inputs: zeros)"


def round_half_up(x):
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def weight_scales(w, dt, per_channel=True):
    """Scale per output channel (axis 0), or one for the tensor, for weights of dtype `dt`."""
    w = np.asarray(w, dtype=np.float64)
    rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    qmax = max(-dt.lo, dt.hi)
    amax = np.abs(rows).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    best_s, best_err = None, None
    for f in GRID:
        s = amax * f / qmax
        q = np.clip(round_half_up(rows / s[:, None]), dt.lo, dt.hi)
        err = ((q * s[:, None] - rows) ** 2).sum(axis=1)
        if best_s is None:
            best_s, best_err = s.copy(), err
        else:
            better = err < best_err
            best_s[better], best_err[better] = s[better], err[better]
    return best_s


def quantize_weights(w, dt, per_channel=True):
    """(integer weights, per-row scales) for float weights w with output channels on axis 0."""
    s = weight_scales(w, dt, per_channel)
    s_rows = np.broadcast_to(s, (w.shape[0],)) if s.size == 1 else s
    q = np.clip(round_half_up(w / s_rows.reshape((-1,) + (1,) * (w.ndim - 1))), dt.lo, dt.hi)
    return q.astype(np.int8), np.asarray(s_rows, dtype=np.float64)


def activation_exp(maxabs):
    if not np.isfinite(maxabs) or maxabs <= 0:
        return 7
    return int(np.clip(np.floor(np.log2(127.0 / maxabs)), EXP_MIN, EXP_MAX))


# Activation values the interpreter holds at once while calibrating (128 MB of float32): the batch
# is run in chunks of as many samples as fit, so a model with large tensors needs bounded memory.
CALIBRATION_BUDGET = 1 << 25
DEFAULT_SAMPLES = 256


def calibrate(graph, data=None):
    """exp for every float activation tensor of a float graph from calibration inputs (`data`: a
    dict input name -> batch; None: the default calibration). Integer tensors (token ids) have no
    exp: they are never quantised."""
    if data is not None and not isinstance(data, dict):
        (only,) = graph.inputs
        data = {only: data}
    names = [n for n in graph.activation_tensors() if graph.types[n].dtype.is_float]
    per_sample = sum(int(np.prod(graph.types[n].shape[1:], dtype=np.int64)) for n in graph.activation_tensors())
    chunk = max(1, CALIBRATION_BUDGET // max(per_sample, 1))
    total = DEFAULT_SAMPLES if data is None else len(next(iter(data.values())))
    maxabs = dict.fromkeys(names, 0.0)
    for lo in range(0, total, chunk):
        hi = min(total, lo + chunk)
        part = default_calibration(graph, lo, hi) if data is None else {k: v[lo:hi] for k, v in data.items()}
        progress.report("calibrate", f"samples {lo}-{hi} of {total}")
        env = interpret(graph, part, return_all=True)
        for n in names:
            v = np.abs(env[n])  # inf/nan (1/0, sqrt of a negative) would hide the real range
            maxabs[n] = max(maxabs[n], float(v[np.isfinite(v)].max(initial=0.0)))
        del env, part
    hints = graph.meta.get("exp_hints", {})
    return {n: hints.get(n, activation_exp(maxabs[n])) for n in names}


def default_calibration(graph, start=0, stop=DEFAULT_SAMPLES):
    """Samples [start, stop) of the default calibration: 256 samples per input (sequences of 8 steps
    for a model with state), float inputs uniform in [-1, 1] (one seed-0 stream, input after input),
    integer inputs zero."""
    steps = (8,) if graph.stateful else ()
    data, offset = {}, 0
    for name in graph.inputs:
        t = graph.types[name]
        per = int(np.prod(steps + tuple(t.shape[1:]), dtype=np.int64))
        shape = (stop - start,) + steps + tuple(t.shape[1:])
        if t.dtype.is_float:
            bits = np.random.PCG64(0)
            bits.advance(offset + start * per)  # one 64-bit draw per uniform double
            data[name] = np.random.Generator(bits).uniform(-1, 1, size=shape).astype(np.float32)
            offset += DEFAULT_SAMPLES * per
        else:
            data[name] = np.zeros(shape, dtype=t.dtype.numpy)
    return data


@dataclass(frozen=True)
class Quantize:
    weight_dtype: str = "int8"

    def run(self, graph, ctx):
        dt = QUANT_DTYPES[self.weight_dtype]
        g = graph.copy()
        _strip_output_softmax(g)
        _refuse_float_only(g)
        data = ctx.calibration
        if data is None:
            ctx.warn(f"no --calibration data: activation scales are calibrated on {DEFAULT_CALIBRATION}; "
                     f"pass real inputs for better accuracy")
        exps = calibrate(g, data)
        spikes = set(g.meta.get("spike_inputs", ()))
        exps.update({name: 0 for name in spikes})
        per_channel = ctx.granularity == "channel"
        q = _Quantizer(g, dt, exps, per_channel)
        for i, n in enumerate(list(g.nodes)):
            progress.report(f"quantize-{self.weight_dtype}", f"layer {i + 1}/{len(g.nodes)} {n.name}")
            q.node(n)
        prod = g.producers()
        for name in g.activation_tensors():
            t = g.types[name]
            p = prod.get(name)
            if name in spikes or (p is not None and OPS[p.op].layout and g.types[p.inputs[0]].dtype == B1):
                g.types[name] = TensorType(B1, t.shape, 0)  # spikes, or spikes moved by a layout op
            elif t.dtype.is_float:
                g.types[name] = TensorType(I8, t.shape, q.exps[name])
        g.meta.update(quant=self.weight_dtype, granularity=ctx.granularity,
                      input_exp=g.types[g.inputs[0]].exp,  # of the first input (each input's type has its exp)
                      output_exps=[g.types[o].exp for o in g.outputs])
        return g.prune()


FLOAT_ONLY_WHY = {
    "softmax": "softmax is only supported as the last op",
    "batchnorm": "batchnorm must be folded first (run fold-batchnorm)",
    "lrn": "LRN divides by a power of a data-dependent sum of squares; it has no exact int8 form "
           "(the float interpreter runs it)",
    "instance_norm": "InstanceNormalization divides by a data-dependent standard deviation; it has no exact "
                     "int8 form (the float interpreter runs it)",
}


def _refuse_float_only(g):
    """One error naming every node whose op has no integer form, grouped by the reason."""
    bad = {}
    for n in g.nodes:
        d = OPS[n.op]
        if d.int_fn is None and d.real is None and not d.layout:
            why = FLOAT_ONLY_WHY.get(n.op, f"{n.op} has no integer form")
            bad.setdefault(why, []).append(f"{n.op} ({n.name})")
    if bad:
        raise LbcError("cannot quantise " + "; ".join(f"{', '.join(sorted(names))}: {why}"
                                                      for why, names in sorted(bad.items())))


def _strip_output_softmax(g):
    """Remove softmaxes that produce graph outputs; the output keeps its name (the softmax input
    is renamed to it) and meta["output_softmax"] maps it to the softmax axis, which runners apply
    after dequantising."""
    prod = g.producers()
    users = g.consumers()
    for o in list(g.outputs):
        p = prod.get(o)
        if p is None or p.op != "softmax" or users.get(o):
            continue
        src = p.inputs[0]
        if src in g.inputs or src in g.outputs or len(users.get(src, [])) != 1 or src not in prod:
            continue
        g.nodes.remove(p)
        prod[src].outputs[prod[src].outputs.index(src)] = o
        g.types[o] = g.types.pop(src)
        hints = g.meta.get("exp_hints")
        if hints and src in hints:
            g.meta["exp_hints"] = {(o if k == src else k): v for k, v in hints.items()}
        g.meta.setdefault("output_softmax", {})[o] = int(p.attr("axis"))


class _Quantizer:
    def __init__(self, g, dt, exps, per_channel):
        self.g, self.dt, self.exps, self.per_channel = g, dt, exps, per_channel
        self.units = {}  # dense/conv output -> real value of one accumulator unit per output channel
        self.acc_bound = {}  # lif/li node -> bound of |its current| when that is an accumulator

    def e(self, name):
        return self.exps[name]

    # ops with no q_ method: their integer output keeps the input scale (selections and moves)
    KEEP_EXP = frozenset({"relu", "maxpool", "reshape", "transpose", "slice", "gather", "reduce_max", "global_maxpool",
                          "dilate", "expand"})

    def node(self, n):
        if all(not self.g.types[i].dtype.is_float and self.g.types[i].dtype != B1
               for i in n.inputs if not self.g.is_const(i)):
            return  # an integer data path (token ids through a reshape) or masks: not quantised (spikes are)
        if OPS[n.op].real is not None:
            self._table(n)
            return
        fn = getattr(self, "q_" + n.op, None)
        if fn is None and n.op not in self.KEEP_EXP:
            raise LbcError(f"cannot quantise {n.op} node {n.name!r}: lbc has no integer form for {n.op} yet "
                           f"(the float graph runs it; the integer targets cannot)")
        (fn or self.q_same_exp)(n)

    # ops whose output keeps the input scale
    def q_same_exp(self, n):
        self.exps[n.outputs[0]] = self.e(n.inputs[0])

    def q_pad(self, n):
        self.q_same_exp(n)
        n.attrs["qvalue"] = int(np.clip(round_half_up(n.attr("value") * 2.0**self.e(n.inputs[0])), -128, 127))

    def q_clip(self, n):
        self.q_same_exp(n)
        e = self.e(n.inputs[0])
        n.attrs["lo"] = int(np.clip(round_half_up(n.attr("min") * 2.0**e), -128, 127))
        n.attrs["hi"] = int(np.clip(round_half_up(n.attr("max") * 2.0**e), -128, 127))

    def q_leaky_relu(self, n):
        self.q_same_exp(n)
        alpha = float(n.attr("alpha"))
        m, k = choose_multiplier(abs(alpha), 128)
        if alpha < 0:  # leaky_relu's integer form has m >= 0: a negative slope is a prelu
            n.op, n.attrs = "prelu", {"axis": 1, "m": (-m,), "k": (k,)}
        else:
            n.attrs.update(m=(m,), k=(k,))

    def q_argmax(self, n):
        self.g.types[n.outputs[0]] = TensorType(I32, self.g.types[n.outputs[0]].shape)

    def _table(self, n):
        """Any pointwise function becomes the generic `table` op (see lbc.ir.ops.pointwise)."""
        ex, ey = self.e(n.inputs[0]), self.e(n.outputs[0])
        table = build_table(OPS[n.op].real, n, ex, ey)
        n.op, n.attrs = "table", {"table": table, "fn": n.op}

    def q_concat(self, n):
        ins = [self._activation(i, n) for i in n.inputs]
        n.inputs = ins
        eo = min(self.e(i) for i in ins)
        self.exps[n.outputs[0]] = eo
        n.attrs["shifts"] = tuple(self.e(i) - eo for i in ins)

    def _activation(self, name, n, ref_exp=None):
        """A constant operand of an elementwise op, quantised to i8 with its own exp (at most 8 above
        `ref_exp`, by default the output's exp)."""
        if not self.g.is_const(name):
            return name
        c = self.g.consts[name].astype(np.float64)
        ref = self.e(n.outputs[0]) if ref_exp is None else ref_exp
        e = min(activation_exp(float(np.abs(c).max(initial=0.0))), ref + 8)
        qn = self.g.fresh_name(f"{name}.q")
        self.g.add_const(qn, np.clip(round_half_up(c * 2.0**e), -128, 127), I8)
        self.g.types[qn] = self.g.types[qn].with_(exp=e)
        self.exps[qn] = e
        return qn

    def _requant(self, n, real, acc_bound, act=("none", 0.0, 0.0)):
        eo = self.e(n.outputs[0])
        real = np.atleast_1d(np.asarray(real, dtype=np.float64))
        bound = np.broadcast_to(np.atleast_1d(acc_bound), real.shape)
        mk = [choose_multiplier(r, b) for r, b in zip(real, bound)]
        if len(set(mk)) == 1:
            mk = mk[:1]
        lo, hi = -128, 127
        kind, clo, chi = act
        if kind == "relu":
            lo = 0
        elif kind == "clip":
            lo = int(np.clip(round_half_up(clo * 2.0**eo), -128, 127))
            hi = int(np.clip(round_half_up(chi * 2.0**eo), -128, 127))
        n.attrs.update(m=tuple(m for m, _ in mk), k=tuple(k for _, k in mk), lo=lo, hi=hi)

    def _layer(self, n, axis_len):
        g = self.g
        ex, ey = self.e(n.inputs[0]), self.e(n.outputs[0])
        w = g.consts[n.inputs[1]]
        wq, s = quantize_weights(w, self.dt, self.per_channel)
        sx = 2.0**-ex
        wn = g.fresh_name(f"{n.inputs[1]}.q")
        g.add_const(wn, wq, self.dt)
        self.units[n.outputs[0]] = sx * s
        ins = [n.inputs[0], wn]
        bound = np.abs(wq.reshape(wq.shape[0], -1).astype(np.int64)).sum(axis=1) * 128
        if len(n.inputs) > 2:
            b = g.consts[n.inputs[2]].astype(np.float64)
            bq = np.clip(round_half_up(b / (sx * s)), -(2**30), 2**30).astype(np.int64)
            bn = g.fresh_name(f"{n.inputs[2]}.q")
            g.add_const(bn, bq, I32)
            ins.append(bn)
            bound = bound + np.abs(bq)
        n.inputs = ins
        real = sx * s / 2.0**-ey
        if not self.per_channel:
            real, bound = real[:1], bound.max(keepdims=True)
        self._requant(n, real, bound, (n.attr("act"), n.attr("clip_lo"), n.attr("clip_hi")))

    def q_dense(self, n):
        self._layer(n, -1)

    def q_conv2d(self, n):
        self._layer(n, 1)

    def q_avgpool(self, n):
        k = n.attr("kernel")
        if not n.attr("count_include_pad") and any(n.attr("pads")):
            raise LbcError(f"avgpool {n.name!r}: padding excluded from the count (count_include_pad=0) cannot be "
                           f"quantised; re-export with count_include_pad=1 or without padding")
        cnt = k[0] * k[1]
        self._requant(n, 2.0**-self.e(n.inputs[0]) / cnt / 2.0**-self.e(n.outputs[0]), 128 * cnt)

    def q_global_avgpool(self, n):
        cnt = int(np.prod(self.g.types[n.inputs[0]].shape[2:]))
        self._requant(n, 2.0**-self.e(n.inputs[0]) / cnt / 2.0**-self.e(n.outputs[0]), 128 * cnt)

    # ---------------------------------------------------------------- spiking neurons (ir/ops/spiking.py)

    def _current_unit(self, n):
        """The real value of one unit of the current input of a lif/li node, per neuron. A dense or
        convolution feeding only this node keeps its i32 accumulator (no requantisation)."""
        g, x = self.g, n.inputs[0]
        p = g.producers().get(x)
        size = g.types[n.outputs[0]].size
        if p is not None and p.op in ("dense", "conv2d") and len(g.consumers().get(x, [])) == 1 \
                and x not in g.outputs and x in self.units:
            p.attrs.update(m=(1,), k=(0,), lo=-(2**31), hi=2**31 - 1)
            g.types[x] = TensorType(I32, g.types[x].shape)
            w = np.abs(g.consts[p.inputs[1]].astype(np.int64)).reshape(len(self.units[x]), -1).sum(axis=1)
            b = np.abs(g.consts[p.inputs[2]].astype(np.int64)) if len(p.inputs) > 2 else 0
            self.acc_bound[n.name] = int((w * (1 if g.types[p.inputs[0]].dtype == B1 else 128) + b).max())
            unit = self.units[x]
            per = size // unit.size
            return np.repeat(unit, per) if p.op == "conv2d" else np.tile(unit, per)
        return np.full(size, 2.0**-self.e(x))

    def _neuron(self, n):
        """Integer decay, leak constant and state of a lif/li node; returns v's unit per neuron."""
        g = self.g
        size = g.types[n.outputs[0]].size
        vec = lambda k: np.broadcast_to(np.asarray(n.attr(k), dtype=np.float64), (size,))
        beta, gain = vec("beta"), vec("gain")
        bad = []
        if np.any(beta < 0) or np.any(beta > 1):
            bad.append("beta outside [0, 1] (an unstable or oscillating neuron)")
        if np.any(gain <= 0):
            bad.append("a gain (R * dt / tau) that is not positive")
        if bad:
            raise LbcError(f"{n.op} {n.name!r} cannot be quantised: {'; '.join(bad)}")
        unit = gain * self._current_unit(n)
        s = 16
        d = round_half_up((1 - beta) * 2.0**s).astype(np.int64)
        while s > 0 and np.all(d % 2 == 0):
            d, s = d // 2, s - 1
        c = round_half_up((1 - beta) * vec("v_leak") / unit).astype(np.int64)
        n.attrs.update(d=tuple(int(v) for v in d), s=int(s), c=tuple(int(v) for v in c))
        state = n.inputs[1]
        init = round_half_up(np.asarray(g.states[state].init, dtype=np.float64).reshape(-1) / unit)
        self._ints(n, {"initial state": init, "leak constant": c})
        t = g.types[state]
        g.types[state] = g.types[n.outputs[1]] = TensorType(I32, t.shape)
        g.add_state(state, g.types[state], init.reshape(t.shape[1:]), g.states[state].next)
        return unit

    @staticmethod
    def _ints(n, named):
        big = [k for k, v in named.items() if np.abs(np.asarray(v)).max(initial=0) >= U_LIMIT]
        if big:
            raise LbcError(f"{n.op} {n.name!r}: {', '.join(big)} beyond the membrane range +-2**30 in the "
                           f"membrane's integer unit (weights far smaller than the threshold?)")

    def q_lif(self, n):
        unit = self._neuron(n)
        size = unit.size
        vec = lambda k: np.broadcast_to(np.asarray(n.attr(k), dtype=np.float64), (size,))
        thr = np.floor(vec("threshold") / unit).astype(np.int64)  # integer u > thr  <=>  real u > threshold
        vr = thr if n.attr("reset") == "subtract" else round_half_up(vec("v_reset") / unit).astype(np.int64)
        self._ints(n, {"threshold": thr, "reset value": vr})
        n.attrs.update(thr=tuple(int(v) for v in thr), vr=tuple(int(v) for v in vr))
        self.g.types[n.outputs[0]] = TensorType(B1, self.g.types[n.outputs[0]].shape, 0)
        self.exps[n.outputs[0]] = 0

    def q_li(self, n):
        unit = self._neuron(n)
        ey = self.e(n.outputs[0])
        bound = state_bound(n, self.acc_bound.get(n.name, 128)) or U_LIMIT
        mk = [choose_multiplier(r, min(bound, U_LIMIT)) for r in unit / 2.0**-ey]
        if len(set(mk)) == 1:
            mk = mk[:1]
        n.attrs.update(m=tuple(m for m, _ in mk), k=tuple(k for _, k in mk), lo=-128, hi=127)

    def q_threshold(self, n):
        e = self.e(n.inputs[0])
        size = self.g.types[n.inputs[0]].size
        thr = np.floor(np.broadcast_to(np.asarray(n.attr("threshold"), dtype=np.float64), (size,)) * 2.0**e)
        n.attrs["thr"] = tuple(int(v) for v in np.clip(thr, -129, 127))  # integer q > thr  <=>  real x > threshold
        self.g.types[n.outputs[0]] = TensorType(B1, self.g.types[n.outputs[0]].shape, 0)
        self.exps[n.outputs[0]] = 0

    def _pow2_requant(self, n, j, bound):
        """Requantisation by exactly 2**j (m = 2**j or k = -j), refused when bound * m + round does
        not fit 31 bits."""
        m, k = (1 << j, 0) if j >= 0 else (1, -j)
        if bound * m + (1 << (k - 1) if k else 0) >= 2**31:
            raise LbcError(f"{n.op} {n.name!r}: its operand and output scales are 2^{abs(j)} apart; the "
                           f"accumulator (up to {bound}) cannot be rescaled exactly in 32 bits")
        n.attrs.update(m=(m,), k=(k,), lo=-128, hi=127)

    def q_resize(self, n):
        if n.attr("mode") != "nearest":
            raise LbcError(f"cannot quantise resize node {n.name!r}: only nearest resizing has an integer form")
        self.q_same_exp(n)

    def _reduce_sum(self, n, count_divides):
        cnt = int(np.prod([self.g.types[n.inputs[0]].shape[a] for a in n.attr("axes")]))
        real = 2.0**-self.e(n.inputs[0]) / (cnt if count_divides else 1) / 2.0**-self.e(n.outputs[0])
        self._requant(n, real, 128 * cnt)

    def q_reduce_sum(self, n):
        self._reduce_sum(n, False)

    def q_reduce_mean(self, n):
        self._reduce_sum(n, True)

    def q_matmul(self, n):
        n.inputs = [self._activation(i, n) for i in n.inputs]
        ea, eb = self.e(n.inputs[0]), self.e(n.inputs[1])
        k = self.g.types[n.inputs[0]].shape[-1]
        self._requant(n, 2.0**(self.e(n.outputs[0]) - ea - eb), 128 * 128 * k)

    def q_fake_quant(self, n):
        """A Q/DQ pair on lbc's own grid (scale 2**-exp, zero point 0, int8 range) is what the integer
        graph does anyway: the pair disappears. Other Q/DQ pairs have no integer form."""
        e = self.e(n.inputs[0])
        if (n.attr("scale") != (2.0**-e,) or n.attr("zero_point") != (0.0,) or
                (n.attr("qmin"), n.attr("qmax")) != (-128, 127)):
            raise LbcError(f"cannot quantise the QuantizeLinear/DequantizeLinear pair {n.name!r}: lbc implements "
                           f"pairs with one power-of-two scale, zero point 0 and int8 values")
        self.exps[n.outputs[0]] = e
        for m in self.g.nodes:
            m.inputs = [n.inputs[0] if i == n.outputs[0] else i for i in m.inputs]
        self.g.outputs = [n.inputs[0] if o == n.outputs[0] else o for o in self.g.outputs]

    def q_add(self, n):
        n.inputs = [self._activation(i, n) for i in n.inputs]
        self._aligned(n, n.inputs[0], n.inputs[1], lambda a, b: a + b)

    def q_mul(self, n):
        n.inputs = [self._activation(i, n) for i in n.inputs]
        ea, eb = self.e(n.inputs[0]), self.e(n.inputs[1])
        self._pow2_requant(n, self.e(n.outputs[0]) - ea - eb, 128 * 128)

    def _aligned(self, n, a, b, combine):
        """Shifts sa, sb that bring operands a, b (node inputs) to their larger exp, and the exact
        requantisation from that exp to the output's; combine(bound_a, bound_b) bounds the accumulator."""
        ea, eb = self.e(a), self.e(b)
        big = max(ea, eb)
        sa, sb = big - ea, big - eb
        n.attrs.update(sa=sa, sb=sb)
        self._pow2_requant(n, self.e(n.outputs[0]) - big, combine(128 << sa, 128 << sb))

    def _minmax(self, n):
        n.inputs = [self._activation(i, n) for i in n.inputs]
        self._aligned(n, n.inputs[0], n.inputs[1], max)

    q_max = q_min = _minmax

    def q_prelu(self, n):
        self.q_same_exp(n)
        x, slope = self.g.types[n.inputs[0]], self.g.consts[n.inputs[1]].astype(np.float64)
        full = np.broadcast_to(slope.reshape((1,) * (len(x.shape) - slope.ndim) + slope.shape), x.shape)
        varying = [ax for ax in range(1, len(x.shape)) if np.ptp(full, axis=ax).max(initial=0) > 0]
        if len(varying) > 1:
            raise LbcError(f"prelu {n.name!r}: the slope varies along axes {varying}; the integer form takes one "
                           f"slope per channel along one axis")
        axis = varying[0] if varying else 1
        idx = [0] * len(x.shape)
        if varying:
            idx[axis] = slice(None)
        per = np.atleast_1d(full[tuple(idx)])
        mk = [choose_multiplier(abs(float(v)), 128) for v in per]
        n.attrs.update(axis=axis, m=tuple(m if v >= 0 else -m for (m, _), v in zip(mk, per)),
                       k=tuple(k for _, k in mk))
        n.inputs = n.inputs[:1]  # the slope lives on in m, k

    def _compare(self, n):
        a, b = n.inputs
        if self.g.is_const(a):
            a = self._activation(a, n, self.e(b))
        if self.g.is_const(b):
            b = self._activation(b, n, self.e(a))
        n.inputs = [a, b]
        ea, eb = self.e(a), self.e(b)
        n.attrs.update(sa=max(ea, eb) - ea, sb=max(ea, eb) - eb)

    q_equal = q_less = q_greater = q_greater_equal = q_less_equal = _compare

    def _mask_only(self, n):
        """not/and/or: bool in, bool out; nothing to quantise."""

    q_not = q_and = q_or = _mask_only

    def q_where(self, n):
        cond, a, b = n.inputs
        n.inputs = [cond, self._activation(a, n), self._activation(b, n)]
        self._aligned(n, n.inputs[1], n.inputs[2], max)
