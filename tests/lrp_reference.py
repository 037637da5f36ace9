"""A direct NumPy LRP (explicit contributions a_j w_jk per rule, algorithms §2.17) for the tests.

Convolutions are unrolled to dense layers over image patches (im2col), so every rule is the
textbook formula on explicit contribution tensors, independent of the engine's
transposed-op trick.
"""

from __future__ import annotations

import numpy as np


def _stab(z, eps, signed=True):
    return z + (np.where(z >= 0, eps, -eps) if signed else eps)


def dense_relevance(x, w, b, r, rule, **opt):
    """x (M, J), w (K, J), b (K,) or None, r (M, K) -> (M, J). opt: eps, signed, gamma, alpha,
    beta, low/high (M, J) bounds, mask (M, J) real inputs (1) vs padding (0).

    With the contributions c_jk = x_j w_jk: z+ shares R_k by c+ (x+ w+ and x- w- are exactly the
    positive products) over sum c+ + b+; gamma by c + gamma c+ (outputs z_k > 0) or c + gamma c-
    (z_k < 0) over their sums with b + gamma b+- ; alpha-beta by c+ and c- separately."""
    eps = opt.get("eps", 1e-9)
    mask = opt.get("mask", np.ones_like(x))
    b = np.zeros(len(w)) if b is None else b
    wt = w.T[None]  # (1, J, K)
    c = x[:, :, None] * wt
    cp, cn = np.maximum(c, 0), np.minimum(c, 0)
    if rule == "epsilon":
        z = c.sum(1) + b
        return (c / _stab(z, eps, opt.get("signed", True))[:, None] * r[:, None]).sum(2)
    if rule == "zplus":
        return (cp / _stab(cp.sum(1) + np.maximum(b, 0), eps)[:, None] * r[:, None]).sum(2)
    if rule == "x-w-plus":
        cw = x[:, :, None] * np.maximum(wt, 0)
        return (cw / _stab(cw.sum(1), eps, signed=False)[:, None] * r[:, None]).sum(2)
    if rule == "gamma":
        g = opt["gamma"]
        z = c.sum(1) + b
        up, down = c + g * cp, c + g * cn
        z_up = _stab(up.sum(1) + b + g * np.maximum(b, 0), eps)
        z_down = _stab(down.sum(1) + b + g * np.minimum(b, 0), eps)
        s_up, s_down = np.where(z > 0, r / z_up, 0), np.where(z < 0, r / z_down, 0)
        return (s_up[:, None] * up + s_down[:, None] * down).sum(2)
    if rule == "alpha-beta":
        zp = _stab(cp.sum(1) + np.maximum(b, 0), eps)
        zn = _stab(cn.sum(1) + np.minimum(b, 0), eps)
        return (
            (opt["alpha"] * cp / zp[:, None] - opt["beta"] * cn / zn[:, None])
            .__mul__(r[:, None])
            .sum(2)
        )
    if rule in ("w2", "flat"):
        v = wt**2 if rule == "w2" else np.ones_like(wt)
        extra = b**2 if rule == "w2" else 0
        v = mask[:, :, None] * v
        return (v / _stab(v.sum(1) + extra, eps)[:, None] * r[:, None]).sum(2)
    if rule == "zbox":
        lo, hi = opt["low"], opt["high"]
        c = c - lo[:, :, None] * np.maximum(wt, 0)
        c = c - hi[:, :, None] * np.minimum(wt, 0)
        return (c / _stab(c.sum(1), eps)[:, None] * r[:, None]).sum(2)
    raise ValueError(rule)


def im2col(x, k, stride, pad):
    """(N, C, H, W) -> patches (N, Ho, Wo, C*k*k) of the zero-padded input."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, k, k)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(*windows.shape[:1], *windows.shape[2:4], -1)


def col2im(cols, shape, k, stride, pad):
    """Sum patch values (N, Ho, Wo, C*k*k) back onto the (N, C, H, W) input."""
    n, c, h, w = shape
    out = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    _, ho, wo, _ = cols.shape
    cols = cols.reshape(n, ho, wo, c, k, k)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i * stride : i * stride + k, j * stride : j * stride + k] += cols[:, i, j]
    return out[:, :, pad : pad + h, pad : pad + w]


def conv_forward(x, w, b, stride, pad):
    cols = im2col(x, w.shape[2], stride, pad)
    y = cols @ w.reshape(len(w), -1).T + (0 if b is None else b)
    return y.transpose(0, 3, 1, 2)


def conv_relevance(x, w, b, r, rule, stride, pad, **opt):
    k = w.shape[2]
    cols = im2col(x, k, stride, pad)
    n, ho, wo, j = cols.shape
    flat = cols.reshape(-1, j)
    rr = r.transpose(0, 2, 3, 1).reshape(-1, len(w))
    mask = im2col(np.ones_like(x), k, stride, pad).reshape(-1, j)
    extra = {"mask": mask}
    if rule == "zbox":
        for bound in ("low", "high"):
            value = np.asarray(opt[bound])  # per channel, or per element (N, C, H, W)
            value = value if value.ndim == 4 else value.reshape(1, -1, 1, 1)
            full = np.broadcast_to(value, x.shape)
            extra[bound] = im2col(np.ascontiguousarray(full), k, stride, pad).reshape(-1, j)
    rin = dense_relevance(flat, w.reshape(len(w), -1), b, rr, rule, **{**opt, **extra})
    return col2im(rin.reshape(n, ho, wo, j), x.shape, k, stride, pad)
