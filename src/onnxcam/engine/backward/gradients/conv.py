"""Conv and ConvTranspose: each one's input gradient is the other op with the same weights.

ONNX lays out Conv weights as (C_out, C_in/group, *k) and ConvTranspose weights as
(C_in, C_out/group, *k), so the forward weight tensor serves its adjoint unchanged. Grouped and
depthwise convolutions are the exception in practice: ONNX Runtime's CPU ConvTranspose runs them
far slower than a Conv (docs/design.md, "Latency"), so their gradient is written as a Conv of
the gradient (with zeros inserted between its values where the forward conv strides) with the
kernel flipped and each group's channels swapped, which is the same sum. Only activations get
gradients; a weight that depends on the explained tensor is refused.
"""

from __future__ import annotations

import numpy as np

from onnxcam.engine.backward.rulesets import GRADIENT


def explicit_pads(em, node, spatial_in: list[int], kernel: list[int]) -> list[int]:
    """The node's pads as numbers (auto_pad resolved against the static input size)."""
    n = len(kernel)
    strides = em.attr(node, "strides", [1] * n)
    dilations = em.attr(node, "dilations", [1] * n)
    auto_pad = em.attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        return list(em.attr(node, "pads", [0] * (2 * n)))
    if auto_pad == "VALID":
        return [0] * (2 * n)
    begin, end = [], []
    for size, k, s, d in zip(spatial_in, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end


def adjoint_pads(sizes_in, sizes_out, kernel, strides, dilations, pads):
    """Pads and output_padding of the transposed op that maps sizes_out back onto sizes_in."""
    n = len(kernel)
    begin, end, extra = list(pads[:n]), list(pads[n:]), []
    for i in range(n):
        span = (sizes_out[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        produced = span - begin[i] - end[i]
        extra.append(max(0, sizes_in[i] - produced))
        end[i] += max(0, produced - sizes_in[i])  # positions the forward op never read
    return begin + end, extra


@GRADIENT.register("Conv")
def conv(em, node, grads, needs):
    x, w = node.input[0], node.input[1]
    if len(needs) > 1 and any(needs[1:]):
        em.fail("the gradient with respect to its weights or bias is not supported")
    rank = em.rank(x)
    kernel = em.static_dims(w, range(2, rank))
    sizes_in = em.static_dims(x, range(2, rank))
    sizes_out = em.static_dims(node.output[0], range(2, rank))
    n = rank - 2
    strides = em.attr(node, "strides", [1] * n)
    dilations = em.attr(node, "dilations", [1] * n)
    pads, extra = adjoint_pads(
        sizes_in, sizes_out, kernel, strides, dilations, explicit_pads(em, node, sizes_in, kernel)
    )
    group = em.attr(node, "group", 1)
    weights = em.value(w)
    tail = [None] * (len(node.input) - 1)
    reach = [d * (k - 1) for d, k in zip(dilations, kernel, strict=True)]
    fits = all(p <= r for p, r in zip(pads, reach * 2, strict=True))
    if weights is not None and fits and (group > 1 or all(s == 1 for s in strides)):
        g = _spaced(em, grads[0], weights.shape[0], strides, x)
        conv_pads = [r - p for r, p in zip(reach * 2, pads, strict=True)]
        conv_pads[n:] = [p + e for p, e in zip(conv_pads[n:], extra, strict=True)]
        flipped = em.const(adjoint_weights(weights, group), like=x)
        gradient = em.op("Conv", [g, flipped], dilations=dilations, pads=conv_pads, group=group)
        return [gradient, *tail]
    attrs = dict(strides=strides, dilations=dilations, pads=pads, group=group)
    if any(extra):
        attrs["output_padding"] = extra
    return [em.op("ConvTranspose", [grads[0], w], **attrs), *tail]


def adjoint_weights(weights: np.ndarray, group: int) -> np.ndarray:
    """Conv weights (C_out, C_in/g, *k) as the weights of the Conv that computes their
    transpose: (C_in, C_out/g, *k), each group's channels swapped and the kernel flipped."""
    out, per_group, *kernel = weights.shape
    grouped = weights.reshape(group, out // group, per_group, *kernel).swapaxes(1, 2)
    flipped = np.flip(grouped, axis=tuple(range(3, 3 + len(kernel))))
    return np.ascontiguousarray(flipped.reshape(group * per_group, out // group, *kernel))


def _spaced(em, g: str, channels: int, strides: list[int], like: str) -> str:
    """g with stride - 1 zeros between neighbours along each strided axis: a ConvTranspose of
    1 x 1 ones per channel, which ORT runs several times faster than the same Pad."""
    if all(s == 1 for s in strides):
        return g
    ones = em.const(np.ones((channels, 1, *[1] * len(strides))), like=like)
    return em.op("ConvTranspose", [g, ones], strides=strides, group=channels)


@GRADIENT.register("ConvTranspose")
def conv_transpose(em, node, grads, needs):
    x, w = node.input[0], node.input[1]
    if len(needs) > 1 and any(needs[1:]):
        em.fail("the gradient with respect to its weights or bias is not supported")
    auto_pad = em.attr(node, "auto_pad", b"NOTSET")
    if em.attr(node, "output_shape") is not None or auto_pad not in (b"NOTSET", "NOTSET"):
        em.fail("output_shape and auto_pad are not supported; export with explicit pads")
    n = em.rank(x) - 2
    attrs = dict(
        strides=em.attr(node, "strides", [1] * n),
        dilations=em.attr(node, "dilations", [1] * n),
        pads=em.attr(node, "pads", [0] * (2 * n)),
        group=em.attr(node, "group", 1),
    )
    return [em.op("Conv", [grads[0], w], **attrs)] + [None] * (len(node.input) - 1)
