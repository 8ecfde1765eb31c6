"""quantize-int4: int4 weights, int8 activations. The rule is in `lbc.passes.quantize`."""

from dataclasses import dataclass

from lbc.passes.quantize import Quantize


@dataclass(frozen=True)
class QuantizeInt4(Quantize):
    weight_dtype: str = "int4"


PASS = QuantizeInt4
