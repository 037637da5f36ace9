"""Where a CNN's backward pass spends its time in ONNX Runtime: EfficientNet-Lite0's graph from
the input to its last layer with the reverse sweep back to the input (what salience-cam runs
per channel), 8 seeds under 8 inputs and under one input, ORT's own profiler summed per op;
then one depthwise convolution's gradient as ConvTranspose against the equal Conv with the
flipped kernel.

    cd bench && PYTHONPATH=../src python backward_profile.py
"""

from __future__ import annotations

import collections
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from scorecam import best_of, emit

import onnxcam
from onnxcam.demo import efficientnet_lite0_onnx
from onnxcam.engine import backward, graph
from onnxcam.engine.backward.gradients.conv import adjoint_weights
from onnxcam.engine.runner import INTRA_OP_SPINNING


def options(profile_to: Path | None = None) -> ort.SessionOptions:
    chosen = ort.SessionOptions()
    chosen.add_session_config_entry("session.intra_op.allow_spinning", INTRA_OP_SPINNING)
    if profile_to is not None:
        chosen.enable_profiling = True
        chosen.profile_file_prefix = str(profile_to)
    return chosen


def profile_backward(inputs: int, rounds: int = 3) -> None:
    """8 seeds under `inputs` inputs: 8 (one forward pass per seed) or 1 (one forward pass
    broadcast over the seeds, as salience-cam runs where the graph allows)."""
    with contextlib.redirect_stdout(sys.stderr):
        explainer = onnxcam.Explainer(efficientnet_lite0_onnx(), progress=False)
    views, source = explainer.views, graph.model_input(explainer.views.model).name
    model = backward.build(views.model, backward.GRADIENT, [views.layer], [source], [])
    x = np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32)
    _, acts = explainer.forward(x[:1])
    seed = np.random.default_rng(1).random((8, *acts.shape[1:]), np.float32)
    feeds = {source: x[:inputs], backward.seed_name(views.layer): seed}
    with tempfile.TemporaryDirectory() as folder:
        session = ort.InferenceSession(
            model.SerializeToString(), options(Path(folder) / "p"), ["CPUExecutionProvider"]
        )
        for _ in range(rounds):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values())
    forward = best_of(lambda: explainer.runner.run_batch(x, [explainer.logits_name]), rounds)
    pass_ms = round(total / rounds / 1e3, 1)
    emit("backward", inputs=inputs, seeds=8, pass_ms=pass_ms, forward_ms=round(forward * 1e3, 1))
    for op, micros in per_op.most_common(8):
        share = round(micros / total, 3)
        ms = round(micros / rounds / 1e3, 1)
        emit("backward_op", inputs=inputs, op=op, ms_per_pass=ms, share=share)


def depthwise(channels: int = 672, size: int = 14, kernel: int = 5) -> None:
    weights = np.random.default_rng(2).standard_normal((channels, 1, kernel, kernel), np.float32)
    g = np.random.default_rng(3).standard_normal((8, channels, size, size), np.float32)
    pads = [kernel // 2] * 4
    sessions = {}
    for name, op, w in (
        ("convtranspose", "ConvTranspose", weights),
        ("conv", "Conv", adjoint_weights(weights, channels)),
    ):
        node = helper.make_node(op, ["g", "w"], ["y"], group=channels, pads=pads)
        inputs = [
            helper.make_tensor_value_info("g", TensorProto.FLOAT, ["n", channels, size, size])
        ]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
        model_graph = helper.make_graph(
            [node], name, inputs, outputs, [numpy_helper.from_array(w, "w")]
        )
        model = helper.make_model(
            model_graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9
        )
        sessions[name] = ort.InferenceSession(model.SerializeToString(), options())
    same = np.abs(
        sessions["conv"].run(None, {"g": g})[0] - sessions["convtranspose"].run(None, {"g": g})[0]
    )
    times = {n: best_of(lambda s=s: s.run(None, {"g": g}), 20) for n, s in sessions.items()}
    milliseconds = {f"{n}_ms": round(t * 1e3, 2) for n, t in times.items()}
    emit("depthwise_gradient", **milliseconds, max_abs_diff=float(same.max()))


def main() -> None:
    profile_backward(8)
    profile_backward(1)
    depthwise()


if __name__ == "__main__":
    main()
