"""plan-memory: place every activation tensor in one static arena by liveness.

Expects an integer graph. Guarantees meta["memory_plan"] = {"arena_bytes": N, "offsets": {tensor:
byte offset}} where tensors alive at the same time never overlap. A reshape's output shares its
input's bytes (reshape emits no code). Offsets are 4-byte aligned."""

from dataclasses import dataclass


def tensor_bytes(t):
    width = 4 if t.dtype.name == "i32" else (2 if t.dtype.name == "i16" else 1)
    return t.size * width


def _align(x, a=4):
    return (x + a - 1) // a * a


@dataclass(frozen=True)
class PlanMemory:
    def run(self, graph, ctx):
        g = graph.copy()
        root = {}  # tensor -> the tensor whose bytes it uses
        for n in g.nodes:
            if n.op == "reshape":
                root[n.outputs[0]] = root.get(n.inputs[0], n.inputs[0])
        start, end = {}, {}
        for name in g.inputs:
            start[name] = -1
        for i, n in enumerate(g.nodes):
            for name in n.inputs:
                if name in g.consts:
                    continue
                r = root.get(name, name)
                end[r] = max(end.get(r, i), i)
            for name in n.outputs:
                r = root.get(name, name)
                start.setdefault(r, i)
                end[r] = max(end.get(r, i), i)
        for name in g.outputs:
            end[root.get(name, name)] = len(g.nodes)
        owners = sorted(start, key=lambda t: (-tensor_bytes(g.types[t]), start[t], t))
        placed = []  # (offset, size, start, end)
        live = {}  # node index -> indices into `placed` of the blocks live then (linear for chains)
        offsets = {}
        for t in owners:
            size = tensor_bytes(g.types[t])
            s, e = start[t], end.get(t, start[t])
            overlapping = set()
            for step in range(s, e + 1):
                overlapping.update(live.get(step, ()))
            busy = sorted((placed[j][0], placed[j][1]) for j in overlapping)
            off = 0
            for o, sz in busy:
                if off + size <= o:
                    break
                off = max(off, _align(o + sz))
            for step in range(s, e + 1):
                live.setdefault(step, []).append(len(placed))
            placed.append((off, size, s, e))
            offsets[t] = off
        for t, r in root.items():
            offsets[t] = offsets[r]
        arena = max((_align(o + sz) for o, sz, _, _ in placed), default=0)
        g.meta["memory_plan"] = {"arena_bytes": arena, "offsets": dict(sorted(offsets.items()))}
        return g


PASS = PlanMemory
