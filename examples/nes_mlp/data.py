"""scikit-learn's 8x8 digits resized to 7x7 (exact area averaging) and flattened to 49 inputs in
[0, 1]; the split of examples/digits (20 % held out, stratified, random_state=0). numpy + sklearn."""

import numpy as np


def area_matrix(n_in, n_out):
    """R [n_out, n_in]: each output pixel is the mean of the input interval it covers."""
    r = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), int(np.ceil(hi))):
            r[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
    return r / scale


def load():
    """(x_train, x_test, y_train, y_test); x is [N, 49] float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    r = area_matrix(8, 7)
    x = (r @ (d.images / 16.0) @ r.T).reshape(len(d.images), 49).astype(np.float32)
    return train_test_split(x, d.target.astype(np.int64), test_size=0.2, random_state=0, stratify=d.target)
