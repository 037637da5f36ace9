"""Files in and out: input images and arrays, preprocessing presets, atomic writes, pictures.

Nothing here knows about models: it reads files into arrays and writes arrays and bytes, so
every other part of onnxcam may use it.
"""

from onnxcam.io.arrays import load_array, load_csv
from onnxcam.io.images import fit_image, load_image
from onnxcam.io.inputs import InputFormat, input_channels, input_size, load_inputs, unique_names
from onnxcam.io.preprocess import PRESETS, Preprocess, choose_preprocess, preset
from onnxcam.io.writing import json_text, npy_bytes, prepare_dir, write_atomic

__all__ = [
    "PRESETS",
    "InputFormat",
    "Preprocess",
    "choose_preprocess",
    "fit_image",
    "input_channels",
    "input_size",
    "json_text",
    "load_array",
    "load_csv",
    "load_image",
    "load_inputs",
    "npy_bytes",
    "prepare_dir",
    "preset",
    "unique_names",
    "write_atomic",
]
