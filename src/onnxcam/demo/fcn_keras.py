"""The FCN of Wang et al. (2017) in Keras 3, channels-last (N, T, C), and its trainer.

Same architecture and widths as `fcn_torch` (BatchNormalization with torch's epsilon and
momentum), so a torch FCN's weights can be copied over (`from_torch`). `relu3` is the layer to
explain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxcam.demo.fcn_torch import BN_EPS, KERNELS, WIDTHS, one_thread
from onnxcam.exporters.keras import keras_module

keras = keras_module()


def build(
    channels: int, length: int, classes: int, widths: tuple[int, ...] = WIDTHS
) -> keras.Model:
    """(N, T, C) -> (N, classes) logits, as a functional model."""
    inputs = keras.Input((length, channels), name="series")
    x = inputs
    for i, (width, kernel) in enumerate(zip(widths, KERNELS, strict=True), start=1):
        x = keras.layers.Conv1D(width, kernel, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(epsilon=BN_EPS, momentum=0.9, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name="fcn")


def train(
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    epochs: int = 200,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    widths: tuple[int, ...] = WIDTHS,
) -> keras.Model:
    """An FCN trained with Adam on (N, C, T) float32 series (transposed here), seeded."""
    keras.utils.set_random_seed(seed)
    model = build(x.shape[1], x.shape[2], classes, widths)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    with one_thread():
        model.fit(x.transpose(0, 2, 1), y, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    logits = model.predict(x.transpose(0, 2, 1), verbose=0)
    return float((np.asarray(logits).argmax(1) == y).mean())


def from_torch(torch_fcn: Any, length: int) -> keras.Model:
    """A Keras FCN holding the weights of a `fcn_torch.FCN` (same outputs up to float error)."""
    blocks = [getattr(torch_fcn, f"block{i}") for i in range(1, len(KERNELS) + 1)]
    widths = tuple(block[0].out_channels for block in blocks)
    model = build(blocks[0][0].in_channels, length, torch_fcn.fc.out_features, widths)

    def numpy(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy()

    for i, (conv, bn, _) in enumerate(blocks, start=1):
        model.get_layer(f"conv{i}").set_weights(
            [numpy(conv.weight).transpose(2, 1, 0), numpy(conv.bias)]
        )
        model.get_layer(f"bn{i}").set_weights(
            [numpy(bn.weight), numpy(bn.bias), numpy(bn.running_mean), numpy(bn.running_var)]
        )
    model.get_layer("fc").set_weights([numpy(torch_fcn.fc.weight).T, numpy(torch_fcn.fc.bias)])
    return model
