"""How much accuracy quantisation costs, layer by layer: the SQNR of every integer layer's output
against the float graph on the same data, and the advice `lbc verify` gives when the compiled model
loses more than a little accuracy."""

import numpy as np

SQNR_MAX_DB = 99.9  # reported for a layer whose dequantised output equals the float one
SQNR_SAMPLES = 256  # calibration samples used for the per-layer figures
DROP_POINTS = 2.0  # verify explains an accuracy drop larger than this (percentage points)


def sqnr_db(ref, approx):
    """10 log10(signal power / noise power) of `approx` against `ref` (None when the signal is 0)."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(approx, np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if signal == 0.0:
        return None
    if noise == 0.0:
        return SQNR_MAX_DB
    return round(min(10.0 * np.log10(signal / noise), SQNR_MAX_DB), 1)


def layer_sqnr(float_graph, int_graph, x, specs):
    """{node name: SQNR in dB of its dequantised int8 output against the float graph's tensor of the same
    name, or None where there is no such tensor (or the output is an index)}, on inputs x (dict name ->
    float batch; at most SQNR_SAMPLES are used)."""
    from lbc.driver import quantize_inputs
    from lbc.ir.interpreter import run as interpret
    x = {k: np.asarray(v)[:SQNR_SAMPLES] for k, v in x.items()}
    fenv = interpret(float_graph, x if len(x) > 1 else next(iter(x.values())), return_all=True)
    qx = quantize_inputs(x, specs)
    qenv = interpret(int_graph, qx if len(qx) > 1 else next(iter(qx.values())), return_all=True)
    out = {}
    for n in int_graph.nodes:
        o = n.outputs[0]
        t = int_graph.types[o]
        if o not in fenv or t.exp is None or t.dtype.name == "i32" or np.shape(fenv[o]) != np.shape(qenv[o]):
            out[n.name] = None
            continue
        out[n.name] = sqnr_db(fenv[o], np.asarray(qenv[o], np.float64) * 2.0 ** -t.exp)
    return out


def worst_layers(sqnr, n=3):
    """The n layers with the lowest SQNR: [(name, dB)]."""
    return sorted(((k, v) for k, v in sqnr.items() if v is not None), key=lambda kv: kv[1])[:n]


def qat_recipe(graph, quant, target):
    """A short lbc.qat snippet for this model's dense/conv layers (see lbc/qat.py)."""
    layers = []
    for n in graph.nodes:
        if n.op == "dense":
            w = graph.consts[n.inputs[1]]
            layers.append(f"QuantLinear({w.shape[1]}, {w.shape[0]}, weight=\"{quant}\")")
        elif n.op == "conv2d":
            w = graph.consts[n.inputs[1]]
            layers.append(f"QuantConv2d({w.shape[1]}, {w.shape[0]}, {w.shape[2]}, weight=\"{quant}\")")
    body = ", torch.nn.ReLU(), QuantAct(),\n        ".join(layers) if layers else "..."
    return "\n".join([
        "import torch, lbc",
        "from lbc.qat import QuantLinear, QuantConv2d, QuantAct, freeze, fit",
        "model = torch.nn.Sequential(QuantAct(),",
        f"        {body}, QuantAct())   # your architecture, with lbc's quantised layers",
        "fit(model, x_train, y_train, epochs=30, lr=1e-3)   # trains through the exact integer rounding",
        "freeze(model, x_train[:2])",
        f"lbc.compile(model, x_train[:1], target=\"{target}\", quant=\"{quant}\")",
    ])
