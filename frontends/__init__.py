"""Frontends: import trained models into a float lbc graph."""

from pathlib import Path

from lbc.errors import ModelError


def load_model(path, input_shape=None):
    """Load a model file by its extension (.onnx)."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {path}")
    if p.is_dir():
        raise ModelError(f"{path} is a directory, not a model file")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from lbc.frontends.onnx import load_onnx
        return load_onnx(p, input_shape)
    raise ModelError(f"{path}: unknown model format {suffix or '(no extension)'}; lbc reads .onnx")
