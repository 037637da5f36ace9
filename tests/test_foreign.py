"""ONNX files this project did not export, explained end to end."""

from __future__ import annotations

import numpy as np
import onnx
from PIL import Image
from skimage import data
from toy_models import export_plain, tiny_vgg

from onnxcam import Explainer
from onnxcam.engine import graph
from onnxcam.engine.runner import open_session
from onnxcam.engine.targets import softmax
from onnxcam.kernels.masks import masked_inputs_reference


def numpy_score_cam(model: onnx.ModelProto, layer: str, x: np.ndarray) -> np.ndarray:
    """Score-CAM weights from plain ORT calls, one masked input per channel."""
    session = open_session(graph.expose(model, [graph.logits_tensor(model), layer]))
    name = graph.model_input(model).name
    logits_name = graph.logits_tensor(model)
    logits, acts = session.run([logits_name, layer], {name: x})
    cls = int(logits[0].argmax())
    valid = np.array([a.max() > a.min() for a in acts[0]])
    scores = np.full(len(valid), -np.inf)
    for k in np.flatnonzero(valid):
        masked = masked_inputs_reference(x, acts, np.array([0]), np.array([k]))
        scores[k] = session.run([logits_name], {name: masked})[0][0, cls]
    return softmax(scores)


def text_strip() -> np.ndarray:
    """scikit-image's text photo as the OCR classifier expects it: (1, 3, 48, 192) in [-1, 1]."""
    image = Image.fromarray(data.text()).convert("RGB").resize((192, 48), Image.BILINEAR)
    pixels = np.asarray(image, np.float32) / 255.0
    return ((pixels - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


def test_rapidocr_text_orientation_classifier(rapidocr_cls_bytes):
    model = graph.load(rapidocr_cls_bytes)
    explainer = Explainer(model, progress=False, batch_size=32)
    x = text_strip()
    result = explainer.explain(x)
    assert explainer.layer == "pool2d_9.tmp_0"
    assert result.maps.shape == (1, 48, 192) and result.weights.shape == (1, 200)
    assert abs(result.maps.max() - 1) < 1e-5 and result.maps.min() == 0
    np.testing.assert_allclose(
        result.weights[0], numpy_score_cam(model, explainer.layer, x), atol=1e-4
    )
    flipped = explainer.explain(x[..., ::-1, ::-1].copy())  # upside-down text: the other class
    assert flipped.targets[0] != result.targets[0]


def test_legacy_torchscript_export_without_onnxcam(tmp_path):
    """A plain torch.onnx.export(dynamo=False) file, no extra outputs, no metadata."""
    model = tiny_vgg(seed=2)
    path = tmp_path / "plain.onnx"
    export_plain(model, path, (3, 64, 64), input_names=["data"], output_names=["out"])
    loaded = graph.load(path)
    explainer = Explainer(path, progress=False)
    # auto: the last max-pool's output feeds the flatten in front of the classifier
    assert next(n for n in loaded.graph.node if explainer.layer in n.output).op_type == "MaxPool"
    x = np.random.default_rng(7).standard_normal((2, 3, 64, 64)).astype(np.float32)
    result = explainer.explain(x)
    for i in range(2):
        want = numpy_score_cam(loaded, explainer.layer, x[i : i + 1])
        np.testing.assert_allclose(result.weights[i], want, atol=1e-4)


def test_rapidocr_layers_are_activations_and_a_weight_is_refused(
    rapidocr_cls_bytes, tmp_path, capsys
):
    from onnxcam.cli import main
    from onnxcam.engine.graph.info import info_of

    path = tmp_path / "cls.onnx"
    path.write_bytes(rapidocr_cls_bytes)
    assert main(["layers", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["tensor", "op", "shape"]
    legend = next(i for i, line in enumerate(lines) if line.startswith("* = what"))
    listed = [line[2:].split()[0] for line in lines[1:legend]]
    weights = info_of(graph.load(path)).constants
    assert "conv12_depthwise_weights" in weights and len(listed) == 165
    assert not set(listed) & weights
    x = tmp_path / "x.npy"
    np.save(x, text_strip()[0])
    code = main(["explain", str(path), str(x), "--layer", "conv12_depthwise_weights", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert (
        "'conv12_depthwise_weights' is a weight of the model" in err and "not an activation" in err
    )


def test_rapidocr_images_keep_their_size_unless_one_is_imposed(
    rapidocr_cls_bytes, tmp_path, capsys
):
    from onnxcam.cli import main

    path = tmp_path / "cls.onnx"
    path.write_bytes(rapidocr_cls_bytes)
    strip = Image.fromarray(data.coffee()).resize((150, 40))
    strip.save(tmp_path / "strip.png")
    base = ["explain", str(path), str(tmp_path / "strip.png"), "--quiet"]
    assert main([*base, "--out", str(tmp_path / "own")]) == 0
    note = capsys.readouterr().out.splitlines()[0]
    assert note == (
        "input size 40x150: the image's own (the model leaves H and W free; --size HxW imposes one)"
    )
    assert np.load(tmp_path / "own" / "strip.npy").shape == (40, 150)
    for mode in ("fit", "stretch", "crop"):
        out = tmp_path / mode
        assert main([*base, "--size", "48x192", "--resize", mode, "--out", str(out)]) == 0
        assert capsys.readouterr().out.splitlines()[0] == (
            f"input size 48x192: from --size (images reach it by --resize {mode})"
        )
        assert np.load(out / "strip.npy").shape == (48, 192)


def test_rapidocr_dataset_inputs_keep_their_own_sizes(rapidocr_cls_bytes, tmp_path):
    from onnxcam.dataset import Job, explain_dataset

    path = tmp_path / "cls.onnx"
    path.write_bytes(rapidocr_cls_bytes)
    folder = tmp_path / "lines"
    folder.mkdir()
    for name, size in (("short", (96, 32)), ("long", (200, 48))):
        Image.fromarray(data.coffee()).resize(size).save(folder / f"{name}.png")
    job = Job(str(path), str(tmp_path / "out"), method="grad-cam")
    summary = explain_dataset(job, [str(folder)], progress=False)
    assert summary.ok == 2
    assert np.load(tmp_path / "out" / "maps" / "short.npy").shape == (32, 96)
    assert np.load(tmp_path / "out" / "maps" / "long.npy").shape == (48, 200)
