"""The demo's time-series model: an FCN trained on GunPoint in seconds, exported once and
cached; explained with Score-CAM and scored with the provisional faithfulness protocol."""

from __future__ import annotations

import time
from pathlib import Path

from onnxcam.demo.cache import cache_dir


def gunpoint_fcn_onnx(directory: Path | None = None, model=None) -> Path:
    """Path of an FCN trained on GunPoint (seeded, seconds on a CPU), exported on first use;
    `model` is a trained torch FCN to export instead of training one."""
    path = (directory or cache_dir()) / "gunpoint-fcn.onnx"
    if not path.exists():
        import torch

        from onnxcam.demo import fcn_torch, ucr
        from onnxcam.exporters import from_torch

        data = ucr.load("gunpoint")
        if model is None:
            model = fcn_torch.train(data.x_train, data.y_train, len(data.classes))
        from_torch(model, torch.from_numpy(data.x_test[:2]), path, layers=["block3"])
        record_labels(path, ucr_labels(data.classes))
    return path


def ucr_labels(classes) -> list[str]:
    """The class names as the UCR archive labels them: index 0 is "label 1"."""
    return [f"label {c}" for c in classes]


def record_labels(path: Path, labels: list[str]) -> None:
    """Write the class names into the exported model, so that every command shows them."""
    import json

    import onnx

    from onnxcam.engine import metadata
    from onnxcam.io import write_atomic

    model = onnx.load(path)
    metadata.with_entries(model, {metadata.LABELS_KEY: json.dumps(labels)})
    write_atomic(path, model.SerializeToString())


#: GunPoint test series shown by the demo: two of each class.
DEMO_SERIES = (0, 1, 2, 4)


def run_timeseries_demo(out: Path, provider: str = "cpu", progress: bool = True) -> int:
    from onnxcam.api import Explainer
    from onnxcam.demo import ucr
    from onnxcam.evaluation.metrics.timeseries import timeseries_faithfulness

    started = time.perf_counter()
    model_path = gunpoint_fcn_onnx()
    seconds = time.perf_counter() - started
    print(f"model: FCN trained on GunPoint at {model_path} ({seconds:.1f} s)")
    data = ucr.load("gunpoint")
    labels = ucr_labels(data.classes)  # also recorded in the model (older caches lack them)
    explainer = Explainer(model_path, provider=provider, progress=progress, labels=labels)
    x = data.x_test[list(DEMO_SERIES)]
    result = explainer.explain(x, method="score-cam")
    names = [f"gunpoint_{i}" for i in DEMO_SERIES]
    manifest = result.save(out, names=names, series=x)
    for i, (name, label) in enumerate(zip(names, data.y_test[list(DEMO_SERIES)], strict=True)):
        true = f"{result.class_names[label]} (class {label})"
        print(f"{name}: predicted {result.class_text(i)}, true {true}")
    print(f"score-cam: {result.metadata['seconds']:.2f} s for {len(x)} series of {data.length}")
    everything = explainer.explain(data.x_test, method="score-cam")
    faith = timeseries_faithfulness(
        explainer, data.x_test, everything.maps, everything.targets, data.y_test
    )
    area = faith.area
    print(
        f"provisional faithfulness on {len(data.x_test)} test series (area under accuracy, "
        f"5-50 % removed): Score-CAM {area['morf']:.3f}, random {area['random']:.3f}"
    )
    print(f"wrote {out}/{names[0]}.png ... and {manifest}")
    return 0
