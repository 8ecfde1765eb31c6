"""The NIR frontend: .nir files (HDF5) into stateful graphs; the float graph reproduces the NIR
equations (and snnTorch's own spikes for an exported network); unsupported nodes are refused all at
once; compiled spiking models are bit-exact with the interpreter on host and rv32ec."""

import numpy as np
import pytest

from cli_util import assert_user_error, lbc

nir = pytest.importorskip("nir")

from lbc.driver import compile_model, run_compiled  # noqa: E402
from lbc.errors import LbcError, ModelError, UnsupportedOpError  # noqa: E402
from lbc.frontends import load_model  # noqa: E402
from lbc.ir.interpreter import run  # noqa: E402
from lbc.ir.verify import verify  # noqa: E402

DT = 1e-4


def mlp(path, sizes=(8, 6, 3), beta=0.875, seed=0, neuron="LIF"):
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "input"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        tau = np.full(b, DT / (1 - beta))
        nodes[f"fc{i}"] = nir.Affine(rng.normal(0, 0.6, (b, a)).astype(np.float32),
                                     rng.normal(0, 0.1, b).astype(np.float32))
        if neuron == "LIF":
            nodes[f"n{i}"] = nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(b), v_threshold=np.ones(b))
        else:
            nodes[f"n{i}"] = nir.CubaLIF(tau_syn=np.full(b, DT / 0.5), tau_mem=tau, r=tau / DT, v_leak=np.zeros(b),
                                         v_threshold=np.ones(b), w_in=np.full(b, 2.5))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        prev = f"n{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "output"))
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges))
    return path


def spikes(n, t, k, rate=0.3, seed=1):
    return (np.random.default_rng(seed).random((n, t, k)) < rate).astype(np.float32)


def test_lif_graph_follows_the_nir_equations(tmp_path):
    g = verify(load_model(mlp(tmp_path / "m.nir")))
    assert g.stateful and len(g.states) == 2
    assert g.meta["spike_inputs"] == ["input"]
    ng = nir.read(str(tmp_path / "m.nir"))
    x = spikes(3, 9, 8)
    (y,) = run(g, x)
    # forward Euler of tau dv/dt = (v_leak - v) + r I, spike when v > v_threshold, then v = v_reset
    for s in range(3):
        v = [np.zeros(6), np.zeros(3)]
        for t in range(9):
            h = x[s, t]
            for i in range(2):
                fc, ne = ng.nodes[f"fc{i}"], ng.nodes[f"n{i}"]
                cur = fc.weight @ h + fc.bias
                u = v[i] + DT / ne.tau * (ne.v_leak - v[i] + ne.r * cur)
                h = (u > ne.v_threshold).astype(np.float64)
                v[i] = np.where(h > 0, ne.v_reset, u)
            assert (y[s, t] == h).all()


def test_snntorch_export_loads_and_matches_snntorch(tmp_path):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir
    from snntorch.utils import reset
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 7),
        snn.Leaky(beta=torch.full((7,), 0.9), threshold=torch.full((7,), 0.8), reset_mechanism="zero",
                  init_hidden=True),
        torch.nn.Linear(7, 4),
        snn.Leaky(beta=torch.full((4,), 0.85), threshold=torch.ones(4), reset_mechanism="zero", init_hidden=True,
                  output=True))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    nir.write(str(tmp_path / "s.nir"), export_to_nir(net, torch.zeros(12)))
    g = load_model(tmp_path / "s.nir")
    x = spikes(4, 20, 12, 0.4)
    (y,) = run(g, x)
    reset(net)
    with torch.no_grad():
        ref = torch.stack([net(torch.tensor(x[:, t]))[0] for t in range(20)], dim=1).numpy()
    assert ref.sum() > 0
    assert (y == ref).all()


def test_unsupported_nodes_are_refused_all_at_once(tmp_path):
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "d": nir.Delay(delay=np.ones(4)),
             "p": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "output": nir.Output(output_type={"output": np.array([4])})}
    nir.write(str(tmp_path / "u.nir"), nir.NIRGraph(nodes=nodes, edges=[("input", "d"), ("d", "p"), ("p", "output")]))
    with pytest.raises(UnsupportedOpError) as e:
        load_model(tmp_path / "u.nir")
    assert "Delay" in str(e.value) and "AvgPool2d" in str(e.value)


def test_cycles_and_corrupt_files_are_user_errors(tmp_path):
    tau = np.full(3, 1e-3)
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "a": nir.LIF(tau=tau, r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
             "b": nir.Linear(weight=np.eye(3, dtype=np.float32)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    nir.write(str(tmp_path / "c.nir"), nir.NIRGraph(nodes=nodes, edges=[("input", "a"), ("a", "b"), ("b", "a"),
                                                                        ("a", "output")]))
    with pytest.raises(LbcError):
        load_model(tmp_path / "c.nir")
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="not a readable NIR file"):
        load_model(tmp_path / "bad.nir")
    assert_user_error(lbc("inspect", tmp_path / "bad.nir"), "not a readable NIR file")


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF"])
def test_host_is_bit_exact_and_resets_per_sample(tmp_path, neuron):
    m = mlp(tmp_path / "m.nir", neuron=neuron)
    c = compile_model(m, tmp_path / "out", target="host", calibration=spikes(64, 10, 8))
    x = spikes(6, 12, 8, seed=3)
    y, yq, _ = run_compiled(tmp_path / "out", x)
    (ref,) = run(c.graph, x.astype(np.int8))
    assert yq.shape == (6, 12, 3) and ref.sum() > 0
    assert (yq == ref).all()
    # the same sequence twice in a batch gives the same outputs (state is reset per sample)
    y2, yq2, _ = run_compiled(tmp_path / "out", np.concatenate([x[:1], x[:1]]))
    assert (yq2[0] == yq2[1]).all() and (yq2[0] == yq[0]).all()
    header = (tmp_path / "out" / "model.h").read_text()
    assert "void lbc_reset(void);" in header and "void lbc_step(" in header


def test_rv32ec_streaming_is_bit_exact(tmp_path):
    m = mlp(tmp_path / "m.nir", sizes=(20, 9, 5))
    c = compile_model(m, tmp_path / "out", target="rv32ec", quant="int8", calibration=spikes(64, 10, 20))
    x = spikes(5, 14, 20, seed=4)
    y, yq, stats = run_compiled(tmp_path / "out", x)
    (ref,) = run(c.graph, x.astype(np.int8))
    assert ref.sum() > 0
    assert (yq == ref).all()
    assert stats["instructions_per_step"] > 0


def test_rv32ec_refuses_what_it_cannot_stream(tmp_path):
    m = mlp(tmp_path / "m.nir", neuron="CubaLIF")
    r = lbc("compile", m, "--target", "rv32ec", "-o", tmp_path / "o")
    assert_user_error(r, "not supported in a model with state by target rv32ec", "li (n0.syn)")
    assert_user_error(lbc("compile", m, "--target", "pentary", "-o", tmp_path / "p"), "does not compile models with state")


def test_nes_streaming_is_bit_exact(tmp_path):
    m = mlp(tmp_path / "m.nir", sizes=(20, 9, 5))
    c = compile_model(m, tmp_path / "out", target="nes", quant="int4", calibration=spikes(64, 10, 20))
    x = spikes(5, 14, 20, seed=4)
    y, yq, stats = run_compiled(tmp_path / "out", x)
    (ref,) = run(c.graph, x.astype(np.int8))
    assert ref.sum() > 0
    assert (yq == ref).all()
    assert stats["cycles_per_step_mean"] > 0
    inc = (tmp_path / "out" / "model.inc").read_text()
    assert "jsr lbc_reset" in inc and "jsr lbc_step" in inc


def test_nes_refuses_what_16_bits_cannot_hold(tmp_path):
    # a leak of 2^-8 (beta = 0.996) bounds the membrane only at 256 x the current: beyond int16
    m = mlp(tmp_path / "slow.nir", sizes=(400, 9, 5), beta=1 - 2**-8)
    assert_user_error(lbc("compile", m, "--target", "nes", "--quant", "int4", "-o", tmp_path / "o"),
                      "may not fit 16 bits", "lif n0")
    # a leak that is not a shift
    m = mlp(tmp_path / "odd.nir", sizes=(20, 9, 5), beta=0.9)
    assert_user_error(lbc("compile", m, "--target", "nes", "--quant", "int4", "-o", tmp_path / "o2"),
                      "needs a decay that is a shift")
