"""Time series on real UCR/UEA data: FCN training time in torch and Keras, Score-CAM time
against the bare inference time of its passes, torch-vs-Keras map agreement, and the provisional
faithfulness protocol (algorithms §3.5) against a random ranking. Prints one JSON object per line.

    python bench/timeseries.py [--datasets gunpoint,basicmotions] [--no-keras]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import onnxcam
from onnxcam.demo import fcn_torch, ucr
from onnxcam.evaluation.metrics.timeseries import timeseries_faithfulness
from onnxcam.exporters import from_keras, from_torch


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def inference_limit(explainer: onnxcam.Explainer, passes: int, shape: tuple[int, ...]) -> float:
    """Seconds for `passes` random inputs through the same graph at the same batch size."""
    x = np.random.default_rng(0).standard_normal((passes, *shape)).astype(np.float32)
    started = time.perf_counter()
    explainer.runner.run(x, [explainer.logits_name], explainer.batch_size)
    return time.perf_counter() - started


def score_cam(explainer: onnxcam.Explainer, x: np.ndarray, x_cf: np.ndarray, data) -> dict:
    explainer.explain(x[:1])  # compile and warm up
    result = explainer.explain(x)
    seconds = result.metadata["seconds"]
    limit = inference_limit(explainer, result.metadata["passes_run"] + len(x), x_cf.shape[1:])
    faith = timeseries_faithfulness(explainer, x, result.maps, result.targets, data.y_test)
    return {
        "series": len(x),
        "passes": result.metadata["passes_run"],
        "seconds": round(seconds, 3),
        "limit_s": round(limit, 3),
        "ratio": round(seconds / limit, 3),
        "area_morf": round(faith.area["morf"], 4),
        "area_lerf": round(faith.area["lerf"], 4),
        "area_random": round(faith.area["random"], 4),
        "maps": result.maps,
    }


def run(name: str, keras: bool, folder: Path) -> None:
    data = ucr.load(name)
    started = time.perf_counter()
    model = fcn_torch.train(data.x_train, data.y_train, len(data.classes))
    trained = time.perf_counter() - started
    path = folder / f"{name}-torch.onnx"
    from_torch(model, torch.from_numpy(data.x_test[:2]), path, layers=["block3"])
    explainer = onnxcam.Explainer(path, progress=False)
    torch_run = score_cam(explainer, data.x_test, data.x_test, data)
    torch_maps = torch_run.pop("maps")
    emit(
        dataset=name,
        framework="torch",
        train_s=round(trained, 2),
        test_accuracy=fcn_torch.accuracy(model, data.x_test, data.y_test),
        **torch_run,
    )
    if not keras:
        return
    from onnxcam.demo import fcn_keras

    x_last = np.ascontiguousarray(data.x_test.transpose(0, 2, 1))
    copy_path = folder / f"{name}-keras-copy.onnx"
    from_keras(fcn_keras.from_torch(model, data.length), copy_path, layers=["relu3"])
    copy_run = score_cam(onnxcam.Explainer(copy_path, progress=False), x_last, data.x_test, data)
    emit(
        dataset=name,
        framework="keras (torch weights)",
        max_abs_map_diff_vs_torch=float(np.abs(copy_run.pop("maps") - torch_maps).max()),
        **copy_run,
    )
    started = time.perf_counter()
    keras_model = fcn_keras.train(data.x_train, data.y_train, len(data.classes))
    trained = time.perf_counter() - started
    keras_path = folder / f"{name}-keras.onnx"
    from_keras(keras_model, keras_path, layers=["relu3"])
    keras_run = score_cam(onnxcam.Explainer(keras_path, progress=False), x_last, data.x_test, data)
    keras_run.pop("maps")
    emit(
        dataset=name,
        framework="keras",
        train_s=round(trained, 2),
        test_accuracy=fcn_keras.accuracy(keras_model, data.x_test, data.y_test),
        **keras_run,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="gunpoint,basicmotions")
    parser.add_argument("--no-keras", action="store_true", help="torch models only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            run(name, not args.no_keras, Path(tmp))


if __name__ == "__main__":
    main()
