"""scikit-learn's 8x8 digits as [N, 1, 8, 8] images in [0, 1], with the split of examples/digits
(20 % held out, stratified, random_state=0). numpy + sklearn only."""

import numpy as np


def load():
    """(x_train, x_test, y_train, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, d.target.astype(np.int64), test_size=0.2, random_state=0, stratify=d.target)
