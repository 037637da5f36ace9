"""Why EfficientNet-Lite0's pixel gradients are compared in norm: float32 kink flips.

Prints JSON lines: per photo, how many ReLU6 inputs lie within 1e-5 of a kink (0 or 6), and the
relative error against torch float64 autograd of the gradient at `_blocks.10` and at the
pixels, for ORT's backward graph and for torch float32 (max-abs and norm-wise).

    cd bench && PYTHONPATH=../src python kinks.py
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scorecam import emit
from skimage import data

from onnxcam.demo import efficientnet_lite0
from onnxcam.engine import graph
from onnxcam.engine.backward import GRADIENT, build, grad_name, seed_name
from onnxcam.engine.ort import onnxruntime as ort
from onnxcam.exporters import from_torch
from onnxcam.io import fit_image

PATHS = ["_blocks.10"]
PHOTOS = {"chelsea": data.chelsea, "astronaut": data.astronaut, "coffee": data.coffee}


def gradients(model, x, classes):
    """(gradient at PATHS[0], gradient at the pixels) by torch autograd in model's dtype."""
    seen = {}

    def keep(_module, _inputs, out) -> None:
        out.retain_grad()
        seen["a"] = out

    handle = model.get_submodule(PATHS[0]).register_forward_hook(keep)
    xt = torch.tensor(x, requires_grad=True)
    model(xt)[torch.arange(len(x)), torch.as_tensor(classes)].sum().backward()
    handle.remove()
    return seen["a"].grad.numpy(), xt.grad.numpy()


def main() -> None:
    with contextlib.redirect_stdout(sys.stderr):
        model = efficientnet_lite0()
    pictures = [
        np.asarray(fit_image(Image.fromarray(f()), (224, 224), 0.875)) for f in PHOTOS.values()
    ]
    x = ((np.stack(pictures).transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "efficientnet.onnx"
        with contextlib.redirect_stdout(sys.stderr):
            from_torch(model, torch.zeros(2, 3, 224, 224), path, layers=PATHS)
        onnx_model = graph.load(path)
    layer = graph.resolve_layer(onnx_model, PATHS[0])
    logits, source = graph.logits_tensor(onnx_model), graph.model_input(onnx_model).name
    built = build(onnx_model, GRADIENT, [logits], [layer, source], [logits])
    session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = efficientnet_lite0().double()
    near = np.zeros(len(x), int)

    def count(_m, inputs, _out):
        z = inputs[0].detach().numpy().reshape(len(x), -1)
        near[:] += ((np.abs(z) < 1e-5) | (np.abs(z - 6) < 1e-5)).sum(1)

    hooks = [
        m.register_forward_hook(count) for m in reference.modules() if isinstance(m, torch.nn.ReLU6)
    ]
    classes = reference(torch.tensor(x, dtype=torch.float64)).argmax(1).numpy()
    for hook in hooks:
        hook.remove()
    seed = np.eye(1000, dtype=np.float32)[classes]
    ours = session.run([grad_name(layer), grad_name(source)], {source: x, seed_name(logits): seed})
    float32 = gradients(model, x, classes)
    float64 = gradients(reference, x.astype(np.float64), classes)
    for i, name in enumerate(PHOTOS):
        fields = {"photo": name, "relu6_inputs_near_kink": int(near[i])}
        for where, j in (("layer", 0), ("pixels", 1)):
            ref = float64[j][i]
            for who, got in (("ort", ours[j][i]), ("torch32", float32[j][i])):
                fields[f"{where}_{who}_maxabs"] = float(np.abs(got - ref).max() / np.abs(ref).max())
                fields[f"{where}_{who}_norm"] = float(
                    np.linalg.norm(got - ref) / np.linalg.norm(ref)
                )
        emit("kinks", **fields)


if __name__ == "__main__":
    main()
