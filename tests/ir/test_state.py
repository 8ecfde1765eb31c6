"""State in the IR: declared state tensors, step/reset semantics of the interpreter, the text form,
the verifier, static storage in plan-memory, and the integer semantics of the spiking ops at their
edges (strict threshold, leak rounding, reset, saturation)."""

import numpy as np
import pytest

from lbc.ir.dtypes import B1, F32, I32
from lbc.ir.graph import Graph, Node, TensorType
from lbc.ir.interpreter import reset_state, run, step
from lbc.ir.text import parse_graph, print_graph
from lbc.ir.verify import VerifyError, verify
from lbc.passes import PassContext, get_pass


def lif_graph(n=3, dtype=I32, attrs=None, init=0):
    """x (i32 current) -> lif -> spikes, with state v."""
    g = Graph("lif", ["x"], ["z"], [], {})
    g.types["x"] = TensorType(dtype, (1, n))
    g.types["z"] = TensorType(B1, (1, n), 0)
    g.types["v.next"] = TensorType(dtype, (1, n))
    g.add_state("v", TensorType(dtype, (1, n)), np.full(n, init), "v.next")
    g.nodes.append(Node("lif", "lif", ["x", "v"], ["z", "v.next"], dict(attrs or {})))
    return g


INT = {"d": (1,), "s": 3, "c": (0,), "thr": (100,), "vr": (0,), "reset": "zero"}


def test_threshold_is_strict_and_reset_is_immediate():
    g = verify(lif_graph(attrs=INT))
    # u = 0 - 0 + x: exactly at the threshold no spike; one past it spikes and resets to vr = 0
    (z,), st = step(g, np.array([[100, 101, -5]], np.int32), reset_state(g, 1))
    assert z.tolist() == [[0, 1, 0]]
    assert st["v"].tolist() == [[100, 0, -5]]


def test_leak_rounds_half_up_with_arithmetic_shift():
    g = lif_graph(n=6, attrs=INT)
    v = np.array([[4, 3, -4, -5, 12, -12]], np.int32)
    _, st = step(g, np.zeros((1, 6), np.int32), {"v": v})
    # leak = (v + 4) >> 3: 1, 0, 0, -1, 2, -1
    assert st["v"].tolist() == [[3, 3, -4, -4, 10, -11]]


def test_subtract_reset_and_constant():
    g = lif_graph(n=2, attrs={**INT, "reset": "subtract", "vr": (100,), "c": (7,), "d": (0,), "s": 0})
    (z,), st = step(g, np.array([[94, 93]], np.int32), {"v": np.zeros((1, 2), np.int32)})
    assert z.tolist() == [[1, 0]]  # 94 + 7 = 101 > 100; 93 + 7 = 100 is not
    assert st["v"].tolist() == [[1, 100]]


def test_membrane_saturates_at_2_pow_30():
    g = lif_graph(n=2, attrs={**INT, "d": (0,), "s": 0, "thr": (2**31 - 1,)})
    v = np.array([[2**30 - 1, -(2**30) + 1]], np.int32)
    _, st = step(g, np.array([[1, -1]], np.int32), {"v": v})
    assert st["v"].tolist() == [[2**30, -(2**30)]]  # exactly at the bound
    _, st = step(g, np.array([[1, -1]], np.int32), st)
    assert st["v"].tolist() == [[2**30, -(2**30)]]  # one past it stays


def test_sequences_reset_per_sample():
    g = lif_graph(attrs=INT, init=50)
    rng = np.random.default_rng(1)
    seq = rng.integers(-20, 60, size=(4, 7, 3)).astype(np.int32)
    (y,) = run(g, seq)
    assert y.shape == (4, 7, 3)
    for i in range(4):
        state = reset_state(g, 1)
        assert state["v"].tolist() == [[50, 50, 50]]
        for t in range(7):
            (z,), state = step(g, seq[i:i + 1, t], state)
            assert (z[0] == y[i, t]).all()


def test_text_form_round_trips_states():
    g = lif_graph(attrs=INT, init=5)
    text = print_graph(g)
    assert "state %v : i32[1, 3] = [5, 5, 5] next %v.next" in text
    g2 = parse_graph(text)
    assert print_graph(g2) == text
    assert g2.states["v"].next == "v.next"
    verify(g2)


def test_verifier_rejects_bad_states():
    g = lif_graph(attrs=INT)
    g.nodes.append(Node("relu", "late", ["v"], ["r"]))
    g.types["r"] = TensorType(I32, (1, 3))
    with pytest.raises(VerifyError, match="read by late after its next value"):
        verify(g)
    g = lif_graph(attrs=INT)
    g.add_state("w", TensorType(I32, (1, 3)), np.zeros(3), "nowhere")
    with pytest.raises(VerifyError, match="not computed by a node"):
        verify(g)
    g = lif_graph(attrs=INT)
    g.types["v.next"] = TensorType(I32, (1, 3), 2)
    with pytest.raises(VerifyError, match="its next value"):
        verify(g)


def test_plan_memory_gives_states_static_places():
    g = lif_graph(attrs=INT)
    # more tensors after the lif: none may share the state's bytes
    g.types["r"] = TensorType(B1, (1, 3), 0)
    g.nodes.append(Node("relu", "r", ["z"], ["r"]))
    g.outputs = ["r"]
    g.meta["quant"] = "int8"
    p = get_pass("plan-memory").run(g, PassContext())
    plan = p.meta["memory_plan"]
    off = plan["offsets"]
    assert off["v.next"] == off["v"]
    assert plan["state_bytes"] == 12
    spans = {t: (off[t], off[t] + (12 if t.startswith("v") else 3)) for t in ("x", "z", "r")}
    for t, (a, b) in spans.items():
        assert b <= off["v"] or a >= off["v"] + 12, t


def test_float_lif_matches_discretised_nir_equations():
    attrs = {"beta": (0.9,), "gain": (0.5,), "v_leak": (0.2,), "threshold": (1.0,), "v_reset": (-0.1,)}
    g = lif_graph(n=1, dtype=F32, attrs=attrs)
    g.types["z"] = TensorType(F32, (1, 1))
    x = np.array([[[1.0], [1.0], [1.5], [0.0]]], np.float32)
    (z,) = run(g, x)
    v, zs = 0.0, []
    for i in x[0, :, 0]:
        u = 0.9 * v + 0.1 * 0.2 + 0.5 * i
        zs.append(float(u > 1.0))
        v = -0.1 if u > 1.0 else u
    assert z[0, :, 0].tolist() == zs
