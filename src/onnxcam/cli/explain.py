"""`onnxcam explain MODEL INPUTS...`: maps, overlays and a manifest written to --out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from onnxcam.cli import args as shared

if TYPE_CHECKING:
    from pathlib import Path

    from onnxcam.api import Explainer
    from onnxcam.engine.explanation import Explanation

HELP = "explain images or .npy inputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shared.add_model_arguments(parser)
    parser.add_argument("--method", default="score-cam", help="method name (default score-cam)")
    shared.add_method_option(parser)
    parser.add_argument("--out", default="out", help="output directory")
    parser.add_argument(
        "--panel", action="store_true", help="show the input beside the map in each picture"
    )
    parser.add_argument(
        "--report", action="store_true", help="also write report.html: every map in one page"
    )


def run(args: argparse.Namespace) -> int:
    from onnxcam.io import prepare_dir

    options = shared.method_options(args.method, args.option)
    out = prepare_dir(args.out)
    explainer = shared.explainer_from_args(args)
    x, pictures, names = shared.inputs_from_args(args, explainer)
    targets = shared.targets(args)
    seconds = 0.0
    for index, target in enumerate(targets):
        folder = out if len(targets) == 1 else prepare_dir(out / f"target{index}")
        result = explainer.explain(x, method=args.method, target=target, **options)
        seconds += result.metadata["seconds"]
        save(result, explainer, x, pictures, names, folder, args)
    at_layer = f" at layer {result.layer}" if result.layer is not None else ""
    where = out if len(targets) == 1 else out / "target*"
    print(
        f"{args.method}{at_layer} on {explainer.provider}: "
        f"{seconds:.2f} s for {len(x)} input(s); manifest {where}/manifest.json"
        + (f"; report {where}/report.html" if args.report else "")
    )
    return 0


def save(
    result: Explanation,
    explainer: Explainer,
    x: np.ndarray,
    pictures: Sequence[np.ndarray | None],
    names: Sequence[str],
    out: Path,
    args: argparse.Namespace,
) -> None:
    """Write one explanation's maps, manifest (and report) to `out` and say what each input
    explained."""
    images = pictures if all(p is not None for p in pictures) else None
    series = explainer.validate(x) if result.maps.ndim == 2 else None
    result.save(out, images=images, names=names, series=series, panel=args.panel)
    if args.report:
        from onnxcam.evaluation.html import report_html
        from onnxcam.io import write_atomic

        page = report_html(
            f"onnxcam explain: {args.method}", {args.method: result}, names, images, series
        )
        write_atomic(out / "report.html", page.encode())
    warning = conservation_warning(result.metadata, names)
    if warning:
        print(warning, file=sys.stderr)
    label = result.metadata.get("target")
    if label is not None:
        for name, score in zip(names, result.metadata["target_scores"], strict=True):
            print(f"{name}: {label} (score {score:.3f}) -> {out / name}.png")
        return
    for i, (name, prob) in enumerate(zip(names, result.probabilities, strict=True)):
        print(f"{name}: {result.class_text(i)} (p={prob:.3f}) -> {out / name}.png")


#: Where LRP's relevance plus what biases took may lie as a share of the explained score.
CONSERVED = (0.5, 2.0)


def conservation_warning(metadata: dict, names: Sequence[str]) -> str | None:
    """One line naming the inputs whose relevance, with what biases took, is not about the
    explained score: relevance was lost or created on the way (None when all are)."""
    if "conservation" not in metadata:
        return None
    kept = np.asarray(metadata["conservation"]) + np.asarray(metadata["absorbed"])
    low, high = CONSERVED
    bad = [i for i, share in enumerate(kept) if np.isfinite(share) and not low <= share <= high]
    if not bad:
        return None
    listed = ", ".join(f"{names[i]}: {kept[i]:.3g}" for i in bad[:5])
    more = f", and {len(bad) - 5} more" if len(bad) > 5 else ""
    return (
        "warning: LRP relevance with what biases took is not the explained score "
        f"({listed}{more} times it; expected {low:g} to {high:g}): relevance was lost or "
        "created on the way (alpha-beta where one sign is absent, a large epsilon, sums that "
        "nearly cancel)"
    )
