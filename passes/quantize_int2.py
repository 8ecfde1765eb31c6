"""quantize-int2: int2 weights, int8 activations. The rule is in `lbc.passes.quantize`."""

from dataclasses import dataclass

from lbc.passes.quantize import Quantize


@dataclass(frozen=True)
class QuantizeInt2(Quantize):
    weight_dtype: str = "int2"


PASS = QuantizeInt2
