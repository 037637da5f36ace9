"""PyTorch -> ONNX with forward-hook outputs of named modules as extra graph outputs.

The requested modules are captured by forward hooks inside a wrapper whose forward returns
(logits, *layer outputs), so each exposed tensor is exactly what a hook sees in torch, and the
exporter's optimiser cannot fuse it away (BatchNorm folding into Conv keeps graph outputs).
"""

from __future__ import annotations

import ast
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from onnxcam.errors import ExportError
from onnxcam.exporters.common import ExportResult, save_with_metadata


class _WithLayers(torch.nn.Module):
    """Returns the model's output followed by the outputs of the named submodules."""

    def __init__(self, model: torch.nn.Module, paths: list[str]) -> None:
        super().__init__()
        self.model = model
        self.paths = paths

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        captured: dict[str, torch.Tensor] = {}

        def hook(path: str):
            def keep(_module, _inputs, output):
                captured[path] = output[0] if isinstance(output, (tuple, list)) else output

            return keep

        handles = [self.model.get_submodule(p).register_forward_hook(hook(p)) for p in self.paths]
        try:
            out = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        out = out[0] if isinstance(out, (tuple, list)) else out
        return (out, *(captured[p] for p in self.paths))


def _check_paths(model: torch.nn.Module, paths: list[str]) -> None:
    names = dict(model.named_modules())
    missing = [p for p in paths if p not in names]
    if missing:
        hint = [n for n in names if n and n.split(".")[-1] == missing[0].split(".")[-1]][:8]
        listed = ", ".join(n for n in names if n and "." not in n)
        raise ExportError(
            f"module {missing[0]!r} not found in {type(model).__name__}; top-level modules: "
            f"{listed}" + (f"; similar: {', '.join(hint)}" if hint else "")
        )


def export(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: str | Path,
    layers: list[str],
    dynamo: bool = True,
    opset: int | None = None,
    input_name: str = "input",
    output_name: str = "logits",
    preprocess: dict | None = None,
    verify: bool = True,
) -> ExportResult:
    """Export `module` to `path` with a dynamic batch axis; `layers` are module paths.

    dynamo=False uses the legacy TorchScript exporter. With verify, ONNX Runtime runs the
    example and its outputs are compared with torch's (max_abs_diff in the result).
    """
    _check_paths(module, layers)
    if not isinstance(example, torch.Tensor) or example.ndim < 3:
        raise ExportError(f"expected an example tensor (N, C, H, W) or (N, C, T), got {example!r}")
    if example.shape[0] == 1:  # torch.export specialises a batch of 1; export with 2
        example = example.repeat(2, *([1] * (example.ndim - 1)))
    names = {p: p for p in layers}
    outputs = [output_name, *names.values()]
    wrapper = _WithLayers(module, layers)
    was_training = module.training
    wrapper.eval()
    try:
        with torch.no_grad():
            expected = [t.detach().cpu().numpy() for t in wrapper(example)]
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            target = Path(tmp) / "model.onnx"
            _run_exporter(wrapper, example, target, dynamo, opset, input_name, outputs)
            model = onnx.load(str(target))
    finally:
        module.train(was_training)
    _drop_wrapper_scope(model)
    result_path = save_with_metadata(model, path, names, preprocess)
    diff = _verify(model, example.numpy(), input_name, outputs, expected) if verify else None
    return ExportResult(result_path, names, diff)


def _run_exporter(wrapper, example, target, dynamo, opset, input_name, outputs) -> None:
    # torch.onnx logs a warning per torchvision op it cannot register; none is used here
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        if dynamo:
            batch = torch.export.Dim("batch")
            torch.onnx.export(
                wrapper,
                (example,),
                str(target),
                dynamo=True,
                external_data=False,
                opset_version=opset,
                input_names=[input_name],
                output_names=outputs,
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
        else:
            torch.onnx.export(
                wrapper,
                (example,),
                str(target),
                dynamo=False,
                opset_version=opset or 17,
                input_names=[input_name],
                output_names=outputs,
                dynamic_axes={name: {0: "batch"} for name in [input_name, *outputs]},
            )
    except Exception as err:  # exporters raise many types; report one clear line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"torch.onnx.export failed: {first}") from err


def _drop_wrapper_scope(model: onnx.ModelProto) -> None:
    """Module paths in node metadata as the user's model names them (without the wrapper's)."""
    prefix = "model."
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                scopes = ast.literal_eval(prop.value)
                kept = [s.removeprefix(prefix) for s in scopes if s != "model"]
                prop.value = repr(kept)


def _verify(model, x: np.ndarray, input_name, outputs, expected) -> float:
    from onnxcam.engine.runner import open_session

    got = open_session(model).run(outputs, {input_name: x})
    return max(float(np.abs(a - b).max()) for a, b in zip(got, expected, strict=True))
