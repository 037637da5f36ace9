"""An int8 copy of a model for `onnxcam bench --int8`: ONNX Runtime's static quantization
(QDQ format, int8 weights per channel, uint8 activations), calibrated on the bench's own inputs.

The quantized graph answers the perturbation passes; its Quantize/DequantizeLinear pairs have no
gradient rules, so the gradient methods and LRP are reported as skipped on it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from onnxcam.engine.graph import model_input


def quantized(model: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """`model` quantized to int8, its activations' ranges taken from `calibration` inputs."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    name = model_input(model).name

    class Inputs(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(calibration[i : i + 1] for i in range(len(calibration)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self.rows, None)
            return None if row is None else {name: row}

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "model.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, source)
        quantize_static(
            str(source),
            str(target),
            Inputs(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        return onnx.load(target)
