"""lbc.qat: a model trained with the QAT layers compiles to firmware whose outputs equal the trained
model's quantized forward pass bit for bit; QAT keeps accuracy close to float on the digits test
split; models the integer forward cannot run are reported with their module names."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (make test installs the CPU build)")
torch.set_num_threads(1)  # tiny models: extra threads only contend (5x slower on 2 busy cores)
from torch import nn  # noqa: E402

import lbc  # noqa: E402
from lbc.backends import available_targets  # noqa: E402
from lbc.qat import QATError, QuantAct, QuantConv2d, QuantLinear, accuracy, fit, freeze  # noqa: E402

QUANTS = ["int8", "int4", "int2", "ternary", "pentary"]


@pytest.fixture(scope="module")
def split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)  # [N, 64]; the CNN tests reshape to [N, 1, 8, 8]
    return train_test_split(x, d.target.astype(np.int64), test_size=0.2, random_state=0, stratify=d.target)




def qat_mlp(q, hidden=(64, 32)):
    return nn.Sequential(QuantAct(),
                         QuantLinear(64, hidden[0], weight=q), nn.ReLU(), QuantAct(),
                         QuantLinear(hidden[0], hidden[1], weight=q), nn.ReLU(), QuantAct(),
                         QuantLinear(hidden[1], 10, weight=q), QuantAct())


def qat_cnn(q):
    return nn.Sequential(QuantAct(), QuantConv2d(1, 6, 3, padding=1, weight=q), nn.ReLU(), nn.MaxPool2d(2),
                         QuantAct(), QuantConv2d(6, 6, 3, padding=1, groups=2, weight=q), QuantAct(), nn.ReLU(),
                         nn.Flatten(), nn.Dropout(0.1), QuantLinear(96, 10, weight=q), QuantAct())


def _check_bit_exact(model, xte, tmp_path, q, target="host"):
    freeze(model, xte[:2])
    with torch.no_grad():
        want = model(torch.from_numpy(xte)).numpy()
    art = lbc.compile(model, xte[:1], target=target, quant=q, out=tmp_path / f"{target}-{q}")
    got = art.run(xte)
    assert not art.warnings, art.warnings
    np.testing.assert_array_equal(got, want)  # bit for bit: both are q * 2**-exp in float32
    return art


@pytest.mark.parametrize("q", QUANTS)
def test_qat_mlp_compiles_bit_exact(split, tmp_path, q):
    xtr, xte, ytr, yte = split
    torch.manual_seed(0)
    model = fit(qat_mlp(q), xtr, ytr, epochs=4, lr=3e-3)
    _check_bit_exact(model, xte, tmp_path, q)


@pytest.mark.parametrize("q", ["int4", "ternary"])
def test_qat_cnn_compiles_bit_exact(split, tmp_path, q):
    xtr, xte, ytr, yte = split
    torch.manual_seed(1)
    model = fit(qat_cnn(q), xtr.reshape(-1, 1, 8, 8), ytr, epochs=3, lr=3e-3)
    _check_bit_exact(model, xte.reshape(-1, 1, 8, 8), tmp_path, q)


@pytest.mark.parametrize("target", [t for t in ("rv32ec", "nes", "pentary")])
def test_qat_bit_exact_on_small_targets(split, tmp_path, target):
    if target not in available_targets():
        pytest.skip(f"target {target} is not in this tree yet")
    from lbc.backends import get_target
    q = "pentary" if target == "pentary" else ("ternary" if target == "nes" else "int4")
    if q not in get_target(target).quants:
        q = get_target(target).default_quant
    xtr, xte, ytr, yte = split
    torch.manual_seed(0)
    model = fit(qat_mlp(q, (32, 16)), xtr, ytr, epochs=3, lr=3e-3)
    _check_bit_exact(model, xte[:64], tmp_path, q, target)


def test_qat_accuracy_targets(split):
    """Ternary QAT within 1.5 points of float, 4-bit QAT within 1 point (digits test split)."""
    xtr, xte, ytr, yte = split
    torch.manual_seed(0)
    flt = fit(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
              xtr, ytr, epochs=40, lr=3e-3)
    base = accuracy(flt, xte, yte)
    for q, budget in (("ternary", 0.015), ("int4", 0.01)):
        model = qat_mlp(q)
        for dst, src in ((1, 0), (4, 2), (7, 4)):  # start from the float weights
            model[dst].load_state_dict(flt[src].state_dict())
        fit(model, xtr, ytr, epochs=15, lr=1e-3)
        freeze(model, xte[:2])
        acc = accuracy(model, xte, yte)
        assert acc >= base - budget, f"{q} QAT {acc:.4f} vs float {base:.4f}"


def test_freeze_reports_unsupported_structures(split):
    xtr = split[0]
    torch.manual_seed(0)
    model = nn.Sequential(QuantLinear(64, 8), nn.BatchNorm1d(8), QuantAct(), QuantLinear(8, 4), QuantAct())
    model.train()(torch.from_numpy(xtr[:8]))
    with pytest.raises(QATError) as e:
        freeze(model, xtr[:2])
    msg = str(e.value)
    assert "the input of 0 comes from the raw model input" in msg
    assert "QuantAct 2 quantises the result of NativeBatchNormBackward0" in msg


def test_freeze_needs_output_quantizer(split):
    xtr = split[0]
    model = nn.Sequential(QuantAct(), QuantLinear(64, 4))
    model.train()(torch.from_numpy(xtr[:8]))
    with pytest.raises(QATError, match="output of 1 is not quantised"):
        freeze(model, xtr[:2])


def test_uncalibrated_quant_act():
    with pytest.raises(QATError, match="no exponent"):
        freeze(nn.Sequential(QuantAct(), QuantLinear(4, 2), QuantAct()), np.zeros((1, 4), np.float32))


def test_state_dict_round_trip_keeps_exponents(split):
    xtr = split[0]
    a = qat_mlp("ternary")
    a.train()(torch.from_numpy(xtr[:16]))
    b = qat_mlp("ternary")
    b.load_state_dict(a.state_dict())
    assert [m.exp for m in b if isinstance(m, QuantAct)] == [m.exp for m in a if isinstance(m, QuantAct)]


def test_import_lbc_does_not_import_torch():
    code = "import sys, lbc; lbc.compile; assert 'torch' not in sys.modules and 'keras' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
