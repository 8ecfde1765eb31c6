"""What every target shares: the Target interface, the Jinja environment, identifier sanitising and
weight packing.

A target states its facts as class attributes, reports *all* problems with a graph in `check`,
writes deterministic sources in `emit`, builds them with its real toolchain in `build`, and runs the
built artifact on a batch of quantised inputs in `run`.
"""

import re
import shutil

import jinja2
import numpy as np

from lbc import __version__
from lbc.errors import LbcError, ToolchainError, name_list

STREAMING_TARGETS = ("host", "rv32ec", "nes")  # the targets whose `streams` is True
# Attribute values of IR ops that no target's kernels implement yet (the interpreter does): a graph
# using another value is refused by every target's `check`.
EMITTED_ATTRS = {("pad", "mode"): "constant", ("maxpool", "ceil_mode"): 0, ("avgpool", "ceil_mode"): 0}

DEFAULT_PIPELINE = ("fold-constants", "fold-batchnorm", "fuse-activation", "quantize-{quant}",
                    "analyze-sparsity", "plan-memory")


# IR ops the default pipeline removes, so no target needs to emit them: op -> how.
PIPELINE_RESOLVED = {
    "batchnorm": "folded into the conv/dense before it (fold-batchnorm)",
    "softmax": "at a graph output: applied by the runner after dequantising (quantize)",
}


class Target:
    name = "?"
    description = ""
    default_quant = "int8"
    quants = ("int8", "int4", "int2", "ternary", "pentary")
    # The op-support declaration: `check`, `lbc ops` and docs/ops.md all read it.
    ops = frozenset()  # IR ops this target emits
    emitted_attrs = EMITTED_ATTRS  # (op, attribute) -> the only value this target's kernels implement
    op_limits = {}  # IR op -> what of it the target emits when not every form (dtype/attribute limits)
    max_inputs = 1  # graph inputs the generated code takes (None: any number)
    max_outputs = 1
    integer_inputs = False  # whether inputs may be integer tensors (token ids) rather than quantised floats
    streams = False  # compiles graphs with state (Graph.states) into lbc_reset/lbc_step firmware
    flash_bytes = None  # program + constant budget, None = unbounded
    ram_bytes = None  # data budget, None = unbounded

    def __init__(self, flash_bytes=None, ram_bytes=None):
        for key, v in (("flash_bytes", flash_bytes), ("ram_bytes", ram_bytes)):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise LbcError(f"{key}={v!r}: a budget is a positive number of bytes")
            setattr(self, key, int(v))

    def resolved_ops(self):
        """IR ops this target's pipeline removes before emitting (so they need no kernel): op -> how."""
        return PIPELINE_RESOLVED

    def options(self):
        """Constructor options to record in the output folder's manifest (lbc.json) so `lbc run`
        re-creates the same target."""
        return {k: getattr(self, k) for k in ("flash_bytes", "ram_bytes")
                if getattr(self, k) != getattr(type(self), k)}

    def summary(self, report):
        """Extra lines `lbc compile` prints after the layer table (sizes, budgets)."""
        return []

    def pipeline(self, quant):
        return [p.format(quant=quant) for p in DEFAULT_PIPELINE]

    def check(self, graph):
        """Every reason this graph cannot be emitted for this target (empty list: fine)."""
        if graph.stateful and not self.streams:
            return [f"target {self.name} does not compile models with state (spiking or recurrent networks run "
                    f"one time step per call; targets that do: {', '.join(STREAMING_TARGETS)})"]
        problems = []
        bad = {}
        for n in graph.nodes:
            if n.op not in self.ops:  # a table names the function it computes (its integer form is `table`)
                bad.setdefault(n.attrs.get("fn", n.op) if n.op == "table" else n.op, []).append(n.name)
        for op, names in sorted(bad.items()):
            problems.append(f"op {op} is not supported by target {self.name} ({name_list(names)})")
        for n in graph.nodes:
            for (op, attr), value in self.emitted_attrs.items():
                if n.op == op and n.attr(attr) != value:
                    problems.append(f"{op} with {attr}={n.attr(attr)!r} is not supported by target {self.name} "
                                    f"(node {comment_safe(n.name, 40)})")
        problems += self.io_problems(graph)
        return problems

    def io_problems(self, graph):
        """Graph inputs/outputs this target cannot take, from the max_inputs/max_outputs/
        integer_inputs declaration."""
        problems = []
        for what, names, most in (("input", graph.inputs, self.max_inputs), ("output", graph.outputs, self.max_outputs)):
            if most is not None and len(names) > most:
                problems.append(f"target {self.name} compiles graphs with at most {most} {what}(s); this one has "
                                f"{len(names)} ({', '.join(comment_safe(n, 40) for n in names)})")
        if not self.integer_inputs:
            for i in graph.inputs:
                t = graph.types[i]
                if not t.dtype.is_float and t.exp is None:
                    problems.append(f"input {comment_safe(i, 40)} is an integer tensor ({t.dtype.name}); target "
                                    f"{self.name} takes quantised float inputs only")
        return problems

    def weight_bytes(self, dtype_name, shape):
        """Bytes this target stores for a weight tensor of this dtype and [out, ...] shape."""
        return packed_row_bytes(dtype_name, int(np.prod(shape[1:]))) * int(shape[0])

    def emit(self, graph, outdir, options):
        raise NotImplementedError

    def build(self, outdir):
        return {}

    def run(self, outdir, manifest, xq):
        """Run the built artifact on integer inputs: `xq` is the batch array of a one-input model,
        else a dict input name -> array (manifest order). Returns (outputs, stats), the outputs an
        array for a one-output model, else a dict output name -> array."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------ templates

def template_env(*dirs):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.globals["lbc_version"] = __version__
    env.filters["comment_safe"] = comment_safe
    return env


def header_lines(graph, target_name, quant):
    """The comment lines every generated file starts with: what made it, from which model. No
    timestamps, no paths."""
    return [f"Generated by lbc {__version__} for target {target_name} ({quant} weights, int8 activations).",
            f"Model: {comment_safe(graph.name)}. Do not edit: re-run lbc compile instead."]


_SAFE_COMMENT = re.compile(r"[^A-Za-z0-9 _.,:;+\-=()\[\]#@/]")


def comment_safe(text, limit=80):
    """Model-supplied text made safe inside any comment syntax (C, asm, Jinja): no newlines, no
    comment terminators, printable ASCII only."""
    s = _SAFE_COMMENT.sub("_", str(text)).replace("*/", "*_").replace("/*", "_*")
    return s[:limit]


class Namer:
    """Sanitises model names into unique identifiers ([A-Za-z_][A-Za-z0-9_]*) with a prefix."""

    def __init__(self, prefix):
        self.prefix, self.used, self.map = prefix, set(), {}

    def __call__(self, name):
        if name in self.map:
            return self.map[name]
        base = re.sub(r"[^A-Za-z0-9_]", "_", str(name)).strip("_")[:40] or "t"
        ident = f"{self.prefix}{base}"
        i = 1
        while ident in self.used:
            ident = f"{self.prefix}{base}_{i}"
            i += 1
        self.used.add(ident)
        self.map[name] = ident
        return ident


# ------------------------------------------------------------------------------------ packing

PER_BYTE = {"i8": 1, "int8": 1, "i4": 2, "int4": 2, "i2": 4, "int2": 4, "ternary": 5, "pentary": 3}
WEIGHT_CODE = {"i8": 0, "i4": 1, "i2": 2, "ternary": 3, "pentary": 4}


def packed_row_bytes(dtype_name, row_len):
    return -(-row_len // PER_BYTE[dtype_name])


def pack_rows(w, dtype_name):
    """Pack integer weights [out, ...] row by row (the layout documented in runtime/c/lbc_ops.h)."""
    rows = np.asarray(w, dtype=np.int64).reshape(w.shape[0], -1)
    per = PER_BYTE[dtype_name]
    pad = (-rows.shape[1]) % per
    rows = np.pad(rows, ((0, 0), (0, pad)))
    groups = rows.reshape(rows.shape[0], -1, per)
    if dtype_name == "i8":
        out = groups[..., 0] & 0xFF
    elif dtype_name in ("i4", "i2"):
        bits = 8 // per
        out = sum((groups[..., j] & ((1 << bits) - 1)) << (bits * j) for j in range(per))
    else:
        base = 3 if dtype_name == "ternary" else 5
        off = base // 2
        out = sum((groups[..., j] + off) * base**j for j in range(per))
    return out.astype(np.uint8)


def c_array(values, per_line=16, fmt=str):
    vals = [fmt(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return ",\n    ".join(lines)


def find_tool(name, package):
    path = shutil.which(name)
    if not path:
        raise ToolchainError(f"{name} not found; install the Debian package {package} "
                             f"(make test / make demo install it automatically)")
    return path
