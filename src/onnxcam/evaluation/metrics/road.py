"""ROAD, RemOve And Debias (Rong et al., ICML 2022; algorithms §3.4): positions ranked by the map
are imputed by noisy linear imputation, and the class probability is read on the imputed inputs.

The imputation follows the reference code (tleemann/road_evaluation, `NoisyLinearImputer`): each
removed position equals the weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal; at the
border the missing neighbours' weights are dropped and the rest renormalised), which is one sparse
linear system per image for all channels; then N(0, noise^2) is added to the imputed values.

The system is solved directly with SciPy's SuperLU and its default COLAMD ordering: a direct
solve is exact whatever the size and shape of the removed region and needs no tolerance, and
COLAMD stays fast on the scattered removals of sparse maps (docs/design.md says why not the
symmetric ordering). 1-D inputs (C, T) are one row: each removed step becomes the mean of its
kept or imputed neighbours.
"""

from __future__ import annotations

import numpy as np

from onnxcam.engine.runner import Perturbation
from onnxcam.engine.scoring import HasScorer, Scorer, scorer_of
from onnxcam.errors import ArgumentError
from onnxcam.evaluation.metrics.common import check_inputs, fraction_list
from onnxcam.evaluation.metrics.curves import Curves

#: (row offset, column offset, weight) of the 8 neighbours in the reference imputer.
NEIGHBOURS = (
    (1, 1, 1 / 12),
    (0, 1, 1 / 6),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (0, -1, 1 / 6),
    (-1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (-1, 0, 1 / 6),
)
ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ROAD_ORDERS = ("morf", "lerf", "combined")
ROAD_NOISE = 0.01
#: Scale of the fixed random field added to the rescaled map to break ties (reference: 1e-4).
TIE_JITTER = 1e-4


def _scipy_sparse():
    try:
        from scipy import sparse
        from scipy.sparse import linalg
    except ImportError as err:
        raise ImportError("ROAD's imputation needs SciPy: pip install 'onnxcam[metrics]'") from err
    return sparse, linalg


def imputation_system(missing: np.ndarray, image: np.ndarray):
    """(A, b): A v = b gives the removed positions of `image` (C, H, W) where `missing` (H, W).

    Row i: (sum of in-image neighbour weights) v_i - sum over removed neighbours w v_j
    = sum over kept neighbours w image_j, one right-hand side per channel.
    """
    sparse, _ = _scipy_sparse()
    height, width = missing.shape
    flat_missing = missing.ravel()
    flat_image = image.reshape(len(image), -1).astype(np.float64)
    removed = np.flatnonzero(flat_missing)
    n = len(removed)
    variable = np.full(flat_missing.size, -1)
    variable[removed] = np.arange(n)
    rows, cols = np.divmod(removed, width)
    diagonal = np.zeros(n)
    b = np.zeros((n, len(image)))
    a_rows, a_cols, a_values = [np.arange(n)], [np.arange(n)], []
    for dr, dc, weight in NEIGHBOURS:
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        equation = np.flatnonzero(inside)
        neighbour = r[inside] * width + c[inside]
        diagonal[equation] += weight
        unknown = flat_missing[neighbour]
        a_rows.append(equation[unknown])
        a_cols.append(variable[neighbour[unknown]])
        a_values.append(np.full(int(unknown.sum()), -weight))
        b[equation[~unknown]] += weight * flat_image[:, neighbour[~unknown]].T
    values = np.concatenate([diagonal, *a_values])
    A = sparse.csc_matrix((values, (np.concatenate(a_rows), np.concatenate(a_cols))), shape=(n, n))
    return A, b


def noisy_linear_impute(
    image: np.ndarray,
    missing: np.ndarray,
    noise: float = ROAD_NOISE,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """`image` (C, H, W) or (C, T) with the positions where `missing` is true imputed."""
    if missing.shape != image.shape[1:]:
        raise ArgumentError(f"expected a mask of shape {image.shape[1:]}, got {missing.shape}")
    missing = missing.astype(bool).reshape(-1, image.shape[-1])
    if missing.all():
        raise ArgumentError("ROAD's imputation needs at least one kept position, got none")
    out = image.astype(np.float32, copy=True)
    if not missing.any():
        return out
    _, linalg = _scipy_sparse()
    A, b = imputation_system(missing, image.reshape(len(image), *missing.shape))
    solved = linalg.spsolve(A, b, permc_spec="COLAMD").reshape(len(b), -1).T
    if noise:
        rng = rng or np.random.default_rng()
        solved = solved + noise * rng.standard_normal(solved.shape)
    out.reshape(len(image), -1)[:, missing.ravel()] = solved
    return out


def road_order(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, positions) by decreasing saliency after the reference's rescaling: min-max (eps 1e-5)
    plus one fixed 1e-4 N(0, 1) field for all maps, which breaks ties in flat regions."""
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    low, high = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    rescaled = (flat - low) / (high - low + 1e-5)
    jitter = TIE_JITTER * np.random.default_rng(seed).standard_normal(flat.shape[1])
    return np.argsort(-(rescaled + jitter), axis=1, kind="stable")


def removed_positions(order: np.ndarray, fraction: float, most_relevant_first: bool):
    """MoRF: the int(P * f) most salient positions. LeRF: all but the int(P * (1 - f)) most
    salient (the reference code's LeRF, whose th_p = 1 - f is the share kept)."""
    positions = len(order)
    if most_relevant_first:
        return order[: int(positions * fraction)]
    return order[int(positions * (1 - fraction)) :]


class Imputed(Perturbation):
    """Item (n, o, j): x[n] with fractions[j] of its positions imputed, in order o (MoRF, LeRF).

    Each item's noise is drawn from (seed, n, 0 for MoRF or 1 for LeRF, j): results depend
    neither on the batching nor on which orders are run together.
    """

    def __init__(self, x, order, fractions, orders: tuple[bool, ...], noise, seed) -> None:
        self.x, self.order, self.fractions, self.orders = x, order, fractions, orders
        self.noise, self.seed = noise, seed
        self.n_items = len(x) * len(orders) * len(fractions)
        self.item_shape = x.shape[1:]

    def fill(self, first: int, stop: int, out: np.ndarray) -> np.ndarray:
        batch = out[: stop - first]
        for b, item in enumerate(range(first, stop)):
            n, rest = divmod(item, len(self.orders) * len(self.fractions))
            o, j = divmod(rest, len(self.fractions))
            missing = np.zeros(self.order.shape[1], bool)
            morf = self.orders[o]
            missing[removed_positions(self.order[n], self.fractions[j], morf)] = True
            rng = np.random.default_rng((self.seed, n, 0 if morf else 1, j))
            batch[b] = noisy_linear_impute(
                self.x[n], missing.reshape(self.item_shape[1:]), self.noise, rng
            )
        return batch


def road_curves(
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    fractions=ROAD_FRACTIONS,
    noise: float = ROAD_NOISE,
    seed: int = 0,
    orders: tuple[str, ...] = ("morf", "lerf"),
) -> dict[str, Curves]:
    """{order: curves} of the class probability after imputing each fraction of positions, most
    relevant first ("morf") or least relevant first ("lerf"); all imputed inputs in one run."""
    check_inputs(x, maps, classes)
    fractions = fraction_list(fractions)
    if not np.all(np.isfinite(maps)):
        raise ArgumentError("maps contain NaN or Inf")
    bad = [o for o in orders if o not in ("morf", "lerf")]
    if bad or not orders:
        raise ArgumentError(f"orders must be 'morf' and/or 'lerf', got {list(orders)}")
    flags = tuple(o == "morf" for o in orders)
    perturbation = Imputed(x, road_order(maps, seed), fractions, flags, noise, seed)
    items = np.repeat(classes, len(orders) * len(fractions))
    scores = scorer_of(model).score(perturbation, items, "prob", "road")
    scores = scores.reshape(len(x), len(orders), len(fractions))
    return {name: Curves(fractions, scores[:, o], "fraction") for o, name in enumerate(orders)}


def road(
    model: Scorer | HasScorer,
    x: np.ndarray,
    maps: np.ndarray,
    classes: np.ndarray,
    order: str = "combined",
    fractions=ROAD_FRACTIONS,
    noise: float = ROAD_NOISE,
    seed: int = 0,
) -> np.ndarray:
    """Per input mean class probability over the fractions: "morf" (lower is better), "lerf"
    (higher is better) or "combined" = (LeRF - MoRF) / 2 (higher is better)."""
    if order not in ROAD_ORDERS:
        raise ArgumentError(f"order must be one of {', '.join(ROAD_ORDERS)}, got {order!r}")
    orders = ("morf", "lerf") if order == "combined" else (order,)
    curves = road_curves(model, x, maps, classes, fractions, noise, seed, orders)
    if order == "combined":
        return (curves["lerf"].means() - curves["morf"].means()) / 2
    return curves[order].means()
