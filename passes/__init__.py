"""Graph passes. One file per pass; the pass name is the file stem in kebab-case.

A pass is a frozen dataclass whose fields are its options, with `run(graph, ctx) -> graph`. Passes
never modify constants in place (they are read-only arrays) and return the graph they produced.
"""

import importlib
from dataclasses import dataclass, field

import numpy as np

from lbc.errors import LbcError

PASS_MODULES = ["fold_constants", "fold_batchnorm", "fuse_activation", "quantize_int8", "quantize_int4",
                "quantize_int2", "quantize_ternary", "quantize_pentary", "analyze_sparsity", "plan_memory"]


@dataclass
class PassContext:
    """What passes may consult besides the graph: calibration inputs, options, and a warning sink."""
    calibration: dict | None = None  # input name -> float (or integer) batch
    granularity: str = "channel"  # weight scales per output channel or per tensor
    warnings: list = field(default_factory=list)
    target: object = None

    def warn(self, msg):
        self.warnings.append(msg)


def pass_name(module_stem):
    return module_stem.replace("_", "-")


def all_passes():
    """name -> pass class, in the canonical order."""
    out = {}
    for stem in PASS_MODULES:
        mod = importlib.import_module(f"lbc.passes.{stem}")
        out[pass_name(stem)] = mod.PASS
    return out


def get_pass(name):
    passes = all_passes()
    if name not in passes:
        raise LbcError(f"unknown pass {name!r}; known passes: {', '.join(passes)}")
    return passes[name]()


def run_pipeline(graph, names, ctx, dump_after=None, verify=False, on_dump=None):
    """Run the named passes in order. `dump_after` names a pass after which `on_dump(name, graph)`
    is called; `verify` runs the IR verifier after every pass."""
    from lbc.ir.verify import verify as verify_graph
    if verify:
        verify_graph(graph)
    from lbc import progress
    for name in names:
        progress.report(name)
        graph = get_pass(name).run(graph, ctx)
        if verify:
            verify_graph(graph)
        if on_dump and dump_after in (name, "all"):
            on_dump(name, graph)
    return graph
