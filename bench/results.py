"""Faithfulness of every registered method on the pretrained EfficientNet-Lite0 of `make demo`,
over the real photos shipped in installed packages: runs `onnxcam evaluate` and writes
docs/results.md (the command, the table, the plots in docs/results/).

    python bench/results.py [--out docs/results] [--doc docs/results.md]

Methods registered later (e.g. the gradient family) join through the registry with their
defaults; METHOD_OPTIONS only shrinks the costly perturbation methods so that the whole run
stays near ten minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import onnxcam
from onnxcam.cli import main as cli
from onnxcam.demo import DEMO_PREPROCESS, efficientnet_lite0_onnx
from onnxcam.engine.targets import softmax
from onnxcam.io import load_image
from onnxcam.io.labels import imagenet_labels
from onnxcam.io.pictures import overlay

ROOT = Path(__file__).resolve().parent.parent
#: Fewer passes than the defaults for the methods that run thousands per image.
METHOD_OPTIONS = {
    "rise": {"n_masks": 1000},
    "ss-cam": {"n_samples": 4, "max_channels": 128},
    "is-cam": {"n_steps": 4, "max_channels": 128},
    "occlusion": {"patch": 32, "stride": 16},
}
METRICS = "deletion,insertion,avg-drop,increase,road"
#: RISE's batched evaluation moves 224 * 8 positions per step (29 points at 224x224).
CAUSAL_STEP = 1792
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "camera")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
#: The photos of the LRP and SR-map gallery, and the methods shown.
GALLERY_PHOTOS = ("chelsea", "coffee", "astronaut")
GALLERY_METHODS = ("lrp", "sr-map")


def photos(folder: Path) -> list[Path]:
    """The photos as PNG/JPEG files in `folder`: scikit-image's, and scikit-learn's if present."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    source = Path(data.__file__).parent
    for name in SKIMAGE_PHOTOS:
        image = Image.open(next(source.glob(f"{name}.*"))).convert("RGB")
        paths.append(folder / f"{name}.png")
        image.save(paths[-1])
    try:
        from sklearn.datasets import load_sample_image
    except ImportError:
        print("scikit-learn is not installed: its two photos are left out", file=sys.stderr)
        return paths
    for name in SKLEARN_PHOTOS:
        paths.append(folder / name.replace(".jpg", ".png"))
        Image.fromarray(load_sample_image(name)).save(paths[-1])
    return paths


def command(model: Path, inputs: list[Path], out: Path) -> list[str]:
    options = [
        f"{method}:{key}={value}"
        for method, values in METHOD_OPTIONS.items()
        if method in onnxcam.methods()
        for key, value in values.items()
    ]
    argv = ["evaluate", str(model), *map(str, inputs), "--methods", "all", "--metrics", METRICS]
    for option in options:
        argv += ["--option", option]
    for metric in ("deletion", "insertion"):
        argv += ["--metric-option", f"{metric}:step={CAUSAL_STEP}"]
    return [*argv, "--out", str(out)]


def relative(path: Path, start: Path = ROOT) -> str:
    """`path` relative to `start` (the repository root by default) where it lies inside it."""
    path, start = path.resolve(), start.resolve()
    return os.path.relpath(path, start) if path.is_relative_to(ROOT) else str(path)


def predictions(model: Path, inputs: list[Path]) -> list[str]:
    from onnxcam.cli.args import explainer_from_args, inputs_from_args
    from onnxcam.cli.dispatch import parser

    args = parser().parse_args(["explain", str(model), *map(str, inputs), "--quiet"])
    explainer = explainer_from_args(args)
    x, _, names = inputs_from_args(args, explainer)
    logits, _ = explainer.forward(x)
    classes, table = logits.argmax(1), imagenet_labels()
    probability = softmax(logits)[np.arange(len(x)), classes]
    return [
        f"{n} ({table[c]}, p={p:.2f})" for n, c, p in zip(names, classes, probability, strict=True)
    ]


def shown_path(text: str, doc: Path) -> str:
    """How a path of the command appears in the doc: inside the repository relative to it, in
    the home directory with ~."""
    path = Path(text)
    if not path.exists():
        return text
    if path.resolve().is_relative_to(ROOT):
        return relative(path)
    home = Path.home()
    return f"~/{path.resolve().relative_to(home)}" if path.resolve().is_relative_to(home) else text


def gallery(model: Path, inputs: list[Path], out: Path) -> tuple[Path, list[list[str]]]:
    """LRP and the SR map (default options) on GALLERY_PHOTOS with `onnxcam explain`: one
    picture of rows (each method's map blended over the photo as the model saw it, from the
    maps onnxcam writes, then LRP's signed relevance
    summed over channels, red positive, blue negative, scaled to the 99.5th percentile of |R|);
    and the commands run."""
    from matplotlib import colormaps

    chosen = [p for p in inputs if p.stem in GALLERY_PHOTOS]
    commands, rows = [], []
    for method in GALLERY_METHODS:
        folder = ROOT / "out" / "results" / method
        argv = ["explain", str(model), *map(str, chosen), "--method", method]
        argv += ["--out", str(folder), "--quiet"]
        if cli(argv) != 0:
            raise SystemExit(f"onnxcam explain --method {method} failed")
        commands.append(argv)
        rows.append(
            [
                overlay(
                    np.load(folder / f"{p.stem}.npy"), load_image(p, (224, 224), DEMO_PREPROCESS)[1]
                )
                for p in chosen
            ]
        )
    signed = []
    for p in chosen:
        relevance = np.load(ROOT / "out" / "results" / "lrp" / f"{p.stem}_relevance.npy").sum(0)
        scale = np.quantile(np.abs(relevance), 0.995) or 1.0
        colours = colormaps["bwr"]((np.clip(relevance / scale, -1, 1) + 1) / 2)[..., :3]
        signed.append((colours * 255).round().astype(np.uint8))
    rows.append(signed)
    picture = out / "gallery-lrp-sr-map.png"
    Image.fromarray(np.concatenate([np.concatenate(r, 1) for r in rows], 0)).save(picture)
    return picture, commands


def _quoted(argument: str) -> str:
    """Shell quoting that keeps a leading ~/ expandable."""
    return argument if argument.startswith("~/") else shlex.quote(argument)


def write_doc(
    doc: Path,
    out: Path,
    argv: list[str],
    seconds: float,
    load: float,
    photo_list: list[str],
    shown_gallery: tuple[Path, list[list[str]]],
) -> None:
    table = (out / "summary.md").read_text()
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    methods = [row.split("|")[1].strip() for row in rows]
    plots = "\n".join(
        f"![{name}]({relative(out / name, doc.parent)})"
        for name in ["deletion.png", "insertion.png"] + [f"curves-{m}.png" for m in methods]
    )
    shown = " ".join(_quoted(a) for a in ["onnxcam", *(shown_path(a, doc) for a in argv)]).replace(
        " --", " \\\n    --"
    )
    options = ", ".join(
        f"{m}: " + ", ".join(f"{k}={v}" for k, v in o.items()) for m, o in METHOD_OPTIONS.items()
    )
    picture, gallery_commands = shown_gallery
    columns = ", ".join(Path(a).stem for a in gallery_commands[0] if a.endswith(".png"))
    gallery_shown = "\n".join(
        " ".join(_quoted(shown_path(a, doc)) for a in ["onnxcam", *c]) for c in gallery_commands
    )
    text = f"""# Results: faithfulness on EfficientNet-Lite0

Every method registered in onnxcam ({len(methods)}), scored by `onnxcam evaluate` on the
pretrained EfficientNet-Lite0 of `make demo` (layer `auto`, ImageNet classes) over
{len(photo_list)} real photos shipped in installed packages: {", ".join(photo_list)}.
Explained class: the top-1 prediction. Regenerate this page with `make results`
(`python bench/results.py`), which wrote the photos to `out/results/photos/` and ran:

```sh
{shown}
```

Method options: the defaults, except {options} (fewer passes than the defaults, to keep the
run short on 2 CPU cores; `max_channels` keeps the channels of largest spatial std per image).
Metrics (algorithms §3): deletion and insertion with RISE's protocol (zero / blurred substrate,
uniform x grid) at the step of RISE's batched evaluation, {CAUSAL_STEP} positions (29 points at
224x224); Average Drop and Increase in Confidence (%); ROAD combined ((LeRF - MoRF) / 2 over
10-90 % imputed by noisy linear imputation); Win % (the share of photos on which a method alone
has the lowest drop).
Cells: mean over the photos [95 % percentile-bootstrap interval, 10000 resamples, seed 0]. With
{len(photo_list)} photos the intervals are wide: they say how far these numbers are from
settling a ranking, not which method is best. Grad-CAM, HiResCAM and XGrad-CAM coincide here:
after this layer the model is global average pooling and one linear layer, where all three
reduce to CAM. `lrp` and `sr-map` give pixel-level maps that are zero almost everywhere, so
Average Drop and Increase, which feed the image multiplied by the map, see a nearly black image;
deletion, insertion and ROAD, which rank pixels, are the fair comparison for them.

{table}
Run time of the whole command: {seconds / 60:.1f} min on {platform.machine()} with
{os.cpu_count()} CPU cores, shared with other work (15-minute load average {load:.1f} at the
end). The "explain s" column is each method's own time for all photos; the rest is the metrics.

{plots}

## LRP and the SR map on three photos

Rows: the overlays `onnxcam explain` writes for `lrp` and `sr-map` (default options: the
`epsilon-plus` composite), then LRP's signed relevance summed over the colour channels (red
positive, blue negative, scaled to the 99.5th percentile of |R|). Columns: {columns}.
Made by:

```sh
{gallery_shown}
```

![LRP and SR map]({relative(picture, doc.parent)})
"""
    doc.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "results.md")
    args = parser.parse_args()
    model = efficientnet_lite0_onnx()
    inputs = photos(ROOT / "out" / "results" / "photos")
    argv = command(model, inputs, args.out)
    print("onnxcam " + shlex.join(argv), file=sys.stderr)
    started = time.perf_counter()
    code = cli(argv)
    seconds = time.perf_counter() - started
    if code == 0:
        load = os.getloadavg()[2]
        shown_gallery = gallery(model, inputs, args.out)
        write_doc(
            args.doc, args.out, argv, seconds, load, predictions(model, inputs), shown_gallery
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
