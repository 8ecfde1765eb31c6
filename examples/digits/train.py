"""Train the digits MLP (64-64-32-10, ReLU) on scikit-learn's bundled 8x8 digits and export it to ONNX.

No downloads: the data ships with scikit-learn. Writes, next to this script:
  mlp.onnx    the float model (input "pixels" [N, 64] in [0, 1], output "logits" [N, 10])
  calib.npy   256 training images for activation calibration
  test.npz    the held-out split: x [N, 64] float32, y [N] int64
Deterministic: fixed split and seeds, so re-running reproduces the committed files.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = Path(__file__).resolve().parent
HIDDEN = (64, 32)


def load_split():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(x, d.target.astype(np.int64), test_size=0.2, random_state=0, stratify=d.target)


def to_onnx(clf):
    nodes, inits = [], []
    prev = "pixels"
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        last = i == len(clf.coefs_) - 1
        out = "logits" if last else f"h{i}"
        inits += [numpy_helper.from_array(w.astype(np.float32), f"fc{i}.weight"),
                  numpy_helper.from_array(b.astype(np.float32), f"fc{i}.bias")]
        nodes.append(helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"],
                                      [out if last else f"fc{i}.out"], name=f"fc{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [f"fc{i}.out"], [out], name=f"relu{i}"))
        prev = out
    graph = helper.make_graph(
        nodes, "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="lbc-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    xtr, xte, ytr, yte = load_split()
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", alpha=1e-3, max_iter=600,
                        random_state=0).fit(xtr, ytr)
    print(f"float accuracy on the held-out split: {clf.score(xte, yte):.4f} ({len(yte)} images)")
    onnx.save(to_onnx(clf), HERE / "mlp.onnx")
    np.save(HERE / "calib.npy", xtr[:256])
    np.savez(HERE / "test.npz", x=xte, y=yte)


if __name__ == "__main__":
    main()
