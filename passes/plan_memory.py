"""plan-memory: place every activation tensor in one static arena.

Expects an integer graph. Guarantees meta["memory_plan"] = {"arena_bytes": N, "offsets": {tensor:
byte offset}, "lower_bound_bytes": B, "steps": [...], "patches": [...], "tried": [...]} where tensors
alive at the same time never overlap. Offsets are 4-byte aligned.

* Liveness and operator-level reuse: a tensor lives from the step that writes it to its last reader;
  buffers are placed first-fit, largest first, and reused once dead.
* A reshape's output shares its input's bytes (reshape emits no code).
* In place: for the ops the target lists in `inplace_ops` (per-element ops whose kernels read element
  i before writing element i), the output takes its input's bytes when that input dies there and has
  the output's size.
* Patch-based execution (`lbc.ir.patch`): when the target has a RAM budget (`arena_budget(graph)`) and
  the plain plan does not fit it, the planner tries every prefix of every chain of spatial layers with
  every tile size, and keeps the plan with the smallest arena (then the fewest recomputed MACs): what
  the arena does not need is left to the kernels' tables (see "kernel_block").
  A stage is one step: its input and output live across it, and its tile buffers (themselves planned
  by liveness, in place where allowed) form one scratch block alive only during it. Plain and patched
  attempts are recorded in "tried" so the target can say what it tried when nothing fits. With a patch
  plan, "kernel_block" is the largest block of the arena that is free from the end of the stages on
  (the stage's input and tiles are dead): kernels after the stages put their scratch there.

State tensors (Graph.states) get static storage that outlives a step: they are live for the whole
step (from before the first step to past the last), so nothing else ever shares their bytes, and the
tensor holding a state's next value shares the state's bytes (the op that computes it updates the
state in place). meta["memory_plan"]["state_bytes"] is their total (for a graph with states).

"lower_bound_bytes" is the largest sum of live bytes over the steps of the chosen schedule (in place
and tiles included): no placement of that schedule can use less; "activation_bytes", the arena the
placement needs for the activations alone (before a kernel block is added), is compared with it.
"steps" lists, per step, the live bytes and the step's name (the per-layer RAM report)."""

import itertools
from dataclasses import dataclass

from lbc.ir import patch as P

TILE_EDGES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32)  # tile edges tried (stage output pixels)


def tensor_bytes(t):
    width = 4 if t.dtype.name == "i32" else (2 if t.dtype.name == "i16" else 1)
    return t.size * width


def _align(x, a=4):
    return (x + a - 1) // a * a


ORDERS = {  # the item orders first-fit placement may try
    "largest first": lambda t: (-t[1], t[2], str(t[0])),
    "longest-lived last": lambda t: (-t[3], -t[1], str(t[0])),
    "earliest first": lambda t: (t[2], -t[1], str(t[0])),
}


def place(items, order="largest first"):
    """First-fit placement of (key, size, start, end) items in `order`, never overlapping an item whose
    [start, end] interval intersects. Returns ({key: offset}, arena bytes)."""
    placed = []
    live = {}  # step -> indices into `placed` of the items live then: linear for chains, not quadratic
    offsets = {}
    for key, size, s, e in sorted(items, key=ORDERS[order]):
        near = set()
        for step in range(s, e + 1):
            near.update(live.get(step, ()))
        busy = sorted((placed[j][0], placed[j][1]) for j in near)
        off = 0
        for o, sz in busy:
            if off + size <= o:
                break
            off = max(off, _align(o + sz))
        for step in range(s, e + 1):
            live.setdefault(step, []).append(len(placed))
        placed.append((off, size, s, e))
        offsets[key] = off
    return offsets, max((_align(o + sz) for o, sz, _, _ in placed), default=0)


def _intervals(steps, sizes, inplace, inputs=(), outputs=(), states=None):
    """Liveness of a step list [(name, op, reads, writes, scratch bytes)] over tensors of `sizes`.
    Returns (find: tensor -> the tensor whose bytes it uses, [(key, size, start, end)], live bytes per
    step). Inputs are written before step 0, outputs live past the last step; `states` maps a state's
    next-value tensor to the state, which lives across every step and lends it its bytes."""
    alias = dict(states or {})

    def find(t):
        while t in alias:
            t = alias[t]
        return t

    for _, op, reads, writes, _ in steps:
        if op == "reshape":
            alias[writes[0]] = reads[0]
    last = {}
    for i, (_, _, reads, _, _) in enumerate(steps):
        for t in reads:
            last[find(t)] = i
    start, end, size = {}, {}, {}
    for t in inputs:
        start[t], end[t], size[t] = -1, -1, sizes[t]
    for t in sorted(set((states or {}).values())):
        start[t], end[t], size[t] = -1, len(steps), sizes[t]
    for i, (name, op, reads, writes, scratch) in enumerate(steps):
        for t in reads:
            end[find(t)] = max(end.get(find(t), i), i)
        for t in writes:
            if op == "reshape" or (states and t in states):
                continue
            src = find(reads[0]) if reads else None
            if (op in inplace and src is not None and last.get(src) == i and src not in outputs
                    and sizes[src] == sizes[t]):
                alias[t] = src
                continue
            start[t], end[t], size[t] = i, i, sizes[t]
        if scratch:
            key = ("scratch", name)
            start[key], end[key], size[key] = i, i, scratch
    for t in outputs:
        end[find(t)] = len(steps)
    items = [(k, size[k], start[k], end[k]) for k in start]
    delta = [0] * (len(steps) + 2)  # live bytes per step by a difference array (items span [s, e])
    for _, sz, s, e in items:
        delta[max(s, 0)] += sz
        delta[min(e, len(steps) - 1) + 1] -= sz
    live = list(itertools.accumulate(delta[:len(steps)]))
    return find, items, live


@dataclass
class _Plan:
    offsets: dict
    arena: int
    lower_bound: int
    steps: list
    patches: list
    extra_macs: int = 0
    kernel_block: dict = None


def _tile_plan(stage, inplace):
    """Offsets of a stage's tile buffers T_0..T_L inside its scratch block, the block's size and the
    most tile bytes live at once."""
    names = [f"T{i}" for i in range(len(stage.layers))]
    sizes = dict(zip(names, stage.tile_bytes()))
    steps = [("crop", "crop", [], [names[0]], 0)]
    steps += [(n.name, n.op, [names[i]], [names[i + 1]], 0) for i, n in enumerate(stage.nodes)]
    steps += [("place", "place", [names[-1]], [], 0)]
    find, items, live = _intervals(steps, sizes, inplace)
    offsets, size = place(items)
    return [offsets[find(t)] for t in names], size, max(live)


def _plan(g, inplace, stages, block=0, order="largest first"):
    """The plan of graph g with `stages` (Stage list) run tile by tile; `block` > 0 adds a kernel
    scratch block of that many bytes alive from the step after the last stage to the end."""
    by_first = {s.nodes[0].name: s for s in stages}
    inside = {n.name for s in stages for n in s.nodes}
    sizes = {t: tensor_bytes(g.types[t]) for t in g.types if t not in g.consts}
    steps, tiles = [], {}
    for n in g.nodes:
        s = by_first.get(n.name)
        if s is not None:
            offs, size, peak = _tile_plan(s, inplace)
            name = f"patches {s.nodes[0].name}..{s.nodes[-1].name}"
            tiles[name] = (s, offs, peak)
            steps.append((name, "patch", [s.input], [s.output], size))
        elif n.name not in inside:
            steps.append((n.name, n.op, [i for i in n.inputs if i not in g.consts], list(n.outputs), 0))
    find, items, live = _intervals(steps, sizes, inplace, g.inputs, g.outputs,
                                   {st.next: name for name, st in g.states.items()})
    after = max((i for i, st in enumerate(steps) if st[1] == "patch"), default=-1) + 1
    if block:
        items.append(("kernel block", block, after, len(steps) - 1))
    offsets, arena = place(items, order)
    out = {t: offsets[find(t)] for t in sizes if find(t) in offsets}
    bound = 0
    step_info = []
    for i, (name, op, reads, writes, scratch) in enumerate(steps):
        lv = live[i]
        if op == "patch":
            s, offs, peak = tiles[name]
            base = offsets[("scratch", name)]
            for j, o in enumerate(offs):
                out[P.tile_tensor(s, j)] = base + o
            lv = lv - scratch + peak
        bound = max(bound, lv)
        step_info.append({"step": name, "live_bytes": lv})
    patches = [{"nodes": [n.name for n in s.nodes], "tile": list(s.tile), "grid": list(s.grid)} for s in stages]
    extra = sum(s.macs(g) - sum(_node_macs(g, n) for n in s.nodes) for s in stages)
    p = _Plan(dict(sorted(out.items())), arena, bound, step_info, patches, extra)
    if block:
        p.kernel_block = {"offset": offsets["kernel block"], "bytes": block,
                          "after": steps[after][0] if after < len(steps) else None}
    return p


def _with_kernel_block(g, inplace, stages, plan, budget):
    """The largest kernel scratch block (multiple of 16 B) that fits in the arena after the stages
    without growing it past max(its size, budget): the layers after a patch stage then keep their
    lookup tables and accumulators where the stage's input and tiles were."""
    limit = max(plan.arena, budget)
    best, size = plan, 0
    for order in ORDERS:
        lo, hi = size // 16, plan.arena // 16
        while lo < hi:
            mid = (lo + hi + 1) // 2
            p = _plan(g, inplace, stages, 16 * mid, order)
            if p.arena <= limit:
                lo, best, size = mid, p, 16 * mid
            else:
                hi = mid - 1
    return best


def _node_macs(g, n):
    from lbc.ir.ops import macs
    return macs(n, [g.types[i].shape for i in n.inputs], [g.types[o].shape for o in n.outputs])


def candidates(g):
    """Every (nodes, tile) patch stage worth trying: prefixes of the chains that hold a window op, each
    tile edge of TILE_EDGES below the stage output's size."""
    for chain in P.chains(g):
        for k in range(1, len(chain) + 1):
            nodes = chain[:k]
            if not any(n.op in P.WINDOW_OPS for n in nodes) or nodes[-1].op not in P.WINDOW_OPS | {"relu", "clip"}:
                continue
            _, _, oh, ow = g.types[nodes[-1].outputs[0]].shape
            for th in [e for e in TILE_EDGES if e <= oh]:
                for tw in [e for e in TILE_EDGES if e <= ow]:
                    if (th, tw) != (oh, ow):
                        yield nodes, (th, tw)


@dataclass(frozen=True)
class PlanMemory:
    def run(self, graph, ctx):
        g = graph.copy()
        tgt = ctx.target
        inplace = getattr(tgt, "inplace_ops", frozenset())
        plan = _plan(g, inplace, [])
        budget = tgt.arena_budget(g) if tgt is not None and hasattr(tgt, "arena_budget") else None
        tried = [{"plan": "plain", "arena_bytes": plan.arena}]
        activations = plan.arena
        if budget is not None and plan.arena > budget:
            best = None
            for nodes, tile in candidates(g):
                p = _plan(g, inplace, [P.make_stage(g, nodes, tile)])
                if best is None or (p.arena, p.extra_macs) < (best.arena, best.extra_macs):
                    best = p
            if best is not None:
                tried.append({"plan": f"patches {best.patches[0]['nodes'][0]}..{best.patches[0]['nodes'][-1]} "
                                      f"tile {best.patches[0]['tile'][0]}x{best.patches[0]['tile'][1]}",
                              "arena_bytes": best.arena})
                if best.arena < plan.arena:
                    activations = best.arena
                    plan = _with_kernel_block(g, inplace, [P.make_stage(g, [n for n in g.nodes if n.name in
                                                                            best.patches[0]["nodes"]],
                                                                   best.patches[0]["tile"])], best, budget)
        g.meta["memory_plan"] = {"arena_bytes": plan.arena, "activation_bytes": activations, "offsets": plan.offsets,
                                 "lower_bound_bytes": plan.lower_bound, "steps": plan.steps,
                                 "patches": plan.patches, "extra_macs": plan.extra_macs, "tried": tried,
                                 "budget_bytes": budget, "kernel_block": plan.kernel_block}
        if g.states:
            g.meta["memory_plan"]["state_bytes"] = sum(_align(tensor_bytes(g.types[t])) for t in g.states)
        return g


PASS = PlanMemory
