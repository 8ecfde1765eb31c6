"""Quantization-aware training for lbc (needs torch): layers that train through exactly the rule the
compiler's quantize passes apply, so the trained network compiles to firmware that reproduces it
bit for bit.

    from lbc.qat import QuantAct, QuantConv2d, QuantLinear, freeze

    model = nn.Sequential(QuantAct(),                                   # quantises the input
                          QuantLinear(64, 32, weight="ternary"), nn.ReLU(), QuantAct(),
                          QuantLinear(32, 10, weight="ternary"), QuantAct())  # quantises the logits
    ... train as usual (straight-through estimators) ...
    freeze(model, x_example)   # links each layer to the quantizers of its input and output
    model.eval()(x)            # the quantized forward pass: integer arithmetic, dequantised
    lbc.compile(model, x_example, target="rv32ec", quant="ternary")      # same outputs, bit for bit

The rule (from `lbc.passes.quantize` and `lbc.ir.quant`, called here, not re-implemented):

* weights: `quantize_weights` - per output channel scale s from the fixed grid search, integer
  weights clamp(round_half_up(w / s)) in the dtype's value set (int8, int4, int2, ternary, pentary);
* activations: int8 at a power-of-two scale 2**-exp, exp = `activation_exp(max|x|)` with max|x| a
  running (EMA) maximum seen in training; the value is clamp(floor(x * 2**exp + 1/2), -128, 127);
* bias: round_half_up(b / (2**-ex * s)) in i32; requantisation to the output exponent with
  (m, k) = `choose_multiplier(2**-ex * s / 2**-ey, bound)`: y = clamp((acc*m + 2**(k-1)) >> k).

Training mode fake-quantises weights and activations with straight-through gradients (zero outside
the clamp range for activations). Eval mode after `freeze` runs the integer network: every
QuantLinear/QuantConv2d quantises its input at the exponent of the QuantAct feeding it, accumulates
exactly (float64 holds these integers exactly), requantises with the compiler's m and k to the
exponent of the QuantAct its output reaches, and returns q * 2**-ey. Without `freeze`, eval mode is
the fake-quantised float forward. Under torch.export (what `lbc.compile` uses) the layers emit plain
float weights and each QuantAct an aten.fake_quantize_per_tensor_affine with scale 2**-exp, which the
torch frontend turns into the exponent hints the quantize pass uses instead of calibration.

What may sit between a QuantAct and the layer it feeds, or between a layer and its output QuantAct:
reshapes (view, flatten, permute), ReLU, max-pooling, dropout and identity - the ops that keep an
int8 tensor's scale. Anything else (batch norm, pooling that averages, additions) is reported by
`freeze` with the module names. Weight scales are per output channel, the compiler's default
(`--granularity channel`).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lbc.errors import LbcError
from lbc.ir.dtypes import QUANT_DTYPES
from lbc.ir.quant import choose_multiplier
from lbc.passes.quantize import activation_exp, quantize_weights, round_half_up

__all__ = ["QuantAct", "QuantLinear", "QuantConv2d", "freeze", "fit", "accuracy", "QATError"]


class QATError(LbcError):
    """A QAT model that lbc.qat cannot run as an integer network (names the modules and the fix)."""


def _exporting():
    return torch.compiler.is_exporting()


def fake_quant(x, exp):
    """int8 at scale 2**-exp (round half up), straight-through gradient inside the range."""
    scale = 2.0 ** exp
    xc = torch.clamp(x, -128.0 / scale, 127.0 / scale)
    q = torch.clamp(torch.floor(x.detach().double() * scale + 0.5), -128, 127) / scale
    return xc + (q.to(x.dtype) - xc).detach()


class QuantAct(nn.Module):
    """int8 activations at a power-of-two scale. `exp=None` calibrates the exponent from a running
    maximum of |x| in training (EMA with `momentum`); a given `exp` is kept fixed."""

    def __init__(self, exp=None, momentum=0.1):
        super().__init__()
        self.exp = None if exp is None else int(exp)
        self.fixed = exp is not None
        self.momentum = momentum
        self.register_buffer("running_max", torch.zeros(()))

    def get_extra_state(self):
        return {"exp": self.exp, "fixed": self.fixed}

    def set_extra_state(self, state):
        self.exp, self.fixed = state["exp"], state["fixed"]

    def extra_repr(self):
        return f"exp={self.exp}" + (", fixed" if self.fixed else "")

    def forward(self, x):
        if _exporting():
            if self.exp is None:
                raise QATError("a QuantAct was never calibrated; run training (or a forward in train mode) first")
            return torch.fake_quantize_per_tensor_affine(x, 2.0 ** -self.exp, 0, -128, 127)
        if self.training and not self.fixed:
            m = x.detach().abs().max().to(self.running_max.dtype)
            if self.exp is None:
                self.running_max.copy_(m)
            else:
                self.running_max.mul_(1 - self.momentum).add_(self.momentum * m)
            self.exp = activation_exp(float(self.running_max))
        if self.exp is None:
            raise QATError("a QuantAct is used in eval mode before any training forward set its exponent")
        return fake_quant(x, self.exp)


class _QuantLayer:
    """Shared by QuantLinear and QuantConv2d: weight fake-quantisation and the integer forward."""

    def _init_quant(self, weight):
        if weight not in QUANT_DTYPES:
            raise QATError(f"unknown weight quantisation {weight!r}; valid: {', '.join(QUANT_DTYPES)}")
        self.quant = weight
        self._links = {}  # "in"/"out": the QuantActs of the input and the output, set by freeze
        self._frozen = False

    def quantized_weight(self):
        """(integer weights, per-channel scales) exactly as the quantize pass derives them."""
        return quantize_weights(self.weight.detach().cpu().numpy(), QUANT_DTYPES[self.quant], per_channel=True)

    def _fq_weight(self):
        wq, s = self.quantized_weight()
        shape = (-1,) + (1,) * (self.weight.ndim - 1)
        w = torch.from_numpy(wq.astype(np.float64) * s.reshape(shape)).to(self.weight.dtype)
        return self.weight + (w - self.weight).detach()

    def integer_params(self, ex, ey):
        """(wq, bq, m, k) for input exponent ex and output exponent ey: the quantize pass's numbers."""
        wq, s = self.quantized_weight()
        sx = 2.0 ** -ex
        bound = np.abs(wq.reshape(wq.shape[0], -1).astype(np.int64)).sum(axis=1) * 128
        bq = None
        if self.bias is not None:
            b = self.bias.detach().cpu().numpy().astype(np.float64)
            bq = np.clip(round_half_up(b / (sx * s)), -(2**30), 2**30).astype(np.int64)
            bound = bound + np.abs(bq)
        real = sx * s / 2.0 ** -ey
        mk = [choose_multiplier(r, bd) for r, bd in zip(real, bound)]
        m = np.array([v[0] for v in mk], dtype=np.float64)
        k = np.array([v[1] for v in mk], dtype=np.float64)
        return wq, bq, m, k

    def _forward(self, x, op):
        if _exporting():
            return op(x, self.weight, self.bias)
        if self.training or not self._frozen:
            return op(x, self._fq_weight(), self.bias)
        ex, ey = self._links["in"].exp, self._links["out"].exp
        wq, bq, m, k = self.integer_params(ex, ey)
        xq = torch.floor(x.detach().double() * 2.0 ** ex + 0.5)  # x is on the 2**-ex grid already
        acc = op(xq, torch.from_numpy(wq.astype(np.float64)), None if bq is None else torch.from_numpy(bq.astype(np.float64)))
        shape = (1, -1) + (1,) * (acc.ndim - 2)
        mt, kt = torch.from_numpy(m).reshape(shape), torch.from_numpy(k).reshape(shape)
        r = torch.where(kt > 0, 2.0 ** (kt - 1), torch.zeros_like(kt))
        y = torch.clamp(torch.floor((acc * mt + r) / 2.0 ** kt), -128, 127)
        return (y * 2.0 ** -ey).to(x.dtype)


class QuantLinear(_QuantLayer, nn.Linear):
    """nn.Linear with weights quantised to `weight` (int8, int4, int2, ternary, pentary)."""

    def __init__(self, in_features, out_features, bias=True, weight="int4"):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_quant(weight)

    def extra_repr(self):
        return super().extra_repr() + f", weight={self.quant}"

    def forward(self, x):
        return self._forward(x, F.linear)


class QuantConv2d(_QuantLayer, nn.Conv2d):
    """nn.Conv2d (zero padding) with weights quantised to `weight`."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 weight="int4"):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise QATError("QuantConv2d supports numeric zero padding only")
        self._init_quant(weight)

    def extra_repr(self):
        return super().extra_repr() + f", weight={self.quant}"

    def forward(self, x):
        return self._forward(x, lambda a, w, b: F.conv2d(a, w, b, self.stride, self.padding, self.dilation, self.groups))


# ------------------------------------------------------------------------------------------ freeze

# Autograd nodes of ops that keep an int8 tensor's scale (and commute with requantisation).
_KEEP_SCALE = {"ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "ReluBackward0",
               "MaxPool2DWithIndicesBackward0", "CloneBackward0", "PermuteBackward0", "TransposeBackward0",
               "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2", "UnsqueezeBackward0", "AliasBackward0",
               "TBackward0"}


def freeze(model, example_input):
    """Link every QuantLinear/QuantConv2d to the QuantAct that quantises its input and the one its
    output reaches, by tracing one forward pass (eval mode) through autograd. After this, eval mode
    runs the integer network. Raises QATError listing every module the integer forward cannot
    handle. Returns the model (left in eval mode)."""
    names = {m: n or type(model).__name__ for n, m in model.named_modules()}
    layers = [m for m in model.modules() if isinstance(m, _QuantLayer)]
    acts = [m for m in model.modules() if isinstance(m, QuantAct)]
    for m in layers:
        m._links, m._frozen = {}, False
    for a in acts:
        if a.exp is None:
            raise QATError(f"QuantAct {names[a]} has no exponent yet: train the model (or run it in train mode on "
                           f"some inputs) before freeze")
    produced = {}  # autograd node -> the QuantAct or layer whose output it is
    problems = []
    x = torch.as_tensor(np.asarray(example_input, dtype=np.float32)) if not isinstance(example_input, torch.Tensor) \
        else example_input.detach().float().clone()
    x.requires_grad_(True)

    def source(t):
        """(kind, module, path) for the producer of t, stepping over scale-keeping ops."""
        fn, path = t.grad_fn, []
        while True:
            if fn is None or (type(fn).__name__ == "AccumulateGrad" and fn.variable is x):
                return ("input", None, path) if (fn is not None or t is x) else ("other", None, path)
            if fn in produced:
                mod = produced[fn]
                return ("act" if isinstance(mod, QuantAct) else "layer", mod, path)
            name = type(fn).__name__
            if name not in _KEEP_SCALE:
                return ("other", name, path)
            path.append(name.replace("Backward0", "").replace("Backward1", ""))
            nxt = [f for f, _ in fn.next_functions if f is not None]
            if len(nxt) != 1:
                return ("other", name, path)
            fn = nxt[0]

    def act_pre(mod, inputs):
        kind, src, path = source(inputs[0])
        if kind == "layer":
            if "out" in src._links and src._links["out"] is not mod:
                problems.append(f"the output of {names[src]} reaches two QuantActs ({names[src._links['out']]} and "
                                f"{names[mod]}); one tensor has one scale")
            src._links["out"] = mod
        elif kind == "act":
            problems.append(f"QuantAct {names[mod]} re-quantises the output of QuantAct {names[src]}; remove one")
        elif kind == "other":
            problems.append(f"QuantAct {names[mod]} quantises the result of {src or 'a computed tensor'}: lbc.qat "
                            f"quantizers must follow the model input or a QuantLinear/QuantConv2d (through reshapes, "
                            f"ReLU and max-pooling only)")

    def act_post(mod, inputs, out):
        produced[out.grad_fn] = mod

    def layer_pre(mod, inputs):
        kind, src, path = source(inputs[0])
        if kind == "act":
            mod._links["in"] = src
        else:
            what = {"input": "the raw model input", "layer": f"{names.get(src, '?')} without a QuantAct between"}.get(
                kind, f"{src or 'a computed tensor'}")
            problems.append(f"the input of {names[mod]} comes from {what}; put a QuantAct in front of it "
                            f"(only reshapes, ReLU and max-pooling may separate them)")

    def layer_post(mod, inputs, out):
        produced[out.grad_fn] = mod

    hooks = []
    for a in acts:
        hooks += [a.register_forward_pre_hook(act_pre), a.register_forward_hook(act_post)]
    for m in layers:
        hooks += [m.register_forward_pre_hook(layer_pre), m.register_forward_hook(layer_post)]
    model.eval()
    try:
        with torch.enable_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    for m in layers:
        if "in" in m._links and "out" not in m._links:
            problems.append(f"the output of {names[m]} is not quantised: add a QuantAct after it (after its ReLU/pool)")
    if problems:
        for m in layers:
            m._links = {}
        raise QATError("lbc.qat cannot run this model as an integer network", details=problems)
    for m in layers:
        m._frozen = "in" in m._links
    return model


def fit(model, x, y, epochs, lr, batch=32, seed=0):
    """Train a classifier (float or QAT) with Adam, cosine-annealed learning rate and cross-entropy.

    Deterministic for a given seed (single-threaded torch). `x`, `y` are numpy arrays. Returns the
    model in eval mode; call `freeze` on a QAT model afterwards."""
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def accuracy(model, x, y):
    """Top-1 accuracy of `model` on numpy inputs and labels."""
    with torch.no_grad():
        return float(np.mean(model(torch.from_numpy(x)).argmax(1).numpy() == y))
