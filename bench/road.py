"""ROAD's noisy linear imputation at 224x224: the library's direct solve (SuperLU, symmetric
ordering) against SuperLU's default column ordering and against unpreconditioned conjugate
gradients (relative residual 1e-6, one channel at a time) on the same systems, measured in the
same run; impute_s is the whole imputation (system, solve, fill). One JSON object per line.

    python bench/road.py [--rounds 3]

The map is a smooth blob (like a CAM), so the removed region is one large hole: the hard case
for iterative solvers, whose iteration count grows with the hole's diameter.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.sparse.linalg import cg, spsolve
from scorecam import emit

from onnxcam.engine.metrics.road import imputation_system, noisy_linear_impute, road_order

SIZE = 224


def best_of(rounds: int, fn) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    blob = np.exp(-((rows - 100) ** 2 + (cols - 120) ** 2) / (2 * 60**2))[None]
    order = road_order(blob)[0]
    image = rng.standard_normal((3, SIZE, SIZE)).astype(np.float32)
    for share in (0.1, 0.5, 0.9):
        missing = np.zeros(SIZE * SIZE, bool)
        missing[order[: int(SIZE * SIZE * share)]] = True
        missing = missing.reshape(SIZE, SIZE)
        A, b = imputation_system(missing, image)
        library = best_of(args.rounds, lambda m=missing: noisy_linear_impute(image, m, 0))
        direct = best_of(args.rounds, lambda A=A, b=b: spsolve(A, b, permc_spec="MMD_AT_PLUS_A"))
        colamd = best_of(args.rounds, lambda A=A, b=b: spsolve(A, b, permc_spec="COLAMD"))
        iterative = best_of(
            args.rounds, lambda A=A, b=b: [cg(A, b[:, c], rtol=1e-6) for c in range(3)]
        )
        emit(
            "road_imputation",
            removed=share,
            unknowns=int(missing.sum()),
            impute_s=round(library, 4),
            solve_s=round(direct, 4),
            colamd_ratio=round(colamd / direct, 2),
            cg_ratio=round(iterative / direct, 2),
        )


if __name__ == "__main__":
    main()
