"""The integer arithmetic every backend must reproduce bit for bit.

* Activations are int8 with a power-of-two scale: real = q * 2**-exp.
* Input quantisation: q = clamp(floor(x * 2**exp + 1/2), -128, 127)  (round half up).
* Requantisation of a wide accumulator: y = clamp((acc * m + r) >> k, lo, hi) with r = 2**(k-1)
  for k > 0 and r = 0 for k = 0; `>>` is an arithmetic shift (floor division by 2**k). m and k are
  small non-negative integers, per tensor or per channel. The quantize passes choose m so that
  |acc| * m + r < 2**31: every intermediate fits in a signed 32-bit register.
"""

import numpy as np

from lbc.errors import QuantError

ACT_LO, ACT_HI = -128, 127


def quantize_input(x, exp):
    q = np.floor(np.asarray(x, dtype=np.float64) * 2.0**exp + 0.5)
    return np.clip(q, ACT_LO, ACT_HI).astype(np.int8)


def dequantize(q, exp):
    return np.asarray(q, dtype=np.float64) * 2.0**-exp


def _per_channel(v, ndim, axis):
    v = np.asarray(v, dtype=np.int64)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def requant(acc, m, k, lo, hi, axis=-1):
    """clamp((acc*m + round) >> k, lo, hi), per channel along `axis` when m/k have more than one entry.

    The result is int8 when [lo, hi] lies within int8, else int32 (a layer whose output is its
    accumulator, e.g. the current of a spiking neuron: m = 1, k = 0, lo/hi the int32 range)."""
    acc = np.asarray(acc, dtype=np.int64)
    m = _per_channel(m, acc.ndim, axis)
    k = _per_channel(k, acc.ndim, axis)
    r = np.where(k > 0, np.left_shift(np.int64(1), np.maximum(k - 1, 0)), 0)
    y = np.right_shift(acc * m + r, k)
    return np.clip(y, lo, hi).astype(np.int8 if ACT_LO <= lo and hi <= ACT_HI else np.int32)


def rounding_shift(x, s):
    """x * 2**-s rounded half up, for any integer s (negative s is a left shift)."""
    x = np.asarray(x, dtype=np.int64)
    if s <= 0:
        return x << -s
    return (x + (1 << (s - 1))) >> s


ACC_LIMIT = 2**31  # |acc| * m + round must stay below this: every intermediate fits a signed 32-bit register


def requant_fits(acc_bound, m, k):
    """The 32-bit promise of a requantisation: acc_bound * m + 2**(k-1) < 2**31."""
    return int(acc_bound) * int(m) + ((1 << (k - 1)) if k > 0 else 0) < ACC_LIMIT


def choose_multiplier(real, acc_bound, max_bits=8):
    """Approximate `real` (> 0) as m * 2**-k with m < 2**max_bits and |acc|*m + 2**(k-1) < 2**31 for
    |acc| <= acc_bound (`requant_fits`; tests/rv32ec/test_requant_edges.py runs accumulators at that
    bound and one past it). Returns (m, k), the largest k that keeps both; m may be 0 when `real` is too
    small to matter (the output always rounds to 0). A factor too large for m (real >= 2**max_bits, or
    beyond what the accumulator bound leaves) is refused: saturating m would silently compute a
    different function.
    """
    if real <= 0:
        return 0, 0
    bound = max(int(acc_bound), 1)
    top = 2**max_bits - 1
    cap = min(top, (ACC_LIMIT - 1) // bound)
    if int(np.floor(real + 0.5)) > cap:
        raise QuantError(f"a rescaling factor of {real:.6g} cannot be represented exactly as m * 2**-k with "
                         f"m <= {cap} (accumulators up to {int(acc_bound)}); the output scale is too fine for "
                         f"this layer: calibrate with data that covers the output's range")
    best = (int(np.floor(real + 0.5)), 0)
    for k in range(0, 48):
        m = int(np.floor(real * 2.0**k + 0.5))
        if m > top or not requant_fits(bound, m, k):
            break
        best = (m, k)
    m, k = best
    while k > 0 and m and m % 2 == 0:  # canonical form: odd m (fewer shift-add steps on small targets)
        m //= 2
        k -= 1
    return m, k
