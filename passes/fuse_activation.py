"""fuse-activation: merge a relu or clip into the dense/conv that produces its only input.

Expects a float graph. Guarantees the same function; fused layers carry act="relu" or act="clip"
with clip_lo/clip_hi, which the quantize passes turn into the requantisation's lo/hi."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FuseActivation:
    def run(self, graph, ctx):
        g = graph.copy()
        for n in [n for n in g.nodes if n.op in ("relu", "clip")]:
            users = g.consumers()
            p = g.producers().get(n.inputs[0])
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
            g.nodes.remove(n)
        return g


PASS = FuseActivation
