"""quantize-pentary: pentary weights, int8 activations. The rule is in `lbc.passes.quantize`."""

from dataclasses import dataclass

from lbc.passes.quantize import Quantize


@dataclass(frozen=True)
class QuantizePentary(Quantize):
    weight_dtype: str = "pentary"


PASS = QuantizePentary
