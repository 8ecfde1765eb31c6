"""ONNX's linear quantisation as real ops of the float graph (QuantizeLinear, DequantizeLinear, and
a Q/DQ pair as one fake-quantise op):

  quantize_linear:   q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)
  dequantize_linear: y = (q - zero_point) * scale
  fake_quant:        dequantize_linear(quantize_linear(x))

`scale`/`zero_point` hold one value or one per channel of `axis`. The quantize pass removes a
fake_quant whose scale is 2**-exp with zero point 0 and range int8 - lbc's own activation grid - and
refuses the others."""

import numpy as np

from lbc.ir.ops.base import as_f32, same_infer, op

QP = {"scale": (1.0,), "zero_point": (0.0,), "axis": 1, "qmin": -128, "qmax": 127}


def _params(node, ndim):
    s = np.asarray(node.attr("scale"), dtype=np.float64)
    z = np.asarray(node.attr("zero_point"), dtype=np.float64)
    if s.size > 1:
        shape = [1] * ndim
        shape[node.attr("axis")] = s.size
        s, z = s.reshape(shape), z.reshape(shape)
    return s, z


def quantize(node, x):
    s, z = _params(node, x.ndim)
    # x / s in float32, as ONNX computes it (the reference divides float32 by float32)
    v = (x.astype(np.float32) / s.astype(np.float32)).astype(np.float64)
    return np.clip(np.rint(v) + z, node.attr("qmin"), node.attr("qmax"))


@op("quantize_linear", (1, 1), QP, doc="ONNX QuantizeLinear (round half to even, saturate)")
class QuantizeLinear:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        dt = np.uint8 if node.attr("qmin") == 0 else np.int8
        return [quantize(node, a[0]).astype(dt)]

    int_fn = float_fn


@op("dequantize_linear", (1, 1), QP, doc="ONNX DequantizeLinear")
class DequantizeLinear:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        s, z = _params(node, a[0].ndim)
        return [as_f32((a[0].astype(np.float64) - z) * s.astype(np.float32))]


@op("fake_quant", (1, 1), QP, doc="a Q/DQ pair: (quantize_linear(x) - zero_point) * scale")
class FakeQuant:
    infer = staticmethod(same_infer)

    @staticmethod
    def float_fn(node, a):
        s, z = _params(node, a[0].ndim)
        return [as_f32((quantize(node, a[0]) - z) * s.astype(np.float32))]
