"""The graph shape the small targets' streaming (stateful spiking) code generators accept, found once
for all of them: chains of a dense layer whose input is spikes (b1) and whose accumulator feeds one
`lif` node, with reshapes between them, ending in the spikes of a LIF layer."""

import numpy as np


def layer_weights(g, dense):
    """A spiking dense layer's integer weights [M, K], bias [M] (zeros when it has none) and each
    neuron's sums of positive and of negative weights (the most one step's spikes can add)."""
    w = np.asarray(g.consts[dense.inputs[1]], dtype=np.int64)
    b = (np.asarray(g.consts[dense.inputs[2]], dtype=np.int64) if len(dense.inputs) > 2
         else np.zeros(w.shape[0], np.int64))
    return w, b, np.clip(w, 0, None).sum(axis=1), np.clip(w, None, 0).sum(axis=1)


def spiking_layers(g, name, where):
    """(the (dense, lif) pairs in graph order, every reason `g` is not such a chain). `name` is the
    target's name, `where` how messages place it ("rv32ec", "the NES")."""
    cons, prod = g.consumers(), g.producers()
    pairs, problems = [], []
    for n in g.nodes:
        if n.op == "reshape":
            continue
        if n.op == "dense":
            users = cons.get(n.outputs[0], [])
            if g.types[n.inputs[0]].dtype.name != "b1" or len(users) != 1 or users[0].op != "lif":
                problems.append(f"dense {n.name}: in a model with state, {name} compiles dense layers that read "
                                f"spikes and feed one LIF neuron layer")
            continue
        if n.op == "lif":
            p = prod.get(n.inputs[0])
            if p is None or p.op != "dense":
                problems.append(f"lif {n.name}: its current must come from a dense layer on {where}")
            else:
                pairs.append((p, n))
            continue
        problems.append(f"op {n.op} ({n.name}) is not supported in a model with state by target {name} "
                        f"(supported: dense on spikes -> lif, reshape)")
    if len(g.outputs) != 1 or prod.get(g.outputs[0]) is None or prod[g.outputs[0]].op != "lif":
        problems.append(f"{name} compiles streaming models whose output is the spikes of a LIF layer")
    return pairs, problems
