"""Shape ops: reshapes, Transpose, Concat, Split, Slice, Gather, GatherElements, constant Pad."""

from __future__ import annotations

import numpy as np

from onnxcam.engine.backward.rulesets import GRADIENT


@GRADIENT.register("Flatten", "Reshape", "Squeeze", "Unsqueeze")
def reshape(em, node, grads, needs):
    return [em.reshape_like(grads[0], node.input[0])] + [None] * (len(node.input) - 1)


@GRADIENT.register("Transpose")
def transpose(em, node, grads, needs):
    perm = em.attr(node, "perm") or list(reversed(range(em.rank(node.input[0]))))
    return [em.op("Transpose", [grads[0]], perm=[int(i) for i in np.argsort(perm)])]


@GRADIENT.register("Concat")
def concat(em, node, grads, needs):
    axis = em.attr(node, "axis") % em.rank(node.output[0])
    sizes = [em.static_dims(x, [axis])[0] for x in node.input]
    parts = em.op("Split", [grads[0], em.ints(sizes)], outputs=len(sizes), axis=axis)
    parts = [parts] if len(sizes) == 1 else parts
    return [part if need else None for part, need in zip(parts, needs, strict=True)]


@GRADIENT.register("Split")
def split(em, node, grads, needs):
    axis = em.attr(node, "axis", 0) % em.rank(node.input[0])
    parts = [
        g if g is not None else em.zeros_like(out)
        for g, out in zip(grads, node.output, strict=False)
    ]
    return [em.op("Concat", parts, axis=axis)] + [None] * (len(node.input) - 1)


def _slice_axes(em, node):
    """Per sliced axis of the input: (start, step, count, size), normalised as ONNX clamps."""
    x = node.input[0]
    starts = em.constant_input(node, 1, "starts")
    if starts is None:  # opset < 10 keeps them as attributes
        starts, ends = em.attr(node, "starts"), em.attr(node, "ends")
        axes, steps = em.attr(node, "axes"), None
    else:
        ends = em.constant_input(node, 2, "ends")
        axes = em.constant_input(node, 3, "axes")
        steps = em.constant_input(node, 4, "steps")
    rank = em.rank(x)
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
    steps = [1] * len(axes) if steps is None else [int(s) for s in steps]
    if any(step < 1 for step in steps):
        em.fail(f"steps {steps} are not supported (only positive steps)")
    sizes = em.static_dims(x, axes)
    bounds = {}
    for axis, size, start, end, step in zip(axes, sizes, starts, ends, steps, strict=True):
        start = min(max(int(start) + size if start < 0 else int(start), 0), size)
        end = min(max(int(end) + size if end < 0 else int(end), 0), size)
        bounds[axis] = (start, step, max(0, -(-(end - start) // step)), size)
    return rank, bounds


def _dilate(em, grad, axis, step, count, like):
    """Insert step - 1 zeros after each element along axis (keep the first (count-1)*step+1)."""
    rank = em.rank(like)
    grad = em.unsqueeze(grad, [axis + 1])
    pads = [0] * (2 * (rank + 1))
    pads[rank + 1 + axis + 1] = step - 1
    grad = em.op("Pad", [grad, em.ints(pads)], mode="constant")
    tail = em.static_dims(like, range(axis + 1, rank))
    grad = em.op("Reshape", [grad, em.ints([0] * axis + [count * step, *tail])])
    span = (count - 1) * step + 1
    return em.op("Slice", [grad, em.ints([0]), em.ints([span]), em.ints([axis])])


@GRADIENT.register("Slice")
def slice_(em, node, grads, needs):
    """Zeros everywhere the slice did not read: strided axes dilated, then padded around."""
    rank, bounds = _slice_axes(em, node)
    grad = grads[0]
    pads = [0] * (2 * rank)
    for axis, (start, step, count, size) in bounds.items():
        if step > 1 and count > 1:
            grad = _dilate(em, grad, axis, step, count, node.output[0])
        span = (count - 1) * step + 1 if count else 0
        pads[axis], pads[rank + axis] = start, size - start - span
    padded = em.op("Pad", [grad, em.ints(pads)], mode="constant")
    return [padded] + [None] * (len(node.input) - 1)


@GRADIENT.register("Pad")
def pad(em, node, grads, needs):
    """Constant padding: the gradient is the interior (negative pads crop, so pad back)."""
    mode = em.attr(node, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        em.fail(f"mode {mode!r} is not supported (only constant)")
    x = node.input[0]
    rank = em.rank(x)
    pads = em.attr(node, "pads")
    if pads is None:
        pads = em.constant_input(node, 1, "pads")
    axes = em.constant_input(node, 3, "axes")
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = int(pads[i]), int(pads[len(axes) + i])
    grad = grads[0]
    if any(p > 0 for p in full):
        begin = [max(p, 0) for p in full[:rank]]
        end = [-max(p, 0) if p > 0 else np.iinfo(np.int64).max for p in full[rank:]]
        grad = em.op("Slice", [grad, em.ints(begin), em.ints(end), em.ints(range(rank))])
    if any(p < 0 for p in full):
        grad = em.op("Pad", [grad, em.ints([max(-p, 0) for p in full])], mode="constant")
    return [grad] + [None] * (len(node.input) - 1)


@GRADIENT.register("Gather")
def gather(em, node, grads, needs):
    """Constant indices (a class token, a window order): the gradient of each picked slice is
    added back at its index, by a one-hot matrix product along the gathered axis."""
    data, indices = node.input
    index = em.value(indices)
    rank = em.rank(data)
    if index is None:
        if rank != 1:
            em.fail("indices computed in the graph are supported on 1-D data only")
        return [_scatter_flat(em, data, indices, grads[0]), None]
    axis = em.attr(node, "axis", 0) % rank
    (size,) = em.static_dims(data, [axis])
    flat = np.asarray(index, np.int64).reshape(-1)
    flat = np.where(flat < 0, flat + size, flat)
    one_hot = np.zeros((flat.size, size), np.float64)
    one_hot[np.arange(flat.size), flat] = 1.0
    grad = grads[0]
    if index.ndim == 0:
        grad = em.unsqueeze(grad, [axis])
    elif index.ndim > 1:
        grad = _merge_axes(em, grad, axis, index.ndim)
    last = [*range(axis), *range(axis + 1, rank), axis]
    moved = em.op("Transpose", [grad], perm=last)
    summed = em.op("MatMul", [moved, em.const(one_hot, like=data)])
    back = em.op("Transpose", [summed], perm=[int(i) for i in np.argsort(last)])
    return [back, None]


def _scatter_flat(em, data, indices, grad):
    """Gather from 1-D data by any index tensor (torch's as_strided): the gradient added back
    at every index read, negative indices counted from the end."""
    flat_index = em.op("Reshape", [indices, em.ints([-1])])
    size = em.op("Shape", [data])
    negative = em.op("Less", [flat_index, em.ints([0])])
    flat_index = em.op("Where", [negative, em.op("Add", [flat_index, size]), flat_index])
    flat_grad = em.op("Reshape", [grad, em.ints([-1])])
    zeros = em.zeros_like(data)
    return em.op("ScatterElements", [zeros, flat_index, flat_grad], axis=0, reduction="add")


def _merge_axes(em, grad, axis, count):
    """Merge `count` axes from `axis` on into one (an n-D index tensor's axes)."""
    shape = em.op("Shape", [grad])
    head = em.op("Slice", [shape, em.ints([0]), em.ints([axis])])
    tail = em.op("Slice", [shape, em.ints([axis + count]), em.ints([np.iinfo(np.int64).max])])
    merged = em.op("Concat", [head, em.ints([-1]), tail], axis=0)
    return em.op("Reshape", [grad, merged])


@GRADIENT.register("GatherElements")
def gather_elements(em, node, grads, needs):
    """The gradient scattered back to the positions read, added where read twice."""
    data, indices = node.input
    axis = em.attr(node, "axis", 0)
    zeros = em.zeros_like(data)
    scattered = em.op("ScatterElements", [zeros, indices, grads[0]], axis=axis, reduction="add")
    return [scattered, None]
