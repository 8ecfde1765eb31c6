"""fuse-activation: merge a relu or clip into the dense/conv that produces its only input.

Expects a float graph. Guarantees the same function; fused layers carry act="relu" or act="clip"
with clip_lo/clip_hi, which the quantize passes turn into the requantisation's lo/hi. Linear in the
graph size: the producer and consumer maps are built once and kept up to date."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FuseActivation:
    def run(self, graph, ctx):
        g = graph.copy()
        users = g.consumers()
        prods = g.producers()
        fused = set()
        for n in [n for n in g.nodes if n.op in ("relu", "clip")]:
            p = prods.get(n.inputs[0])
            if p is None or p.op not in ("dense", "conv2d") or p.attr("act") != "none":
                continue
            if len(users[p.outputs[0]]) != 1 or p.outputs[0] in g.outputs:
                continue
            if n.op == "relu":
                p.attrs["act"] = "relu"
            else:
                p.attrs.update(act="clip", clip_lo=float(n.attr("min")), clip_hi=float(n.attr("max")))
            del g.types[p.outputs[0]]
            p.outputs = [n.outputs[0]]
            prods[n.outputs[0]] = p
            fused.add(id(n))
        g.nodes = [n for n in g.nodes if id(n) not in fused]
        return g


PASS = FuseActivation
