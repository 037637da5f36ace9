"""report.html: one self-contained page, read back with html.parser: the inputs x methods grid
of embedded maps with class names, the metrics table with the intervals of summary.csv, and the
curves; a page rendered by headless Chromium where one is installed."""

from __future__ import annotations

import base64
import csv
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from onnxcam.cli import main


class Page(HTMLParser):
    """What the tests read off a page: images (sources, alts), table cells by table, headings,
    and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.headings: list[str] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None
        self._heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [v for k, v in attrs.items() if k in ("src", "href") and v]
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2"):
            self._heading = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag in ("h1", "h2"):
            self._heading = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._heading:
            self.headings[-1] += data


def read_page(path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def png_of(source: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(source[len(prefix) :])))


@pytest.fixture
def photos(tmp_path):
    for name, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[8:24, 8:24] = colour
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")
    (tmp_path / "labels.txt").write_text("\n".join(f"kind {i}" for i in range(10)))
    return tmp_path


def test_evaluate_writes_one_self_contained_page(resnet_onnx, photos, tmp_path):
    out = tmp_path / "report"
    args = ["evaluate", str(resnet_onnx), str(photos / "red.png"), str(photos / "blue.png")]
    args += ["--methods", "grad-cam,rise", "--metrics", "deletion,insertion,avg-drop"]
    args += ["--option", "rise:n_masks=100", "--metric-option", "deletion:step=64"]
    args += ["--metric-option", "insertion:step=64", "--resamples", "200"]
    args += ["--labels", str(photos / "labels.txt"), "--quiet", "--out", str(out)]
    assert main(args) == 0
    page = read_page(out / "report.html")
    assert all(link.startswith("data:image/png;base64,") for link in page.links)  # nothing else
    assert page.headings == ["onnxcam evaluate: grad-cam, rise", "Maps", "Metrics", "Curves"]
    grid, metrics = page.tables
    assert grid[0] == ["input", "grad-cam", "rise"]
    assert [row[0] for row in grid[1:]] == ["red", "blue"]
    maps = [image for image in page.images if " on " in image["alt"]]
    assert len(maps) == 4 and all(png_of(m["src"]).size == (32, 32) for m in maps)
    for row in grid[1:]:
        for cell in row[1:]:
            assert cell.startswith("kind ") and "(class " in cell and ", p=0." in cell
    with open(out / "summary.csv") as handle:
        summary = {(r["method"], r["metric"]): r for r in csv.DictReader(handle)}
    header = metrics[0]
    assert header[0] == "method" and header[1:] == [
        "deletion ↓",
        "insertion ↑",
        "avg-drop ↓",
        "win ↑",
    ]
    for row in metrics[1:]:
        for metric, cell in zip(["deletion", "insertion", "avg-drop", "win"], row[1:], strict=True):
            r = summary[row[0], metric]
            assert (
                cell
                == f"{float(r['mean']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"
            )
    curves = [image for image in page.images if image["alt"] in ("deletion.png", "insertion.png")]
    assert len(curves) == 2 and all(png_of(c["src"]).width > 300 for c in curves)


def test_explain_report_holds_every_input(resnet_onnx, photos, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["explain", str(resnet_onnx), str(photos), "--method", "grad-cam", "--report"]
    assert main([*args, "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"report {out}/report.html")
    page = read_page(out / "report.html")
    assert page.headings == ["onnxcam explain: grad-cam", "Maps"]
    (grid,) = page.tables
    assert grid[0] == ["input", "grad-cam"] and sorted(r[0] for r in grid[1:]) == ["blue", "red"]
    assert len(page.images) == 2


def test_chromium_renders_the_page(resnet_onnx, photos, tmp_path):
    if shutil.which("chromium") is None:  # .ci/run installs it; elsewhere it is optional
        message = "no headless Chromium installed (apt-get install chromium)"
        if os.environ.get("ONNXCAM_REQUIRE_FIXTURES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "o"
    args = ["explain", str(resnet_onnx), str(photos), "--method", "grad-cam", "--report"]
    assert main([*args, "--quiet", "--out", str(out)]) == 0
    shot = tmp_path / "shot.png"
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=900,700"]
    command += [f"--screenshot={shot}", (out / "report.html").as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (700, 900)
    # the maps were drawn: jet colours (strong blue or red), not a blank or broken page
    saturated = (np.abs(pixels[..., 0] - pixels[..., 2]) > 120).mean()
    assert saturated > 0.01
