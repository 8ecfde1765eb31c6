"""BERT-tiny (Hugging Face BertForSequenceClassification, eager attention) through both PyTorch ONNX
exporters: the float import (embedding, layer_norm, the attention-mask chain, matmul of activations,
softmax, GELU via Erf) matches onnxruntime; quantising is refused clearly until the integer forms exist."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (make test installs the CPU build)")
pytest.importorskip("transformers")

from cli_util import assert_user_error, lbc  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _train_module():
    spec = importlib.util.spec_from_file_location("bert_tiny_train", ROOT / "examples/bert_tiny/train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """BERT-tiny at random initialisation (fixed seed), exported by both exporters at sequence 16."""
    import torch
    train = _train_module()
    out = tmp_path_factory.mktemp("bert_tiny")
    torch.manual_seed(0)
    train.export(train.build_model().eval(), out, seq=16)
    ids, mask, _ = train.make_data(12, 16, seed=3)
    return out, ids, mask


def _ort(path, ids, mask):
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input_ids": ids[i:i + 1], "attention_mask": mask[i:i + 1]})[0]
                           for i in range(len(ids))])


@pytest.mark.parametrize("name", ["model.onnx", "model_dynamo.onnx"])
def test_float_import_matches_onnxruntime(exported, name):
    from lbc.frontends.onnx import load_onnx
    from lbc.ir.interpreter import run
    out, ids, mask = exported
    g = load_onnx(out / name)
    assert {n.op for n in g.nodes} >= {"embedding", "layer_norm", "matmul", "softmax", "ne_zero", "where"}
    ours = run(g, {"input_ids": ids, "attention_mask": mask})[0]
    ref = _ort(out / name, ids, mask)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5)
    # the mask matters: padding changed to other tokens leaves the logits unchanged, in both
    ids2 = np.where(mask == 0, 1234, ids)
    np.testing.assert_allclose(run(g, {"input_ids": ids2, "attention_mask": mask})[0], ours, rtol=0, atol=2e-5)
    # and unmasking the padding changes them (the mask is not ignored)
    assert np.abs(run(g, {"input_ids": ids2, "attention_mask": np.ones_like(mask)})[0] - ours).max() > 1e-4


def test_embedding_refuses_out_of_range_token_ids(exported):
    from lbc.frontends.onnx import load_onnx
    from lbc.ir.interpreter import run
    out, ids, mask = exported
    g = load_onnx(out / "model.onnx")
    bad = ids.copy()
    bad[0, 1] = 30522
    with pytest.raises(ValueError, match="token id 30522 is outside the table's 30522 rows"):
        run(g, {"input_ids": bad, "attention_mask": mask})


def test_quantising_is_refused_clearly(exported, tmp_path):
    out, _, _ = exported
    assert_user_error(lbc("compile", out / "model.onnx", "--target", "host", "--quant", "int8", "-o", tmp_path / "b"),
                      "embedding", "layer_norm")
