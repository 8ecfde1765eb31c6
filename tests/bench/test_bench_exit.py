"""The benchmarks exit non-zero when any compiled output differs from the reference interpreter (the
measurements themselves are replaced by fixed records here: this checks the verdict, not the numbers)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RV_RECORD = {"instructions_per_inference": 1, "instructions_per_mac": 1.0, "est_ch32v003_cycles": 1.0,
             "flash_bytes": 1, "ram_bytes": 1}


@pytest.mark.parametrize("exact", [True, False])
def test_rv32ec_bench_exit_code(tmp_path, monkeypatch, capsys, exact):
    b = load("rv32ec")
    calls = []

    def measure(model, quant, *a, **k):
        calls.append(quant)
        return {**RV_RECORD, "bit_exact": exact or len(calls) != 3}
    monkeypatch.setattr(b, "measure", measure)
    assert b.main(["--quick", "-o", str(tmp_path / "r.json")]) == (0 if exact else 1)
    assert (tmp_path / "r.json").exists()
    if not exact:
        assert "digits_int2" in capsys.readouterr().err


@pytest.mark.parametrize("exact", [True, False])
def test_nes_bench_exit_code(tmp_path, monkeypatch, exact):
    b = load("nes")
    monkeypatch.setattr(b, "RESULTS", tmp_path / "nes.json")
    monkeypatch.setattr(b, "nes49_model", lambda folder: (None, [0] * 4, [0] * 4, 0.9))
    monkeypatch.setattr(b.np, "save", lambda *a: None)

    def measure(name, model, calib, x, y, quant, out, kernel="auto", **k):
        ok = exact or name != "digits"
        return {"model": name, "quant": quant, "kernel_option": kernel, "bit_exact": ok,
                "outputs_identical_to_interpreter": "4/4" if ok else "3/4"}
    monkeypatch.setattr(b, "measure", measure)
    assert b.main(["--quick"]) == (0 if exact else 1)


@pytest.mark.parametrize("exact", [True, False])
def test_pentary_bench_exit_code(tmp_path, monkeypatch, exact):
    b = load("pentary")
    monkeypatch.setattr(b, "RESULTS", tmp_path / "pentary.json")
    monkeypatch.setattr(b, "ROOT", tmp_path)  # no examples/pentary_cnn there: the CNN run is skipped

    def bench_one(quant, x, y, outdir, *a):
        ok = exact or quant != "int2"
        return {"accuracy": 0.9, "identical_to_interpreter": "9/9" if ok else "8/9", "bit_exact": ok,
                "cycles_per_inference": 1, "cycles_per_mac": 1.0, "program": {"words": 1, "bytes": 1},
                "data": {"words": 1, "bytes": 1}, "image_file_bytes": 1, "zero_pent_fraction": 0.0,
                "weights": {"stored_bits_per_weight": 1.0, "bound_bits_per_weight": 1.0,
                            "entropy_bits_per_weight": 1.0}}, 1.0
    monkeypatch.setattr(b, "bench_one", bench_one)
    assert b.main() == (0 if exact else 1)
    sys.modules.pop("data", None)
