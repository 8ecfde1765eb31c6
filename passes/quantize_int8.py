"""quantize-int8: int8 weights, int8 activations. The rule is in `lbc.passes.quantize`."""

from dataclasses import dataclass

from lbc.passes.quantize import Quantize


@dataclass(frozen=True)
class QuantizeInt8(Quantize):
    weight_dtype: str = "int8"


PASS = QuantizeInt8
