"""Benchmark of the NES target: cycles per inference (min/mean/max over test inputs, measured under
sim65 and checked against py65 on the ROM image), cycles per MAC and per nonzero weight, per-layer
cycles (py65 stops at the layer labels), ROM and RAM bytes.

Models:
  digits    examples/digits/mlp.onnx (64-64-32-10, 6,464 MACs)
  nes_cnn   examples/nes_cnn/qat.pt2: conv 3x3 1->8 + maxpool + conv 3x3 8->16 + maxpool + dense 64->10,
            ternary QAT on 8x8 digits (23,680 MACs): cycles per MAC of each convolution (window kernel)
  nes49     the seed NES project's shape, 49-49-24-10 (7x7 input, 3,817 MACs), built here with
            onnx.helper from a quickly trained scikit-learn MLP on the 8x8 digits resampled to 7x7
            (deterministic, no downloads). The ternary runs use a copy fine-tuned for 12 epochs with
            ternary weights in the forward pass (straight-through estimator, lbc's own per-channel
            weight quantiser), since plain post-training ternarisation loses ~30 points here.

Writes bench/results/nes.json. Run: .venv/bin/python bench/nes.py [--quick]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lbc import driver
from lbc.ir.interpreter import run as interpret
from lbc.ir.quant import quantize_input
from lbc.runtime.nes import harness as H

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
NES_CNN = ROOT / "examples" / "nes_cnn"
RESULTS = ROOT / "bench" / "results" / "nes.json"
NTSC_FRAME = 29780
SEED_NES_CYCLES = 32_490_000  # ErikPelli/nes-ai, Q16.16 cc65, measured under sim65 (reference notes)


def resample_7x7(x8):  # noqa: D401
    """8x8 images -> 7x7 by area averaging (each output pixel covers 8/7 input pixels)."""
    m = np.zeros((7, 8))
    for o in range(7):
        a, b = o * 8 / 7, (o + 1) * 8 / 7
        for i in range(8):
            m[o, i] = max(0.0, min(b, i + 1) - max(a, i))
    m /= m.sum(axis=1, keepdims=True)
    x = x8.reshape(-1, 8, 8)
    return np.einsum("oi,nij,pj->nop", m, x, m).reshape(len(x8), 49).astype(np.float32)


def _ternary_finetune(W, B, x, y, epochs=12, lr=3e-3, seed=0):
    """A few epochs of ternary-aware training in numpy (STE): the forward pass uses the weights as
    lbc's quantize-ternary pass will quantise them, gradients update the float weights."""
    from lbc.ir.dtypes import QUANT_DTYPES
    from lbc.passes.quantize import quantize_weights
    dt = QUANT_DTYPES["ternary"]

    def fq(w):
        q, s = quantize_weights(w, dt, True)
        return q * s[:, None]

    W, B = [w.copy() for w in W], [b.copy() for b in B]
    params = W + B
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    rng, t = np.random.default_rng(seed), 0
    for _ in range(epochs):
        perm = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            xb, yb = x[perm[i:i + 32]], y[perm[i:i + 32]]
            Wq = [fq(w) for w in W]
            hs, zs, h = [xb], [], xb
            for l in range(3):
                z = h @ Wq[l].T + B[l]
                zs.append(z)
                h = np.maximum(z, 0) if l < 2 else z
                hs.append(h)
            g = np.exp(h - h.max(1, keepdims=True))
            g /= g.sum(1, keepdims=True)
            g[np.arange(len(yb)), yb] -= 1
            g /= len(yb)
            gw, gb = [None] * 3, [None] * 3
            for l in (2, 1, 0):
                gw[l], gb[l] = g.T @ hs[l] + 1e-4 * W[l], g.sum(0)
                if l:
                    g = (g @ Wq[l]) * (zs[l - 1] > 0)
            t += 1
            for k, (p, gr) in enumerate(zip(params, gw + gb)):
                m1[k] = 0.9 * m1[k] + 0.1 * gr
                m2[k] = 0.999 * m2[k] + 0.001 * gr * gr
                p -= lr * (m1[k] / (1 - 0.9 ** t)) / (np.sqrt(m2[k] / (1 - 0.999 ** t)) + 1e-8)
    return W, B


def _save_mlp(path, W, B, name):
    nodes, inits, prev = [], [], "pixels"
    for i, (w, b) in enumerate(zip(W, B)):
        last = i == len(W) - 1
        inits += [numpy_helper.from_array(w.T.astype(np.float32), f"fc{i}.weight"),
                  numpy_helper.from_array(b.astype(np.float32), f"fc{i}.bias")]
        out = "logits" if last else f"fc{i}.out"
        nodes.append(helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"], [out], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            out = f"h{i}"
        prev = out
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 49])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="lbc-bench")
    m.ir_version = 8
    onnx.save(m, str(path))


def nes49_model(folder):
    """Train 49-49-24-10 (ReLU) on the 7x7 digits; write nes49.onnx (float) and nes49_tern.onnx
    (ternary fine-tuned). Returns (calibration inputs, test x, test y, float accuracy)."""
    import warnings
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    d = load_digits()
    x = resample_7x7(d.data / 16.0)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=0, stratify=d.target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(49, 24), activation="relu", alpha=1e-3, max_iter=400,
                            random_state=0).fit(xtr, ytr)
    W, B = [w.T for w in clf.coefs_], list(clf.intercepts_)
    _save_mlp(folder / "nes49.onnx", W, B, "nes49_mlp")
    Wt, Bt = _ternary_finetune(W, B, xtr, ytr)
    _save_mlp(folder / "nes49_tern.onnx", Wt, Bt, "nes49_mlp_t")
    return xtr[:256], xte, yte, float(clf.score(xte, yte))


def _cnn_data():
    import importlib.util
    spec = importlib.util.spec_from_file_location("nes_cnn_data", NES_CNN / "data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.load()


def _float_accuracy(model, x, y):
    from lbc.frontends import load_model
    return float(np.mean(interpret(load_model(model), x)[0].argmax(1) == y))


def measure(name, model, calib, x, y, quant, out, kernel="auto", n_each=100, float_acc=None):
    t0 = time.perf_counter()
    c = driver.compile_model(model, out, "nes", quant, calib, target_options={"kernel": kernel})
    compile_s = time.perf_counter() - t0
    g = c.graph
    xq = quantize_input(x, g.types[g.inputs[0]].exp)
    ref = interpret(g, xq)[0].reshape(len(x), -1)
    m = driver.read_manifest(out)
    yq, stats = c.target.run(out, m, xq)
    yq = yq.reshape(len(x), -1)
    exact = int(np.sum(np.all(yq == ref, axis=1)))
    cyc = np.array(stats["cycles"])
    # py65 on the ROM image: the same cycles, and where they go per layer
    labels = H.read_labels(out / "model.lbl")
    rom = H.Py65Rom(out / "model.nes", labels)
    layer_labels = [r["layer"] for r in c.report["emit"]["layers"]]
    stops = [f"lbc_L{i}" for i in range(len(layer_labels))]
    hot = sorted((a, labels[k[:-2] + "_f"], int(k.split("_L")[1].split("n")[0]))
                 for k, a in labels.items() if k.endswith("_c") and k[:-2] + "_f" in labels)
    per_layer, py65_same, hot_cycles = [], 0, []
    hot_layer = np.zeros(len(layer_labels))
    for i in range(min(8, len(x))):
        rom.poke(labels["lbc_input"], xq[i].reshape(-1).view(np.uint8))
        total, marks = rom.call("lbc_run", stops=stops, ranges=[(a, b) for a, b, _ in hot])
        hot_cycles.append(rom.range_cycles)
        for (_, _, li), cyc_r in zip(hot, rom.range_each):
            hot_layer[li] += cyc_r / min(8, len(x))
        py65_same += int(total == cyc[i])
        bounds = [marks[s] for s in stops] + [total]
        per_layer.append(np.diff(bounds))
    per_layer = np.mean(per_layer, axis=0)
    layers = []
    for li, (r, lc) in enumerate(zip(c.report["emit"]["layers"], per_layer)):
        # a window kernel runs its weights at every output position: per nonzero weight *use*
        uses = max(r["nonzero"] * r["positions"], 1)
        layers.append({**{k: r[k] for k in ("layer", "op", "kernel", "dtype", "in", "out", "positions", "macs",
                                            "nonzero", "zeros", "acc_bits", "rom_bytes", "zeros_saved")},
                       "cycles": round(float(lc), 1),
                       "cycles_per_mac": round(float(lc) / r["macs"], 3) if r["macs"] else None,
                       "cycles_per_nonzero_weight": round(float(lc) / uses, 3) if r["nonzero"] else None,
                       "hot_code_cycles_per_nonzero_weight":
                           round(hot_layer[li] / r["adds"], 3) if r["kernel"] == "unrolled" and r["adds"] else None})
        if layers[-1]["hot_code_cycles_per_nonzero_weight"]:
            # a zero weight emits no add: it saves what a nonzero one costs here (bytes and measured cycles)
            per = layers[-1]["hot_code_cycles_per_nonzero_weight"] * r["adds"] / max(r["nonzero"], 1)
            layers[-1]["zeros_saved"] = {"rom_bytes": r["zeros_saved"]["rom_bytes"],
                                         "cycles": int(round(r["zeros"] * per))}
    macs = sum(r["macs"] for r in layers)
    hot_terms = sum(r["adds"] for r in c.report["emit"]["layers"] if r["kernel"] == "unrolled")
    nnz = sum(r["nonzero"] * r["positions"] for r in layers)
    convs = [r for r in layers if r["op"] == "conv2d"]
    segs = c.report["build"]["segments"]
    acc = float(np.mean(yq.argmax(1) == y)) if y is not None else None
    res = {
        "model": name, "quant": quant, "kernel_option": kernel, "samples": len(x),
        "outputs_identical_to_interpreter": f"{exact}/{len(x)}", "bit_exact": exact == len(x),
        "py65_rom_cycles_equal_sim65": f"{py65_same}/{min(8, len(x))}",
        "cycles_min": int(cyc.min()), "cycles_mean": round(float(cyc.mean()), 1), "cycles_max": int(cyc.max()),
        "ntsc_frames_max": round(int(cyc.max()) / NTSC_FRAME, 3),
        "macs": macs, "nonzero_weights": nnz,
        "cycles_per_mac": round(float(cyc.mean()) / macs, 3),
        "cycles_per_nonzero_weight": round(float(cyc.mean()) / max(nnz, 1), 3),
        "hot_code_cycles_per_nonzero_weight": round(float(np.mean(hot_cycles)) / max(hot_terms, 1), 3)
        if hot_terms else None,
        "speedup_vs_seed_q16_16": round(SEED_NES_CYCLES / float(cyc.mean()), 1) if name == "nes49" else None,
        "rom": {"model_prg_bytes": c.report["emit"]["model_rom_bytes"], "segments": segs,
                "nes_file_bytes": (out / "model.nes").stat().st_size},
        "ram": {"zero_page_bytes": c.report["emit"]["zp_bytes"], "other_ram_bytes": c.report["emit"]["ram_bytes"]},
        "accuracy_on_target": acc, "float_accuracy": float_acc,
        "layers": layers, "compile_seconds": round(compile_s, 2),
    }
    if convs:  # the convolutions with the pooling that follows them (the layer stops are at the kernels)
        res["conv_layers_cycles_per_mac"] = round(sum(r["cycles"] for r in convs) / sum(r["macs"] for r in convs), 3)
    print(f"{name:7} {quant:8} {kernel:8} cycles min/mean/max {res['cycles_min']}/{res['cycles_mean']}/"
          f"{res['cycles_max']} ({res['ntsc_frames_max']} frames)  {res['cycles_per_mac']} c/MAC  "
          f"{res['cycles_per_nonzero_weight']} c/nz (hot {res['hot_code_cycles_per_nonzero_weight']})  PRG {res['rom']['model_prg_bytes']} B  "
          f"ZP {res['ram']['zero_page_bytes']} B  exact {res['outputs_identical_to_interpreter']}  "
          f"acc {acc if acc is None else round(acc, 4)}")
    for r in layers:
        print(f"        {r['layer'][:12]:12} {r['kernel']:8} {r['dtype']:8} {r['cycles']:9.1f} c  "
              f"{r['cycles_per_mac'] or 0:6.2f} c/MAC  {r['cycles_per_nonzero_weight'] or 0:6.2f} c/nz "
              f"(hot {r['hot_code_cycles_per_nonzero_weight']})  "
              f"{r['rom_bytes']:6} B  zeros saved "
              f"{r['zeros_saved']['rom_bytes']} B, ~{r['zeros_saved']['cycles']} c")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="ternary only, fewer samples")
    args = ap.parse_args(argv)
    n = 100 if args.quick else 360
    results = []
    with tempfile.TemporaryDirectory(prefix="lbc-bench-nes-") as tmp:
        tmp = Path(tmp)
        calib, xte, yte, facc = nes49_model(tmp)
        np.save(tmp / "nes49_calib.npy", calib)
        t = np.load(DIGITS / "test.npz")
        quants = ("ternary",) if args.quick else ("ternary", "int2", "pentary", "int4")
        for q in quants:
            model = tmp / ("nes49_tern.onnx" if q == "ternary" else "nes49.onnx")
            results.append(measure("nes49", model, tmp / "nes49_calib.npy", xte[:n], yte[:n], q,
                                   tmp / f"nes49_{q}", float_acc=facc))
        if not args.quick:
            for kernel in ("loop", "table"):
                results.append(measure("nes49", tmp / "nes49_tern.onnx", tmp / "nes49_calib.npy", xte[:n], yte[:n],
                                       "ternary", tmp / f"nes49_ternary_{kernel}", kernel=kernel, float_acc=facc))
        for q in quants:
            results.append(measure("digits", DIGITS / "mlp.onnx", DIGITS / "calib.npy", t["x"][:n], t["y"][:n], q,
                                   tmp / f"digits_{q}"))
        xtr, xte_c, _, yte_c = _cnn_data()
        results.append(measure("nes_cnn", NES_CNN / "qat.pt2", None, xte_c[:n], yte_c[:n], "ternary", tmp / "nes_cnn",
                               float_acc=_float_accuracy(NES_CNN / "float.pt2", xte_c, yte_c)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"target": "nes", "anchor": {
        "seed_nes_ai_q16_16_cycles": SEED_NES_CYCLES, "bitnet6502_cycles_per_weight": "41-47",
        "goal_cycles": 30000, "ntsc_frame_cycles": NTSC_FRAME}, "results": results}, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    bad = [f"{r['model']} {r['quant']} {r['kernel_option']} ({r['outputs_identical_to_interpreter']})"
           for r in results if not r["bit_exact"]]
    if bad:
        print(f"bench: outputs differ from the reference interpreter: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
