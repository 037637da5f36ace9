"""Methods as declarations: the README's table, the listing, validation and parsing all come
from each method's declared options."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from onnxcam.cli import main
from onnxcam.engine.methods import (
    create,
    markdown_table,
    method_class,
    methods,
    options_of,
    parse_options,
)
from onnxcam.engine.options import OptionError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_is_the_generated_one():
    block = re.search(r"<!-- methods:[^>]*-->\n(.*?)<!-- /methods -->", README.read_text(), re.S)
    assert block, "README.md has no methods block"
    assert block.group(1) == markdown_table(), "run `onnxcam methods --markdown` into README.md"


def test_listing_names_every_method_and_option(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in methods():
        assert re.search(rf"^{re.escape(name)}: ", out, re.M), name
        for key, spec in options_of(name).items():
            assert f"--option {key}={spec.default_text()}" in out
    assert main(["methods", "rise"]) == 0
    detail = capsys.readouterr().out
    assert "Petsiuk" in detail and "n_masks = 4000" in detail  # formula/paper and options


def test_every_method_documents_formula_paper_and_options():
    for name in methods():
        doc = method_class(name).__doc__
        assert re.search(r"\b(19|20)\d\d\b|arXiv", doc), f"{name}: no paper or year"
        assert "Options:" in doc
        assert all(f"    {key} = " in doc for key in options_of(name)), name


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("occlusion", {"value": math.nan}, "value must be a number, got nan"),
        ("ablation-cam", {"value": math.inf}, "value must be a number, got inf"),
        ("ss-cam", {"sigma": math.nan}, "sigma must be a number >= 0, got nan"),
        ("layer-cam", {"layers": []}, "layers must be a non-empty list of names"),
        ("layer-cam", {"layers": "layer2"}, "layers must be a non-empty list of names"),
        ("rise", {"seed": -1}, "seed must be an integer >= 0, got -1"),
        ("rise", {"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ("rise", {"p": 0}, r"p must be a number in \(0, 1\], got 0"),
        ("rise", {"n_masks": True}, "n_masks must be a positive integer, got True"),
        ("group-cam", {"blur_size": 50}, "blur_size must be odd, got 50"),
        ("ablation-cam", {"mode": "full", "value": 1.0}, "ablates to 0"),
        ("grad-cam", {"eps": 1}, "its options are: none"),
        ("rise", {"n_mask": 10}, "unknown option 'n_mask'; its options are: n_masks, cells"),
    ],
)
def test_bad_values_name_the_option_and_what_it_takes(method, options, message):
    with pytest.raises(OptionError, match=message):
        create(method, **options)


def test_errors_are_value_errors_for_callers_that_catch_those():
    with pytest.raises(ValueError):
        create("rise", n_masks=0)


@pytest.mark.parametrize(
    ("method", "text", "value"),
    [
        ("rise", {"n_masks": "200"}, {"n_masks": 200}),
        ("rise", {"p": "0.25"}, {"p": 0.25}),
        ("recipro-cam", {"gaussian": "True"}, {"gaussian": True}),
        ("hires-cam", {"relu": "no"}, {"relu": False}),
        ("score-cam", {"max_channels": "none"}, {"max_channels": None}),
        ("layer-cam", {"layers": "layer2,layer3"}, {"layers": ("layer2", "layer3")}),
        ("layer-cam", {"layers": '["layer2"]'}, {"layers": ("layer2",)}),
        ("lrp", {"low": "-1,-2,-3"}, {"low": (-1.0, -2.0, -3.0)}),
        ("lrp", {"low": "-2"}, {"low": -2.0}),
        ("sr-map", {"scales": "1,0.5"}, {"scales": (1.0, 0.5)}),
    ],
)
def test_command_line_text_is_read_as_declared(method, text, value):
    parsed = parse_options(method, text)
    assert parsed == value
    made = create(method, **parsed)
    assert all(getattr(made, key) == want for key, want in value.items())


@pytest.mark.parametrize(
    ("method", "text", "message"),
    [
        ("rise", {"n_masks": "many"}, "n_masks must be a positive integer, got 'many'"),
        ("rise", {"p": "half"}, "p must be a number in"),
        ("recipro-cam", {"gaussian": "maybe"}, "gaussian must be true or false, got 'maybe'"),
        ("lrp", {"low": "a,b"}, "low must be a finite number or one per channel"),
    ],
)
def test_unreadable_text_is_refused_by_name(method, text, message):
    with pytest.raises(OptionError, match=message):
        parse_options(method, text)


def test_cli_refuses_a_bad_option_in_one_line(resnet_onnx, tmp_path, capsys):
    import numpy as np

    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 32, 32), np.float32))
    args = ["explain", str(resnet_onnx), str(x), "--out", str(tmp_path / "o"), "--quiet"]
    assert main([*args, "--method", "rise", "--option", "n_masks=lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rise: n_masks must be a positive integer, got 'lots'" in err
    assert not (tmp_path / "o").exists()  # refused before anything was written
