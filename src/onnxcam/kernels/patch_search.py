"""The hot loop of context-aware saliency (algorithms §2.18): for every query patch, the mean of its
K smallest distances to a set of candidate patches.

    d(p, q) = (||p - q||_2 / sqrt(D)) / (1 + c * ||pos_p - pos_q||_2)

Features are expected in [0, 1], so the colour term lies in [0, 1]. Cost: O(P * Q * D) for P
queries, Q candidates and D features per patch. The loop is tiled: each parallel task takes a
block of queries and sweeps the candidates a block at a time, so a candidate block is read from
cache by every query of the block instead of from memory by each query. Memory: O(K) per query.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from onnxcam.kernels._jit import jit

#: Queries per parallel task and candidates per cache block (a block is ~75 KB at D = 147).
QUERY_BLOCK = 32
CANDIDATE_BLOCK = 128


@jit(parallel=True, fastmath=True)
def _knn_mean(queries, query_pos, candidates, cand_pos, k, c, self_offset, out):  # pragma: no cover
    n_queries, n_features = queries.shape
    inv_sqrt_d = np.float32(1.0 / np.sqrt(n_features))
    for block in prange((n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK):
        lo = block * QUERY_BLOCK
        size = min(QUERY_BLOCK, n_queries - lo)
        best = np.full((size, k), np.inf, np.float32)
        worst = np.full(size, np.inf, np.float32)  # the largest of each row of `best`
        worst_at = np.zeros(size, np.int64)
        for c0 in range(0, candidates.shape[0], CANDIDATE_BLOCK):
            c1 = min(c0 + CANDIDATE_BLOCK, candidates.shape[0])
            for row in range(size):
                i = lo + row
                for j in range(c0, c1):
                    if j == i + self_offset:
                        continue
                    dy = query_pos[i, 0] - cand_pos[j, 0]
                    dx = query_pos[i, 1] - cand_pos[j, 1]
                    damping = np.float32(1.0) + c * np.sqrt(dy * dy + dx * dx)
                    acc = np.float32(0.0)
                    for f in range(n_features):
                        diff = queries[i, f] - candidates[j, f]
                        acc += diff * diff
                    d = np.sqrt(acc) * inv_sqrt_d / damping
                    if d >= worst[row]:
                        continue
                    best[row, worst_at[row]] = d
                    worst[row] = best[row, 0]
                    worst_at[row] = 0
                    for m in range(1, k):
                        if best[row, m] > worst[row]:
                            worst[row] = best[row, m]
                            worst_at[row] = m
        for row in range(size):
            out[lo + row] = best[row].sum() / k


def knn_mean_distance(
    queries: np.ndarray,
    query_pos: np.ndarray,
    candidates: np.ndarray,
    cand_pos: np.ndarray,
    k: int,
    c: float,
    self_offset: int | None = 0,
) -> np.ndarray:
    """(P,) mean of each query's k smallest distances d to the candidates.

    queries (P, D) and candidates (Q, D) are patch vectors with features in [0, 1]; *_pos are
    (P, 2) / (Q, 2) patch centres in a common frame. `self_offset`: query i is candidate
    i + self_offset and is skipped (None: no query is among the candidates). k must not exceed
    the candidates a query can be compared with.
    """
    queries = np.ascontiguousarray(queries, np.float32)
    candidates = np.ascontiguousarray(candidates, np.float32)
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(
            f"expected queries (P, D) and candidates (Q, D) with the same D, "
            f"got {queries.shape} and {candidates.shape}"
        )
    available = len(candidates) - (self_offset is not None)
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and {available} (candidates per query), got {k}")
    out = np.empty(len(queries), np.float32)
    _knn_mean(
        queries,
        np.ascontiguousarray(query_pos, np.float32),
        candidates,
        np.ascontiguousarray(cand_pos, np.float32),
        int(k),
        np.float32(c),
        -(10**9) if self_offset is None else int(self_offset),
        out,
    )
    return out


def knn_mean_distance_reference(
    queries: np.ndarray,
    query_pos: np.ndarray,
    candidates: np.ndarray,
    cand_pos: np.ndarray,
    k: int,
    c: float,
    self_offset: int | None = 0,
) -> np.ndarray:
    """Plain NumPy version of knn_mean_distance (all pairs, full sort), the kernel's reference."""
    q = np.asarray(queries, np.float64)
    p = np.asarray(candidates, np.float64)
    colour = np.sqrt(((q[:, None, :] - p[None, :, :]) ** 2).sum(-1)) / np.sqrt(q.shape[1])
    position = np.linalg.norm(
        np.asarray(query_pos, np.float64)[:, None] - np.asarray(cand_pos, np.float64)[None], axis=-1
    )
    d = colour / (1 + c * position)
    if self_offset is not None:
        rows = np.arange(len(q))
        d[rows, rows + self_offset] = np.inf
    return np.sort(d, axis=1)[:, :k].mean(axis=1)
