"""Sliding-window helpers shared by convolution and pooling."""

import numpy as np

def pool_out(size, k, s, p0, p1, d=1):
    """Output length of a window of k taps (dilation d, stride s) over size + p0 + p1 positions.
    Raises ValueError for a non-positive kernel/stride/dilation, negative padding, or a window
    larger than the padded input."""
    if min(k, s, d) < 1 or min(p0, p1) < 0:
        raise ValueError(f"kernel {k}, stride {s} and dilation {d} must be positive and pads {p0}, {p1} not "
                         f"negative")
    span = d * (k - 1) + 1
    if span > size + p0 + p1:
        raise ValueError(f"a window of {span} does not fit the input of {size} (padded to {size + p0 + p1})")
    return (size + p0 + p1 - span) // s + 1


def windows(x, kernel, strides, pads, dilations, pad_value):
    """[N, C, H, W] -> [N, C, OH, OW, kh, kw] strided view over the padded input."""
    pt, pl, pb, pr = pads
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=pad_value)
    kh, kw = kernel
    dh, dw = dilations
    v = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    v = v[:, :, ::strides[0], ::strides[1], ::dh, ::dw]
    return v
