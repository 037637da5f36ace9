"""Resize (nearest, linear, cubic on the last two axes): the transpose of its interpolation.

Resizing one axis is multiplication by an (out, in) matrix R; the gradient is R^T applied to
that axis. R is read off ONNX Runtime itself by resizing the identity with the node's own
attributes, so every coordinate mode and rounding rule matches what the forward pass did.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from onnxcam.engine.backward.rulesets import GRADIENT
from onnxcam.engine.ort import onnxruntime as ort

_COPIED = (
    "mode",
    "coordinate_transformation_mode",
    "cubic_coeff_a",
    "exclude_outside",
    "nearest_mode",
    "antialias",
)


def interpolation_matrix(em, node, n_in: int, n_out: int, scale: float | None) -> np.ndarray:
    """(n_out, n_in) matrix of the node's 1-D resize, computed by ORT on the identity."""
    attrs = {k: em.attr(node, k) for k in _COPIED if em.attr(node, k) is not None}
    inputs = ["eye", "", "scales"] if scale is not None else ["eye", "", "", "sizes"]
    probe = helper.make_node("Resize", inputs, ["out"], **attrs)
    initializer = (
        helper.make_tensor("scales", onnx.TensorProto.FLOAT, [4], [1.0, 1.0, scale, 1.0])
        if scale is not None
        else helper.make_tensor("sizes", onnx.TensorProto.INT64, [4], [n_in, 1, n_out, 1])
    )
    model = helper.make_model(
        helper.make_graph(
            [probe],
            "probe",
            [helper.make_tensor_value_info("eye", onnx.TensorProto.FLOAT, [n_in, 1, n_in, 1])],
            [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)],
            [initializer],
        ),
        opset_imports=[helper.make_opsetid("", max(18, em.opset))],
        ir_version=8,
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    eye = np.eye(n_in, dtype=np.float32).reshape(n_in, 1, n_in, 1)
    (out,) = session.run(None, {"eye": eye})
    if out.shape[2] != n_out:
        em.fail(f"resizing {n_in} -> {n_out} elements gave {out.shape[2]} in a probe")
    return out[:, 0, :, 0].T


@GRADIENT.register("Resize")
def resize(em, node, grads, needs):
    x, y = node.input[0], node.output[0]
    mode = em.attr(node, "coordinate_transformation_mode", b"")
    if mode in (b"tf_crop_and_resize", "tf_crop_and_resize"):
        em.fail("coordinate_transformation_mode tf_crop_and_resize is not supported")
    if em.attr(node, "axes") is not None:
        em.fail("the axes attribute is not supported; export with full-rank scales or sizes")
    rank = em.rank(x)
    sizes_in = em.static_dims(x, range(1, rank))
    sizes_out = em.static_dims(y, range(1, rank))
    scales = em.constant_input(node, 2, "scales")
    scales = None if scales is None or scales.size == 0 else scales
    grad = grads[0]
    for axis in range(rank - 1, 0, -1):
        n_in, n_out = sizes_in[axis - 1], sizes_out[axis - 1]
        scale = None if scales is None else float(scales[axis])
        if n_in == n_out and scale in (None, 1.0):
            continue
        if axis < rank - 2:
            em.fail(f"resizing axis {axis} is not supported (only the last two axes)")
        matrix = interpolation_matrix(em, node, n_in, n_out, scale)
        if axis == rank - 1:
            grad = em.op("MatMul", [grad, em.const(matrix, like=x)])
        else:
            grad = em.op("MatMul", [em.const(matrix.T, like=x), grad])
    return [grad] + [None] * (len(node.input) - 1)
