"""Sliding-window helpers shared by convolution and pooling."""

import numpy as np

def pool_out(size, k, s, p0, p1, d=1):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def windows(x, kernel, strides, pads, dilations, pad_value):
    """[N, C, H, W] -> [N, C, OH, OW, kh, kw] strided view over the padded input."""
    pt, pl, pb, pr = pads
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=pad_value)
    kh, kw = kernel
    dh, dw = dilations
    v = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    v = v[:, :, ::strides[0], ::strides[1], ::dh, ::dw]
    return v
