"""The command line: `onnxcam layers | explain | explain-dataset | export | demo | evaluate |
bench | export-explainer`, the Python API for the shell.

Errors in what the user gave print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from onnxcam import cli_evaluate
from onnxcam.dataset import cli as dataset_cli
from onnxcam.errors import OnnxcamError

EXIT_USAGE = 2


def method_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, its inputs, and how they are run: shared by explain and evaluate."""
    parser.add_argument("model", help="ONNX file")
    parser.add_argument("inputs", nargs="+", help="images, or preprocessed .npy or .csv arrays")
    parser.add_argument("--layer", default="auto", help="tensor name, module path or auto")
    parser.add_argument("--target", default="top1", help="top1 or a class index")
    parser.add_argument("--provider", default="cpu", help="cpu, cuda, tensorrt, openvino, ...")
    parser.add_argument("--allow-fallback", action="store_true", help="accept a CPU fallback")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="inputs per ORT run (8 on CPU, else 64)"
    )
    parser.add_argument("--threads", type=int, default=None, help="ORT intra-op threads")
    parser.add_argument(
        "--preprocess",
        default="auto",
        help="imagenet, inception, unit, or auto: what the exporter recorded, else imagenet",
    )
    parser.add_argument("--size", default=None, help="input size HxW for images (default: model's)")
    parser.add_argument(
        "--input-layout", default=None, help="channels_first or channels_last (default: recorded)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnxcam", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    layers = sub.add_parser("layers", help="list candidate target layers of an ONNX model")
    layers.add_argument("model", help="ONNX file")

    explain = sub.add_parser("explain", help="explain images or .npy inputs")
    add_model_arguments(explain)
    explain.add_argument("--method", default="score-cam", help="method name (default score-cam)")
    explain.add_argument(
        "--option", type=method_option, action="append", default=[], help="method option KEY=VALUE"
    )
    explain.add_argument("--out", default="out", help="output directory")
    explain.add_argument("--quiet", action="store_true", help="no progress bar")

    dataset = sub.add_parser("explain-dataset", help="explain every input of a folder or list")
    dataset_cli.add_arguments(dataset)

    export = sub.add_parser("export", help="export a PyTorch model to ONNX with layer outputs")
    export.add_argument("factory", help="module:callable returning a torch.nn.Module")
    export.add_argument(
        "--input-shape", required=True, help="example input shape, e.g. 1,3,224,224"
    )
    export.add_argument("--layers", default="", help="comma-separated module paths to expose")
    export.add_argument("--legacy", action="store_true", help="use the TorchScript exporter")
    export.add_argument("-o", "--output", required=True, help="ONNX file to write")

    demo = sub.add_parser("demo", help="explain a photo with a pretrained EfficientNet-Lite0")
    demo.add_argument("--out", default="out", help="output directory")
    demo.add_argument("--provider", default="cpu")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    cli_evaluate.add_arguments(sub.add_parser("evaluate", help=cli_evaluate.HELP))
    for name, (module, text) in MODULE_COMMANDS.items():
        importlib.import_module(module).add_arguments(sub.add_parser(name, help=text))
    return parser


def _cmd_layers(args: argparse.Namespace) -> int:
    from onnxcam.engine import graph

    layers = graph.list_layers(graph.load(args.model))
    if not layers:
        print("no tensors with spatial axes found")
        return 1
    width = max(len(info.name) for info in layers)
    for info in layers:
        mark = "*" if info.auto else " "
        scope = f"  [{info.scope}]" if info.scope else ""
        print(f"{mark} {info.name:<{width}}  {info.op_type:<18} {info.shape_text()}{scope}")
    print("* = what --layer auto picks")
    return 0


def explainer_from_args(args: argparse.Namespace):
    """The Explainer that --layer, --provider, --batch-size, --threads, ... ask for."""
    from onnxcam.api import Explainer

    return Explainer(
        args.model,
        layer=args.layer,
        provider=args.provider,
        batch_size=args.batch_size,
        threads=args.threads,
        allow_fallback=args.allow_fallback,
        progress=not args.quiet,
        input_layout=args.input_layout,
    )


def inputs_from_args(args: argparse.Namespace, explainer):
    """(x, pictures, names) from the input files, preprocessed as --preprocess and --size say."""
    from onnxcam.engine.layout import CHANNELS_LAST
    from onnxcam.exporters import stored_preprocess
    from onnxcam.io import choose_preprocess, input_channels, input_size, load_inputs

    preprocess = choose_preprocess(args.preprocess, stored_preprocess(explainer.model))
    shape = explainer.input_shape
    last = explainer.input_layout == CHANNELS_LAST
    size, channels = input_size(args.size, shape), input_channels(shape)
    x, pictures, names = load_inputs(args.inputs, size, preprocess, channels, last)
    return x.astype(explainer.input_dtype, copy=False), pictures, names


def _cmd_explain(args: argparse.Namespace) -> int:
    from onnxcam.files import prepare_dir

    out = prepare_dir(args.out)
    explainer = explainer_from_args(args)
    x, pictures, names = inputs_from_args(args, explainer)
    target = None if args.target == "top1" else args.target
    result = explainer.explain(x, method=args.method, target=target, **dict(args.option))
    images = pictures if all(p is not None for p in pictures) else None
    series = explainer.validate(x) if result.maps.ndim == 2 else None
    result.save(out, images=images, names=names, series=series)
    for name, cls, prob in zip(names, result.targets, result.probabilities, strict=True):
        print(f"{name}: class {cls} (p={prob:.3f}) -> {out / name}.png")
    print(
        f"{args.method} at layer {explainer.layer} on {explainer.provider}: "
        f"{result.metadata['seconds']:.2f} s for {len(x)} input(s); manifest {out}/manifest.json"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from onnxcam.exporters import from_torch

    module_name, _, attr = args.factory.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise OnnxcamError(
            f"cannot load {args.factory!r} (expected module:callable): {err}"
        ) from err
    import torch

    model = factory() if not isinstance(factory, torch.nn.Module) else factory
    shape = tuple(int(v) for v in args.input_shape.split(","))
    layers = [p for p in args.layers.split(",") if p]
    result = from_torch(model, torch.randn(*shape), args.output, layers, dynamo=not args.legacy)
    print(f"wrote {result.path} (max |ORT - torch| = {result.max_abs_diff:.2e})")
    for path, tensor in result.layers.items():
        print(f"  {path} -> {tensor}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from onnxcam.demo import run_demo

    return run_demo(Path(args.out), provider=args.provider, progress=not args.quiet)


#: Commands implemented in modules of their own (add_arguments, run): name -> (module, help).
MODULE_COMMANDS = {
    "export-explainer": ("onnxcam.export_explainer", "write an explainer as one ONNX graph"),
    "bench": ("onnxcam.provider_bench", "compare ONNX Runtime providers on one model"),
}

COMMANDS = {
    "layers": _cmd_layers,
    "explain": _cmd_explain,
    "explain-dataset": dataset_cli.run,
    "export": _cmd_export,
    "demo": _cmd_demo,
    "evaluate": cli_evaluate.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in MODULE_COMMANDS:
            return importlib.import_module(MODULE_COMMANDS[args.command][0]).run(args)
        return COMMANDS[args.command](args)
    except (OnnxcamError, ValueError, TypeError) as err:
        print(f"onnxcam: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("onnxcam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
