"""The Python API: `lbc.compile(model, example_input=None, target=..., quant=...)`.

`model` is a path (.onnx, .pt2, .keras), an lbc Graph, or a torch.nn.Module (then `example_input`,
a tensor or array of the input shape with the batch first, is required; the module is exported with
torch.export). Returns an `Artifact`: the output folder, the compile report, the integer graph, and
`run(x)` to execute the built firmware (in the target's emulator) on a batch. A model with several
inputs takes dicts by input name for `calibration` and `run`; several outputs come back as a dict.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lbc.errors import LbcError, LbcWarning


@dataclass
class Artifact:
    outdir: Path
    report: dict
    graph: object  # the integer IR graph
    float_graph: object
    target: str
    quant: str
    warnings: list

    def run(self, x, raw=False):
        """Outputs of the compiled firmware for a batch: `x` is an array (one-input model) or a dict
        input name -> array (float inputs as floats, integer inputs such as token ids as integers).
        Returns an array for a one-output model, else a dict output name -> array (dequantised
        unless raw=True)."""
        from lbc.driver import run_compiled
        y, yq, _ = run_compiled(self.outdir, x, raw=raw)
        return yq if raw else y

    def run_with_stats(self, x):
        """(float outputs, integer outputs, emulator statistics such as cycles)."""
        from lbc.driver import run_compiled
        return run_compiled(self.outdir, x)

    @property
    def input_exp(self):
        """The first input's exp (None for an integer input); see `io` for every input."""
        return self.graph.types[self.graph.inputs[0]].exp

    @property
    def io(self):
        """{"inputs": [...], "outputs": [...]}: name, shape, dtype and exp of each, as in lbc.json."""
        from lbc.driver import io_specs
        return {"inputs": io_specs(self.graph, self.graph.inputs), "outputs": io_specs(self.graph, self.graph.outputs)}


def _array(x):
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def to_graph(model, example_input=None, input_shape=None):
    """The float lbc graph of a path, Graph or torch module (torch is imported only for modules)."""
    from lbc.ir.graph import Graph
    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, Path)):
        from lbc.frontends import load_model
        return load_model(model, input_shape)
    mod = type(model).__module__ or ""
    if mod.startswith("torch") or any(c.__module__.startswith("torch.nn") for c in type(model).__mro__):
        from lbc.frontends.torch import from_module
        return from_module(model, example_input)
    raise LbcError(f"cannot compile a {type(model).__name__}: pass a model file path (.onnx, .pt2, .keras), "
                   f"a torch.nn.Module with an example input, or an lbc Graph")


def compile(model, example_input=None, target="host", quant=None, out=None, calibration=None, input_shape=None,
            granularity="channel", passes=None, build=True, force=False, **target_options):
    """Compile `model` for `target` into the folder `out` (default build/<model name>; an existing
    folder that lbc did not make needs force=True, see lbc.output). Warnings (e.g. no calibration
    data) are issued as `lbc.errors.LbcWarning` and kept in `Artifact.warnings`."""
    from lbc.driver import compile_model
    graph = to_graph(model, example_input, input_shape)
    if calibration is None and example_input is not None and graph.meta.get("exp_hints"):
        calibration = example_input  # a QAT model fixes its scales; calibration only fills the gaps
    if isinstance(calibration, (tuple, list)):  # the example inputs of a several-input module, in order
        calibration = dict(zip(graph.inputs, calibration))
    if calibration is not None and not isinstance(calibration, (str, Path)):
        calibration = ({k: _array(v) for k, v in calibration.items()} if isinstance(calibration, dict)
                       else _array(calibration))
    out = Path(out) if out is not None else Path("build") / (graph.name or "model")
    c = compile_model(graph, out, target, quant, calibration, None, passes, granularity, build=build,
                      target_options=target_options or None, force=force)
    for w in c.warnings:
        warnings.warn(w, LbcWarning, stacklevel=2)
    return Artifact(c.outdir, c.report, c.graph, c.float_graph, c.target.name, c.quant, c.warnings)
