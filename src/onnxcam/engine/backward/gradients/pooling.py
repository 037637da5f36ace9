"""Pooling and reductions: MaxPool, AveragePool, the global pools, ReduceMean/Sum/Max."""

from __future__ import annotations

import numpy as np
import onnx

from onnxcam.engine import graph
from onnxcam.engine.backward.gradients.conv import adjoint_pads, explicit_pads
from onnxcam.engine.backward.rulesets import GRADIENT


def _flat(em, x):
    return em.op("Reshape", [x, em.ints([-1])])


@GRADIENT.register("MaxPool")
def max_pool(em, node, grads, needs):
    """Each output's gradient goes to the input its window picked (summed where windows share).

    The pool is run again with its Indices output (flat positions in the whole input tensor,
    row-major), and the gradient is scattered there with ScatterElements(reduction="add"),
    in float32 (ORT's CPU kernel of that scatter has no float16).
    """
    x = node.input[0]
    attrs = graph.attributes(node)
    attrs.pop("storage_order", None)
    _, indices = em.op("MaxPool", [x], outputs=2, **attrs)
    wide = em.dtype(x) != np.float32
    updates = _flat(em, grads[0])
    if wide:
        updates = em.op("Cast", [updates], to=onnx.TensorProto.FLOAT)
    zeros = em.op("Cast", [em.zeros_like(_flat(em, x))], to=onnx.TensorProto.FLOAT)
    scattered = em.op(
        "ScatterElements", [zeros, _flat(em, indices), updates], axis=0, reduction="add"
    )
    if wide:
        scattered = em.op("Cast", [scattered], to=int(em.specs[x].elem_type))
    return [em.reshape_like(scattered, x)]


def _window_counts(em, node, x, y, kernel, strides, pads) -> np.ndarray:
    """(1, 1, *out) divisors of an AveragePool: window sizes clipped as torch clips them."""
    n = len(kernel)
    sizes_in = em.static_dims(x, range(2, 2 + n))
    sizes_out = em.static_dims(y, range(2, 2 + n))
    include_pad = bool(em.attr(node, "count_include_pad", 0))
    counts = np.ones((1, 1), np.float64)
    for i in range(n):
        start = np.arange(sizes_out[i]) * strides[i] - pads[i]
        stop = np.minimum(start + kernel[i], sizes_in[i] + pads[n + i])
        if not include_pad:
            stop = np.minimum(stop, sizes_in[i])
            start = np.maximum(start, 0)
        counts = np.multiply.outer(counts, stop - start)
    return counts.reshape(1, 1, *sizes_out)


@GRADIENT.register("AveragePool")
def average_pool(em, node, grads, needs):
    """Each output's gradient, divided by its window's count, spread over its window."""
    x, y = node.input[0], node.output[0]
    kernel = list(em.attr(node, "kernel_shape"))
    n = len(kernel)
    if any(d != 1 for d in em.attr(node, "dilations", [1] * n)):
        em.fail("dilated average pooling is not supported")
    strides = em.attr(node, "strides", [1] * n)
    sizes_in = em.static_dims(x, range(2, 2 + n))
    pads = explicit_pads(em, node, sizes_in, kernel)
    counts = _window_counts(em, node, x, y, kernel, strides, pads)
    sizes_out = em.static_dims(y, range(2, 2 + n))
    pads, extra = adjoint_pads(sizes_in, sizes_out, kernel, strides, [1] * n, pads)
    (channels,) = em.static_dims(x, [1])
    ones = em.const(np.ones((channels, 1, *kernel)), like=x)
    spread = em.op("Div", [grads[0], em.const(counts, like=x)])
    attrs = dict(strides=strides, pads=pads, group=channels)
    if any(extra):
        attrs["output_padding"] = extra
    return [em.op("ConvTranspose", [spread, ones], **attrs)]


def _count(em, x, axes):
    """Input elements per output element of a reduction of x over `axes`, in x's float type: a
    constant where the shape fixes those axes, else the product of their sizes (from Shape,
    not Size: OpenVINO leaves Size to the CPU and then cuts the graph into a cycle)."""
    shape = em.shape(x)
    dims = [shape[a] for a in axes] if shape is not None else [None]
    if all(isinstance(d, int) for d in dims):
        return em.const(float(np.prod(dims)), like=x)
    sizes = em.op("Gather", [em.op("Shape", [x]), em.ints(list(axes))], axis=0)
    count = em.op("ReduceProd", [sizes], keepdims=0)
    return em.op("Cast", [count], to=em.specs[x].elem_type)


def _spread(em, grad, x, axes, keepdims):
    """The reduced gradient broadcast back over the reduced axes."""
    if not keepdims:
        grad = em.unsqueeze(grad, sorted(axes))
    return em.op("Expand", [grad, em.op("Shape", [x])])


def _reduction_axes(em, node):
    x = node.input[0]
    rank = em.rank(x)
    axes = em.attr(node, "axes")
    if axes is None and len(node.input) > 1:
        axes = em.constant_input(node, 1, "axes")
    if axes is None or len(axes) == 0:
        if em.attr(node, "noop_with_empty_axes", 0):
            return None
        axes = range(rank)
    return sorted(int(a) % rank for a in axes)


@GRADIENT.register("ReduceSum", "ReduceMean", "ReduceMax", "GlobalAveragePool", "GlobalMaxPool")
def reduce(em, node, grads, needs):
    x, y, (g,) = node.input[0], node.output[0], grads
    tail = [None] * (len(node.input) - 1)
    if node.op_type.startswith("Global"):
        axes, keepdims = list(range(2, em.rank(x))), True
    else:
        axes, keepdims = _reduction_axes(em, node), bool(em.attr(node, "keepdims", 1))
        if axes is None:
            return [g, *tail]
    spread = _spread(em, g, x, axes, keepdims)
    if node.op_type in ("ReduceMean", "GlobalAveragePool"):
        return [em.op("Div", [spread, _count(em, x, axes)]), *tail]
    if node.op_type in ("ReduceMax", "GlobalMaxPool"):
        # the maximum's gradient is shared evenly between tied inputs
        kept = y if keepdims else em.unsqueeze(y, axes)
        hits = em.op("Cast", [em.op("Equal", [x, kept])], to=em.specs[x].elem_type)
        share = em.op("Div", [hits, em.reduce_sum(hits, axes, keepdims=True)])
        return [em.op("Mul", [spread, share]), *tail]
    return [spread, *tail]
