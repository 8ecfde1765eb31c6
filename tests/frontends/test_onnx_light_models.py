"""The real architectures in the onnx wheel's backend-test `light/` models (squeezenet, vgg19,
densenet121, inception v1/v2, resnet50, shufflenet, alexnet, zfnet512): each imports (constant
Shape/ConstantOfShape chains fold, unused Dropout masks are fine, LRN and Sum are implemented)."""

import os

import onnx
import pytest

from lbc.frontends import load_model

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = sorted(f for f in os.listdir(LIGHT) if f.endswith(".onnx")) if os.path.isdir(LIGHT) else []


@pytest.mark.skipif(not MODELS, reason="this onnx wheel has no light/ models")
@pytest.mark.parametrize("name", MODELS)
def test_light_model_imports(name):
    g = load_model(os.path.join(LIGHT, name))
    assert g.nodes and g.outputs
    assert len(g.inputs) == 1 and g.types[g.inputs[0]].shape[1:] == (3, 224, 224)
