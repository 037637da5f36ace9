"""`onnxcam explain MODEL INPUTS...`: maps, overlays and a manifest written to --out."""

from __future__ import annotations

import argparse

from onnxcam.cli import args as shared

HELP = "explain images or .npy inputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shared.add_model_arguments(parser)
    parser.add_argument("--method", default="score-cam", help="method name (default score-cam)")
    shared.add_method_option(parser)
    parser.add_argument("--out", default="out", help="output directory")


def run(args: argparse.Namespace) -> int:
    from onnxcam.io import prepare_dir

    options = shared.method_options(args.method, args.option)
    out = prepare_dir(args.out)
    explainer = shared.explainer_from_args(args)
    x, pictures, names = shared.inputs_from_args(args, explainer)
    result = explainer.explain(x, method=args.method, target=shared.target(args), **options)
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
