"""quantize-ternary: ternary weights, int8 activations. The rule is in `lbc.passes.quantize`."""

from dataclasses import dataclass

from lbc.passes.quantize import Quantize


@dataclass(frozen=True)
class QuantizeTernary(Quantize):
    weight_dtype: str = "ternary"


PASS = QuantizeTernary
