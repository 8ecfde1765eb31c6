"""analyze-sparsity: record, per weighted layer, the fraction of zero weights in meta["sparsity"].

Expects any graph. Changes nothing else; backends use the figures to report what zeros save."""

from dataclasses import dataclass

import numpy as np

from lbc.ir.ops import OPS


@dataclass(frozen=True)
class AnalyzeSparsity:
    def run(self, graph, ctx):
        g = graph.copy()
        stats = {}
        for n in g.nodes:
            if 1 in OPS[n.op].weights and len(n.inputs) > 1:
                w = g.consts[n.inputs[1]]
                stats[n.name] = {"weights": int(w.size), "zeros": int(np.count_nonzero(w == 0)),
                                 "zero_fraction": round(float(np.mean(w == 0)), 6)}
        g.meta["sparsity"] = stats
        return g


PASS = AnalyzeSparsity
