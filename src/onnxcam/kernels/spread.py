"""Per-map spread, in one pass over each map: whether it is constant (max <= min) and its
standard deviation (population, in float64). Channel choices read both off every layer map,
where NumPy's reductions over short rows cost several times the arithmetic. The sums may be
reassociated (vectorised), and equal maps still get equal values. Maps must be finite (the
forward pass checks a layer's): past the first value, min and max skip a NaN."""

from __future__ import annotations

import numpy as np

from onnxcam.kernels._jit import jit


@jit(fastmath={"reassoc", "nsz"})
def _spread_rows(x, constant, std):  # pragma: no cover - compiled
    n = x.shape[1]
    for m in range(x.shape[0]):
        lo = x[m, 0]
        hi = x[m, 0]
        total = 0.0
        for i in range(n):
            v = x[m, i]
            lo = min(lo, v)
            hi = max(hi, v)
            total += v
        mean = total / n
        squares = 0.0
        for i in range(n):
            d = x[m, i] - mean
            squares += d * d
        constant[m] = hi <= lo
        std[m] = np.sqrt(squares / n)


def map_spread(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(constant, std) of each map of (N, K, *spatial) activations, two (N, K) arrays."""
    lead = maps.shape[:2]
    rows = np.ascontiguousarray(maps, dtype=np.float32).reshape(int(np.prod(lead)), -1)
    constant = np.empty(rows.shape[0], np.bool_)
    std = np.empty(rows.shape[0], np.float64)
    _spread_rows(rows, constant, std)
    return constant.reshape(lead), std.reshape(lead)


def map_spread_reference(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain NumPy version of `map_spread`, the kernel's reference."""
    flat = np.asarray(maps, np.float64).reshape(*maps.shape[:2], -1)
    return flat.max(axis=-1) <= flat.min(axis=-1), flat.std(axis=-1)
