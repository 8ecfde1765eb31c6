"""Patch-based execution (MCUNetV2, arXiv 2110.15352): run a chain of spatial layers tile by tile,
recomputing the overlap of neighbouring tiles, so that the chain's large intermediate activations never
exist whole - only one tile of each.

A *stage* is a chain of nodes n_0 .. n_{L-1} over NCHW tensors where each node's first input is the
previous node's output and every intermediate has no other consumer. The memory plan records it as
meta["memory_plan"]["patches"] = [{"nodes": [names], "tile": [th, tw]}]; the graph itself is unchanged.
The stage output (the last node's output, OH x OW) is cut into tiles of th x tw output pixels, a
ny x nx grid (the last row and column of tiles may reach past the map; their extra pixels are computed
and dropped). Walking back through the chain, layer l's tile is a constant-size window of its input:
size_in = (size_out - 1) * stride + dilation * (kernel - 1) + 1, origin_in = origin_out * stride - pad.

Semantics of one tile (exactly the plain graph's values at every in-map pixel):

1. crop: T_0 = the stage input's window at the tile's origin; pixels outside the map get the fill of
   n_0 (the value n_0's own padding would read: 0 for conv2d and avgpool, -128 for maxpool).
2. for each node: T_{l+1} = node(T_l) computed with no padding (the window is already in T_l), then
   mask: the pixels of T_{l+1} outside layer l+1's map are set to the next node's fill, so that the
   next node reads exactly the padding the plain graph would.
3. place: the tile's pixels inside the stage output's map are written to the stage output.

Induction over the layers shows every in-map pixel of every tile equals the plain graph's value:
each in-map output reads only in-map inputs (exact) or out-of-map inputs (exactly the padding value).
A maxpool whose window could lie entirely in padding (pad >= kernel) is not stageable: the plain
graph's result there is not a max of real values. `run` executes a graph with its patch plan; tests
compare it with the plain interpreter.
"""

from dataclasses import dataclass

import numpy as np

from lbc.ir.graph import Node
from lbc.ir.ops import OPS

WINDOW_OPS = {"conv2d", "maxpool", "avgpool"}
POINTWISE_OPS = {"relu", "clip", "sigmoid", "tanh", "leaky_relu"}
STAGE_OPS = WINDOW_OPS | POINTWISE_OPS


def fill_value(node):
    """The int8 value node's zero padding stands for (what a masked pixel must hold for it)."""
    return -128 if node.op == "maxpool" else 0


def window_of(graph, node):
    if node.op == "conv2d":
        w = graph.types[node.inputs[1]].shape
        return (w[2], w[3]), tuple(node.attr("strides")), tuple(node.attr("pads")), tuple(node.attr("dilations"))
    if node.op in ("maxpool", "avgpool"):
        return tuple(node.attr("kernel")), tuple(node.attr("strides")), tuple(node.attr("pads")), (1, 1)
    return (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)


def stageable(graph, node):
    """Why `node` cannot be part of a stage (None: it can)."""
    if node.op not in STAGE_OPS:
        return f"{node.op} is not a per-pixel or window op"
    if len(graph.types[node.inputs[0]].shape) != 4:
        return "not a 4-d tensor"
    if node.op == "avgpool" and not node.attr("count_include_pad") and any(node.attr("pads")):
        return "average pool excluding padding"
    if node.op == "maxpool":
        k, _, p, _ = window_of(graph, node)
        if p[0] >= k[0] or p[1] >= k[1] or p[2] >= k[0] or p[3] >= k[1]:
            return "max pool padding as large as its window"
    return None


def chains(graph):
    """Every maximal chain of stageable nodes (a list of nodes), each starting where its input is not
    the only use of a stageable node's output. Stages are prefixes of these chains."""
    users = graph.consumers()
    prod = graph.producers()

    def extends(p):
        return (p is not None and stageable(graph, p) is None and len(users[p.outputs[0]]) == 1
                and p.outputs[0] not in graph.outputs)

    for n in graph.nodes:
        if stageable(graph, n) is not None or extends(prod.get(n.inputs[0])):
            continue
        chain = [n]
        while extends(chain[-1]):
            nxt = users[chain[-1].outputs[0]][0]
            if stageable(graph, nxt) is not None or nxt.inputs[0] != chain[-1].outputs[0]:
                break
            chain.append(nxt)
        yield chain


@dataclass(frozen=True)
class Layer:
    """One tensor of a stage as seen by one tile: T_l has `channels` x `th` x `tw` pixels, its origin in
    the full map (h x w) is (ty * step_y + off_y, tx * step_x + off_x); masked pixels get `fill`."""
    tensor: str
    channels: int
    th: int
    tw: int
    h: int
    w: int
    step_y: int
    step_x: int
    off_y: int
    off_x: int
    fill: int


@dataclass(frozen=True)
class Stage:
    nodes: tuple  # the graph's nodes
    tile: tuple  # (th, tw) output pixels per tile
    grid: tuple  # (ny, nx) tiles
    layers: tuple  # Layer for T_0 (the stage input's window) .. T_L (the output tile)

    @property
    def input(self):
        return self.nodes[0].inputs[0]

    @property
    def output(self):
        return self.nodes[-1].outputs[0]

    def tile_node(self, i, names):
        """Node i of the stage as it runs on one tile: no padding, T_i -> T_{i+1} (tensor names from
        `names`, one per layer)."""
        n = self.nodes[i]
        attrs = dict(n.attrs)
        if "pads" in attrs or n.op in WINDOW_OPS:
            attrs["pads"] = (0, 0, 0, 0)
        return Node(n.op, n.name, [names[i]] + list(n.inputs[1:]), [names[i + 1]], attrs)

    def macs(self, graph):
        """Multiply-accumulates of one inference run tile by tile (overlap recomputed)."""
        from lbc.ir.ops import macs
        total = 0
        ny, nx = self.grid
        for i, n in enumerate(self.nodes):
            a, b = self.layers[i], self.layers[i + 1]
            ins = [(1, a.channels, a.th, a.tw)] + [graph.types[t].shape for t in n.inputs[1:]]
            total += macs(n, ins, [(1, b.channels, b.th, b.tw)]) * ny * nx
        return total

    def tile_bytes(self):
        return [la.channels * la.th * la.tw for la in self.layers]


def make_stage(graph, nodes, tile):
    """The Stage running `nodes` (a chain) by tiles of tile = (th, tw) output pixels."""
    nodes = tuple(nodes)
    th, tw = int(tile[0]), int(tile[1])
    out = graph.types[nodes[-1].outputs[0]].shape
    grid = (-(-out[2] // th), -(-out[3] // tw))
    # walk back: size, step and offset of each layer's window
    sizes = [(th, tw)]
    steps = [(th, tw)]
    offs = [(0, 0)]
    for n in reversed(nodes):
        (kh, kw), (sy, sx), p, (dh, dw) = window_of(graph, n)
        (oh, ow), (sty, stx), (oy, ox) = sizes[0], steps[0], offs[0]
        sizes.insert(0, ((oh - 1) * sy + dh * (kh - 1) + 1, (ow - 1) * sx + dw * (kw - 1) + 1))
        steps.insert(0, (sty * sy, stx * sx))
        offs.insert(0, (oy * sy - p[0], ox * sx - p[1]))
    tensors = [nodes[0].inputs[0]] + [n.outputs[0] for n in nodes]
    layers = []
    for i, t in enumerate(tensors):
        shape = graph.types[t].shape
        fill = fill_value(nodes[i]) if i < len(nodes) else 0
        layers.append(Layer(t, shape[1], sizes[i][0], sizes[i][1], shape[2], shape[3], steps[i][0], steps[i][1],
                            offs[i][0], offs[i][1], fill))
    return Stage(nodes, (th, tw), grid, tuple(layers))


def tile_tensor(stage, i):
    """The memory plan's name of a stage's tile buffer T_i."""
    return f"{stage.output}@tile{i}"


def stages_of(graph):
    """The Stages of graph's memory plan (none for a plain plan)."""
    by_name = {n.name: n for n in graph.nodes}
    return [make_stage(graph, [by_name[x] for x in p["nodes"]], p["tile"])
            for p in graph.meta.get("memory_plan", {}).get("patches", [])]


# ------------------------------------------------------------------------------------ reference

def crop(x, la, ty, tx):
    """The window of layer `la` for tile (ty, tx) out of the full [N, C, H, W] tensor x; outside -> fill."""
    y0, x0 = ty * la.step_y + la.off_y, tx * la.step_x + la.off_x
    out = np.full((x.shape[0], la.channels, la.th, la.tw), la.fill, dtype=x.dtype)
    ys, ye = max(y0, 0), min(y0 + la.th, la.h)
    xs, xe = max(x0, 0), min(x0 + la.tw, la.w)
    if ys < ye and xs < xe:
        out[:, :, ys - y0:ye - y0, xs - x0:xe - x0] = x[:, :, ys:ye, xs:xe]
    return out


def mask(t, la, ty, tx):
    """Set the pixels of tile tensor t outside layer la's map to la.fill (in place)."""
    y0, x0 = ty * la.step_y + la.off_y, tx * la.step_x + la.off_x
    rows = np.arange(la.th) + y0
    cols = np.arange(la.tw) + x0
    t[:, :, (rows < 0) | (rows >= la.h), :] = la.fill
    t[:, :, :, (cols < 0) | (cols >= la.w)] = la.fill
    return t


def place(t, y, la, ty, tx):
    """Write the in-map pixels of the output tile t into the full output y."""
    y0, x0 = ty * la.step_y + la.off_y, tx * la.step_x + la.off_x
    ye, xe = min(y0 + la.th, la.h), min(x0 + la.tw, la.w)
    y[:, :, y0:ye, x0:xe] = t[:, :, :ye - y0, :xe - x0]


def run_stage(stage, graph, env):
    """Compute the stage output from env[stage input] tile by tile (integer or float graphs)."""
    x = env[stage.input]
    last = stage.layers[-1]
    y = None
    names = [f"T{i}" for i in range(len(stage.layers))]
    nodes = [stage.tile_node(i, names) for i in range(len(stage.nodes))]
    for ty in range(stage.grid[0]):
        for tx in range(stage.grid[1]):
            t = crop(x, stage.layers[0], ty, tx)
            for i, n in enumerate(nodes):
                d = OPS[n.op]
                integer = not graph.types[stage.nodes[i].outputs[0]].dtype.is_float
                fn = d.int_fn if integer else d.float_fn
                (t,) = fn(n, [t] + [env[c] for c in n.inputs[1:]])
                t = np.array(t)
                if i + 1 < len(nodes):
                    mask(t, stage.layers[i + 1], ty, tx)
            if y is None:
                y = np.zeros((x.shape[0], last.channels, last.h, last.w), dtype=t.dtype)
            place(t, y, last, ty, tx)
    return y


def run(graph, x):
    """The interpreter over graph's memory plan: stages tile by tile, every other node whole. Returns
    the outputs (identical to `lbc.ir.interpreter.run` by the construction above; tests check it)."""
    from lbc.ir.interpreter import run as interpret
    stages = {s.nodes[0].name: s for s in stages_of(graph)}
    if not stages:
        return interpret(graph, x)
    env = dict(graph.consts)
    (name,) = graph.inputs
    env[name] = np.asarray(x, dtype=graph.types[name].dtype.numpy)
    skip = set()
    for node in graph.nodes:
        if node.name in skip:
            continue
        s = stages.get(node.name)
        if s is not None:
            env[s.output] = run_stage(s, graph, env)
            skip.update(n.name for n in s.nodes)
            continue
        d = OPS[node.op]
        integer = not graph.types[node.outputs[0]].dtype.is_float and not d.layout and node.op != "argmax"
        fn = d.int_fn if integer else d.float_fn
        for o, v in zip(node.outputs, fn(node, [env[i] for i in node.inputs])):
            env[o] = v
    return [env[o] for o in graph.outputs]
