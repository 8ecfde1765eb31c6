"""Element types of the IR. A dtype is a value set; how values are packed into bytes is a target's
choice (see each backend's packing notes)."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str
    lo: int | None  # smallest value (None for float)
    hi: int | None
    bits: float  # information bits per value (log2 of the value-set size) - for size reports

    @property
    def is_float(self):
        return self.lo is None

    @property
    def numpy(self):
        """The numpy dtype used to hold values of this type in the interpreter."""
        if self.is_float:
            return np.float32
        if self.name == "bool":
            return np.bool_
        if self.name == "i32":
            return np.int32
        if self.name == "i16":
            return np.int16
        if self.name == "u8":
            return np.uint8
        return np.int8

    def levels(self):
        return self.hi - self.lo + 1


F32 = DType("f32", None, None, 32)
I32 = DType("i32", -(2**31), 2**31 - 1, 32)
I16 = DType("i16", -(2**15), 2**15 - 1, 16)
I8 = DType("i8", -128, 127, 8)
B1 = DType("b1", 0, 1, 1)  # spikes: an activation that is 0 or 1 (int8 storage); a layer reading it adds weight columns
U8 = DType("u8", 0, 255, 8)  # only the output of an ONNX QuantizeLinear with a uint8 zero point
I4 = DType("i4", -8, 7, 4)
I2 = DType("i2", -2, 1, 2)
TERNARY = DType("ternary", -1, 1, float(np.log2(3)))
PENTARY = DType("pentary", -2, 2, float(np.log2(5)))
BOOL = DType("bool", 0, 1, 1)  # masks (comparisons, Not/And/Or, Where's condition); never quantised

DTYPES = {d.name: d for d in (F32, I32, I16, I8, B1, U8, I4, I2, TERNARY, PENTARY, BOOL)}

# Weight dtypes the quantize passes produce, and the names users pass as --quant.
QUANT_DTYPES = {"int8": I8, "int4": I4, "int2": I2, "ternary": TERNARY, "pentary": PENTARY}


def dtype(name):
    try:
        return DTYPES[name]
    except KeyError:
        raise KeyError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}") from None
