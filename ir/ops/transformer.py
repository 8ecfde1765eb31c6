"""Transformer ops: token embedding lookup, LayerNorm, and the int -> bool cast that starts an
attention mask.

Float semantics (this module defines them; the ONNX frontend imports into them):
- `embedding(ids, table)`: table[ids] for integer token ids of shape [1, S] and a constant float table
  [V, D] -> [1, S, D] (ONNX Gather on axis 0 of a constant table). An id outside [-V, V) is an error at
  run time, as in ONNX (never a clamped or wrapped row); a negative id counts from the end.
- `layer_norm(x, scale, bias)`: over the last axis, (x - mean) / sqrt(var + epsilon) * scale + bias with
  the biased variance mean((x - mean)^2) (ONNX LayerNormalization, axis = -1, stash_type 1), computed in
  float64 and rounded once to float32.
- `ne_zero(x)`: x != 0 for an integer tensor -> bool mask (ONNX Cast to bool); exact, so its integer
  form is the same function.
The additive attention mask that Hugging Face exports (bool chain ending in Where(mask, 0, finfo.min))
is imported by the frontend as `ne_zero` -> constant-index `gather` -> `where` (see
`lbc.frontends.onnx`); Q·Kᵀ and attention·V are the `matmul` op, softmax the `softmax` op.

Integer forms: NOT implemented yet for `embedding` and `layer_norm`. These ops have no `int_fn`, so `--quant` refuses a model that uses
them with a clear error (the quantize pass refuses ops without an integer form) instead of guessing.
"""

import numpy as np

from lbc.ir.ops.base import as_f32, op


@op("embedding", (2, 2), {}, weights=(1,),
    doc="table[ids]: integer token ids [1, S] -> rows of a constant float table [V, D] -> [1, S, D]; float only")
class Embedding:
    @staticmethod
    def infer(node, shapes, graph):
        ids, table = shapes
        if len(table) != 2:
            raise ValueError(f"embedding {node.name}: the table must be 2-d, not {tuple(table)}")
        return [tuple(ids) + (table[1],)]

    @staticmethod
    def float_fn(node, a):
        ids, table = a[0].astype(np.int64), a[1]
        v = table.shape[0]
        if np.any(ids < -v) or np.any(ids >= v):
            bad = int(ids[(ids < -v) | (ids >= v)].reshape(-1)[0])
            raise ValueError(f"embedding {node.name}: token id {bad} is outside the table's {v} rows")
        return [as_f32(table[np.where(ids < 0, ids + v, ids)])]


@op("layer_norm", (3, 3), {"epsilon": 1e-5}, weights=(1, 2),
    doc="(x - mean) / sqrt(var + epsilon) * scale + bias over the last axis (ONNX LayerNormalization); float only",
    macs=lambda node, i, o: 4 * int(np.prod(o[0][1:])))
class LayerNorm:
    @staticmethod
    def infer(node, shapes, graph):
        x, s, b = shapes
        if tuple(s) != (x[-1],) or tuple(b) != (x[-1],):
            raise ValueError(f"layer_norm {node.name}: scale and bias must have shape ({x[-1]},), "
                             f"not {tuple(s)} and {tuple(b)}")
        return [tuple(x)]

    @staticmethod
    def float_fn(node, a):
        x, s, b = (v.astype(np.float64) for v in a)
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return [as_f32((x - mu) / np.sqrt(var + node.attr("epsilon")) * s + b)]


@op("ne_zero", (1, 1), {}, doc="x != 0 for an integer tensor -> bool mask (ONNX Cast to bool)")
class NeZero:
    @staticmethod
    def infer(node, shapes, graph):
        return [tuple(shapes[0])]

    @staticmethod
    def float_fn(node, a):
        return [a[0] != 0]

    int_fn = float_fn  # its input is an integer input (never quantised): the same in both forms
