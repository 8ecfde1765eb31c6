"""The ONNX backend node tests, regenerated from the installed onnx package and run through lbc.

The onnx wheel ships the generator of its node tests (`onnx.backend.test.case.node`) but not their
data. `cases()` regenerates them once into build/onnx-node-tests/<onnx version>/ (the layout of
onnx's own `backend-test-tools generate-data`: <case>/model.onnx + test_data_set_0/{input,output}_N.pb)
with a fixed numpy seed, so the cache is deterministic and never committed.

`run_case(dir)` imports a case with `lbc.frontends.load_model`, evaluates it with the float
interpreter, with the test data's input shapes as the static input shapes (what a user gives with
--input-shape). A node test passes its weights (Conv's W, Gemm's B, BatchNorm's statistics...) as
graph inputs, while lbc compiles models with constant weights; so a case lbc refuses as generated is
run again with every input after the first turned into an initializer holding the test's value (a
wrong answer or crash in either run is never masked). It compares with the reference outputs the
way onnx's backend tests do (rtol 1e-3, atol 1e-7 for floats; exact for integer and bool outputs).
Outcomes:

  pass     every output matches
  refused  the import (or the run) raised an LbcError - a clean refusal, message recorded
  wrong    an output differs (shape or values)
  crash    any other exception
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).resolve().parent / "expected.txt"
RTOL, ATOL = 1e-3, 1e-7
OUTCOMES = ("pass", "refused", "wrong", "crash")


def cache_dir():
    import onnx
    return ROOT / "build" / "onnx-node-tests" / onnx.__version__


def _generate(out):
    """Write every node test case under `out` (runs in a fresh interpreter: the generator imports
    every case module and reseeds numpy)."""
    import onnx.backend.test.case.node as node_cases
    from onnx import numpy_helper
    np.random.seed(0)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for case in node_cases.collect_testcases():
        d = tmp / case.name
        d.mkdir(parents=True)
        (d / "model.onnx").write_bytes(case.model.SerializeToString())
        inputs, outputs = case.data_sets[0]
        ds = d / "test_data_set_0"
        ds.mkdir()
        for kind, values, infos in (("input", inputs, case.model.graph.input),
                                    ("output", outputs, case.model.graph.output)):
            for j, (v, info) in enumerate(zip(values, infos)):
                if not info.type.HasField("tensor_type"):
                    continue  # sequences/maps/optionals: lbc refuses the model before reading data
                pb = v if hasattr(v, "SerializeToString") else numpy_helper.from_array(np.asarray(v), info.name)
                (ds / f"{kind}_{j}.pb").write_bytes(pb.SerializeToString())
    tmp.rename(out)


def cases():
    """Sorted case directories; generates the cache when it is absent."""
    out = cache_dir()
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-W", "ignore", "-c", "import sys; from pathlib import Path; "
                        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import node_cases; "
                        f"node_cases._generate(Path({str(out)!r}))"], check=True,
                       env={**os.environ, "PYTHONHASHSEED": "0"})
    return sorted(p for p in out.iterdir() if p.is_dir())


def _load_pb(path):
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def _close(got, want):
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    if want.dtype.kind in "iub":
        if got.dtype.kind == "f" and not np.all(np.isfinite(got)):
            return "non-finite values for an integer output"
        return None if np.array_equal(got, want) else "integer values differ"
    w = want.astype(np.float64)
    g = got.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        return "NaN positions differ"
    ok = np.isnan(w) | (g == w) | (np.abs(g - w) <= ATOL + RTOL * np.abs(w))
    return None if ok.all() else f"max abs error {np.nanmax(np.abs(g - w)):.3g}"


def _frozen(d):
    """The case's model with inputs 2..n turned into initializers (cached next to model.onnx)."""
    import onnx
    from onnx import numpy_helper
    out = d / "frozen-v2.onnx"
    if out.exists():
        return out
    model = onnx.load(d / "model.onnx", load_external_data=False)
    g = model.graph
    init = {i.name for i in g.initializer}
    real = [i for i in g.input if i.name not in init]
    for j, info in enumerate(real[1:], start=1):
        pb = d / "test_data_set_0" / f"input_{j}.pb"
        if not pb.exists():
            return d / "model.onnx"  # a sequence/optional input: the model is refused as it is
        g.initializer.append(numpy_helper.from_array(_load_pb(pb), info.name))
    frozen = {r.name for r in real[1:]}
    if model.ir_version >= 4:  # before IR 4 every initializer must also be listed as an input
        keep = [i for i in g.input if i.name not in init and i.name not in frozen]
        del g.input[:]
        g.input.extend(keep)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.rename(out)
    return out


def _attempt(d, path):
    """(outcome, detail) of one model of a case (as generated, or with constant weights)."""
    import onnx
    from lbc.errors import LbcError
    from lbc.frontends import load_model
    from lbc.ir.interpreter import run
    try:
        feeds = {}
        for j, info in enumerate(onnx.load(path).graph.input):
            pb = d / "test_data_set_0" / f"input_{j}.pb"
            if pb.exists():
                feeds[info.name] = _load_pb(pb)
        # static shapes are lbc's rule: give the test data's shape, as a user passes --input-shape
        shapes = {k: tuple(v.shape) for k, v in feeds.items() if hasattr(v, "shape") and v.ndim}
        graph = load_model(path, shapes or None)
        got = run(graph, {n: feeds[n] for n in graph.inputs})
        model = onnx.load(d / "model.onnx", load_external_data=False)
        want = [_load_pb(d / "test_data_set_0" / f"output_{j}.pb") for j in range(len(model.graph.output))]
    except LbcError as e:
        return "refused", str(e).splitlines()[0]
    except Exception as e:  # noqa: BLE001 - anything else is a crash
        return "crash", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if len(got) != len(want):
        return "wrong", f"{len(got)} outputs, expected {len(want)}"
    for j, (g, w) in enumerate(zip(got, want)):
        why = _close(g, w)
        if why:
            return "wrong", f"output {j}: {why}"
    return "pass", ""


def run_case(d):
    """(outcome, detail) of one case directory: the model as generated (every input at run time);
    if lbc refuses it, the model with constant weights (inputs 2..n as initializers). A wrong
    answer or crash in either is the case's outcome; otherwise it passes if either passes."""
    first = _attempt(d, d / "model.onnx")
    if first[0] != "refused":
        return first
    frozen = _frozen(d)
    if frozen == d / "model.onnx":
        return first
    second = _attempt(d, frozen)
    return second


def _worker(paths):
    import warnings
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    return [(p.name, *run_case(p)) for p in paths]


def run_all(jobs=2):
    """{case: (outcome, detail)} for every case, in `jobs` processes."""
    from concurrent.futures import ProcessPoolExecutor
    paths = cases()
    chunks = [paths[i::jobs] for i in range(jobs)]
    results = {}
    if jobs == 1:
        parts = [_worker(paths)]
    else:
        with ProcessPoolExecutor(jobs) as ex:
            parts = list(ex.map(_worker, chunks))
    for part in parts:
        for name, outcome, detail in part:
            results[name] = (outcome, detail)
    return dict(sorted(results.items()))


def read_expected():
    out = {}
    for line in EXPECTED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, outcome = line.split()
            out[name] = outcome
    return out


def write_expected(results):
    lines = ["# Expected outcome of each ONNX backend node test through lbc's frontend + float interpreter.",
             "# Regenerate after an intended change: .venv/bin/python tests/conformance/refresh.py",
             "# (never by hand; `wrong` and `crash` are never acceptable outcomes)."]
    lines += [f"{name} {outcome}" for name, (outcome, _) in results.items()]
    EXPECTED.write_text("\n".join(lines) + "\n")


def totals(results):
    counts = {k: 0 for k in OUTCOMES}
    for outcome, _ in results.values():
        counts[outcome] += 1
    return counts


def write_report(results):
    """build/onnx-node-tests/report.json: every case's outcome and detail (for humans)."""
    path = cache_dir().parent / "report.json"
    path.write_text(json.dumps({k: list(v) for k, v in results.items()}, indent=1) + "\n")
    return path
