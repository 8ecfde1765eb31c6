"""Frontends: import trained models into a float lbc graph."""

from pathlib import Path

from lbc.errors import ModelError


def load_model(path, input_shape=None):
    """Load a model file by its extension: .onnx, .pt2 (torch.export.save), .keras (Keras 3) or .nir
    (NIR, a stateful graph: one call is one time step), and check the graph it gives (see
    `frontends.common.check_graph`)."""
    from lbc.frontends.common import check_graph
    try:
        graph = _load(path, input_shape)
    except MALFORMED as e:
        # the readers check what they understand; what a damaged or hand-made file can still break
        # (an archive member that does not decompress, a field of the wrong type) is the file's fault
        raise ModelError(f"{path}: damaged or malformed model file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else '-'})") from None
    return check_graph(graph, path)


def _malformed():
    import struct
    import zipfile
    import zlib
    return (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, OverflowError, RecursionError)


MALFORMED = _malformed()


def _load(path, input_shape):
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {path}")
    if p.is_dir():
        raise ModelError(f"{path} is a directory, not a model file")
    suffix = p.suffix.lower()
    if isinstance(input_shape, dict) and suffix != ".onnx":
        if len(input_shape) != 1:
            raise ModelError(f"{path}: --input-shape names {len(input_shape)} inputs; only ONNX models take "
                             f"several inputs")
        (input_shape,) = input_shape.values()
    if suffix == ".onnx":
        from lbc.frontends.onnx import load_onnx
        return load_onnx(p, input_shape)
    if suffix == ".pt2":
        from lbc.frontends.torch import load_pt2
        return _no_input_shape(load_pt2(p), input_shape, path)
    if suffix == ".nir":
        from lbc.frontends.nir import load_nir
        return _no_input_shape(load_nir(p), input_shape, path)
    if suffix == ".keras":
        from lbc.frontends.keras import load_keras
        return load_keras(p, input_shape)
    if suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin"):
        raise ModelError(f"{path}: lbc never unpickles model files; save the model as a torch.export "
                         f"program with lbc.frontends.torch.save_pt2(model, x, 'model.pt2') (or "
                         f"torch.export.save) or pass the nn.Module to lbc.compile")
    raise ModelError(f"{path}: unknown model format {suffix or '(no extension)'}; lbc reads .onnx, .pt2, .keras and .nir")


def _no_input_shape(graph, input_shape, path):
    """A torch.export program has static shapes: --input-shape may only restate them."""
    if input_shape is not None:
        want = tuple(graph.types[graph.inputs[0]].shape[1:])
        if tuple(input_shape[1:]) != want:
            raise ModelError(f"{path}: the exported program's input shape is fixed at (N, "
                             f"{', '.join(map(str, want))}); re-export it to change it")
    return graph
