"""int8 against float32 on real photos: EfficientNet-Lite0 quantized by ONNX Runtime's static
quantization (QDQ, per-channel int8 weights, uint8 activations) calibrated on six skimage
photos, then each perturbation method's maps on the same photos compared with float32's
(Spearman rank correlation per photo) and timed, same run.

    cd bench && PYTHONPATH=../src python int8_photos.py
"""

from __future__ import annotations

import contextlib
import sys
import time

import numpy as np
from photos import photo_inputs
from scipy.stats import spearmanr
from scorecam import emit

import onnxcam
from onnxcam.benchmark.quantize import quantized
from onnxcam.demo import efficientnet_lite0_onnx
from onnxcam.engine import graph

METHODS = {"score-cam": {}, "ablation-cam": {}, "recipro-cam": {}, "rise": {"n_masks": 500}}


def main() -> None:
    with contextlib.redirect_stdout(sys.stderr):
        path = efficientnet_lite0_onnx()
    x = photo_inputs()
    fp32 = onnxcam.Explainer(path, progress=False)
    int8 = onnxcam.Explainer(quantized(graph.load(path), x), layer=fp32.layer, progress=False)
    same = fp32.forward(x)[0].argmax(1) == int8.forward(x)[0].argmax(1)
    emit("int8_top1", equal=same.tolist())
    for method, options in METHODS.items():
        started = time.perf_counter()
        want = fp32.explain(x, method, **options)
        middle = time.perf_counter()
        got = int8.explain(x, method, target=want.targets, **options)
        done = time.perf_counter()
        ranks = [
            float(spearmanr(a.ravel(), b.ravel())[0]) if np.ptp(b) > 0 else None
            for a, b in zip(want.maps, got.maps, strict=True)
        ]
        emit(
            "int8_photos",
            method=method,
            speedup=round((middle - started) / (done - middle), 2),
            max_abs_diff=round(float(np.abs(want.maps - got.maps).max()), 3),
            rank_corr=[None if r is None else round(r, 4) for r in ranks],
        )


if __name__ == "__main__":
    main()
