"""Conv and ConvTranspose: each one's input gradient is the other op with the same weights.

ONNX lays out Conv weights as (C_out, C_in/group, *k) and ConvTranspose weights as
(C_in, C_out/group, *k), so the forward weight tensor serves its adjoint unchanged, grouped and
depthwise convolutions included. Only activations get gradients; a weight that depends on the
explained tensor is refused.
"""

from __future__ import annotations

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
    attrs = dict(strides=strides, dilations=dilations, pads=pads, group=em.attr(node, "group", 1))
    if any(extra):
        attrs["output_padding"] = extra
    return [em.op("ConvTranspose", [grads[0], w], **attrs)] + [None] * (len(node.input) - 1)


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
