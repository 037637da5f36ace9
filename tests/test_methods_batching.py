"""Every registered method: N images in one call equal N single-image calls (maps and passes
per input); bounded options."""

from __future__ import annotations

import numpy as np
import pytest

from onnxcam import Explainer, methods
from onnxcam.engine.methods import method_class
from onnxcam.engine.methods.parts.attention import AttentionMethod

OPTIONS = {
    "ss-cam": {"n_samples": 2},
    "is-cam": {"n_steps": 2},
    "rise": {"n_masks": 64},
    "occlusion": {"patch": 8, "stride": 8},
    "group-cam": {"blur_size": 11, "blur_sigma": 5.0, "groups": 4},
}


def test_every_method_is_covered():
    assert set(methods()) == {
        "ablation-cam",
        "abs-cam",
        "attention-rollout",
        "d-rise",
        "eigen-cam",
        "faster-score-cam",
        "grad-cam",
        "grad-cam++",
        "gradient-rollout",
        "group-cam",
        "hires-cam",
        "is-cam",
        "layer-cam",
        "legrad",
        "lrp",
        "occlusion",
        "recipro-cam",
        "rise",
        "salience-cam",
        "score-cam",
        "sr-map",
        "ss-cam",
        "xgrad-cam",
    }


#: The attention methods need a transformer: tests/test_attention_methods.py batches them.
CNN_METHODS = [m for m in methods() if not issubclass(method_class(m), AttentionMethod)]


@pytest.mark.parametrize("method", CNN_METHODS)
def test_batch_equals_single_calls(resnet_onnx, images, method):
    explainer = Explainer(resnet_onnx, layer="layer2", progress=False, batch_size=12)
    options = OPTIONS.get(method, {})
    together = explainer.explain(images, method=method, target=[2, 5, 7], **options)
    assert together.maps.shape == (3, 32, 32)
    assert together.maps.min() >= 0 and together.maps.max() <= 1
    for i in range(3):
        alone = explainer.explain(images[i : i + 1], method=method, target=[2, 5, 7][i], **options)
        np.testing.assert_allclose(together.maps[i], alone.maps[0], atol=1e-5)
        np.testing.assert_allclose(together.raw[i], alone.raw[0], rtol=1e-5, atol=1e-6)
        assert together.metadata["passes_per_input"][i] == alone.metadata["passes_run"]
    assert together.metadata["passes_run"] >= 0 and "passes_skipped" in together.metadata
