"""The Triton model repository: config.pbtxt parsed and checked against the field names of
Triton's model_config.proto and against the ONNX graph it serves."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest

from onnxcam.cli import main
from onnxcam.engine.runner import open_session
from onnxcam.serving.explainer import build_explainer

#: The documented fields of the ModelConfig messages (model_config.proto) a config may use:
#: message -> {field: nested message or None for scalars}.
SCHEMA: dict[str, dict[str, str | None]] = {
    "ModelConfig": {
        **dict.fromkeys(
            ["name", "platform", "backend", "runtime", "max_batch_size", "default_model_filename"]
        ),
        "version_policy": "Any",
        "input": "ModelInput",
        "output": "ModelOutput",
        "batch_input": "Any",
        "batch_output": "Any",
        "optimization": "Any",
        "dynamic_batching": "ModelDynamicBatching",
        "sequence_batching": "Any",
        "ensemble_scheduling": "Any",
        "instance_group": "ModelInstanceGroup",
        "cc_model_filenames": "Any",
        "metric_tags": "Any",
        "parameters": "Any",
        "model_warmup": "Any",
        "model_operation_policy": "Any",
        "model_transaction_policy": "Any",
        "model_repository_agents": "Any",
        "response_cache": "Any",
    },
    "ModelInput": {
        **dict.fromkeys(
            [
                "name",
                "data_type",
                "format",
                "dims",
                "is_shape_tensor",
                "allow_ragged_batch",
                "optional",
            ]
        ),
        "reshape": "ModelTensorReshape",
    },
    "ModelOutput": {
        **dict.fromkeys(["name", "data_type", "dims", "label_filename", "is_shape_tensor"]),
        "reshape": "ModelTensorReshape",
    },
    "ModelTensorReshape": {"shape": None},
    "ModelDynamicBatching": {
        **dict.fromkeys(
            [
                "preferred_batch_size",
                "max_queue_delay_microseconds",
                "preserve_ordering",
                "priority_levels",
                "default_priority_level",
            ]
        ),
        "default_queue_policy": "Any",
        "priority_queue_policy": "Any",
    },
    "ModelInstanceGroup": {
        **dict.fromkeys(["name", "kind", "count", "gpus", "profile", "passive"]),
        "rate_limiter": "Any",
        "secondary_devices": "Any",
        "host_policy": None,
    },
}
DATA_TYPES = {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64}
KINDS = {"KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"}
TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|([\w.+-]+)|([{}\[\]:,]))')


def parse_pbtxt(text: str) -> dict:
    """Protobuf text format -> {field: [values]}; messages become nested dicts."""
    tokens = [s or w or p for s, w, p in TOKEN.findall(text)]
    assert not TOKEN.sub("", text).strip(), "unparsed characters in the config"
    pos = 0

    def value():
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "{":
            return message("}")
        if token == "[":
            items = []
            while tokens[pos] != "]":
                items.append(value())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return items
        return token[1:-1] if token.startswith('"') else token

    def message(end):
        nonlocal pos
        fields: dict[str, list] = {}
        while pos < len(tokens) and tokens[pos] != end:
            name = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            got = value()
            fields.setdefault(name, []).extend(got if isinstance(got, list) else [got])
        pos += 1
        return fields

    return message(None)


def check_schema(fields: dict, message: str = "ModelConfig") -> None:
    for name, values in fields.items():
        assert name in SCHEMA[message], f"{message} has no field {name!r}"
        nested = SCHEMA[message][name]
        for v in values:
            assert isinstance(v, dict) == (nested is not None), f"{message}.{name}: {v!r}"
            if isinstance(v, dict) and nested != "Any":
                check_schema(v, nested)


@pytest.mark.parametrize("method", ["score-cam", "recipro-cam"])
def test_config_matches_schema_and_graph(tmp_path, resnet_onnx, method):
    code = main(
        [
            "export-explainer",
            str(resnet_onnx),
            "--method",
            method,
            "--triton-repo",
            str(tmp_path / "repo"),
            "--triton-name",
            "cam",
            "--max-batch-size",
            "16",
            "--instance-kind",
            "cpu",
        ]
    )
    assert code == 0
    folder = tmp_path / "repo" / "cam"
    config = parse_pbtxt((folder / "config.pbtxt").read_text())
    check_schema(config)
    assert config["name"] == ["cam"]
    assert config["platform"] == ["onnxruntime_onnx"] and config["backend"] == ["onnxruntime"]
    assert config["max_batch_size"] == ["16"]
    assert "max_queue_delay_microseconds" in config["dynamic_batching"][0]
    (group,) = config["instance_group"]
    assert group["kind"] == ["KIND_CPU"] and group["kind"][0] in KINDS
    model = onnx.load(folder / "1" / "model.onnx")
    assert [e["name"][0] for e in config["input"]] == [v.name for v in model.graph.input]
    assert [e["name"][0] for e in config["output"]] == ["logits", "target", "map"]
    # the served graph's outputs have the batch axis followed by dims (or the reshape's shape)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    (dims_in,) = [[int(d) for d in e["dims"]] for e in config["input"]]
    assert dims_in == list(x.shape[1:])
    session = open_session(model)
    results = session.run(None, {model.graph.input[0].name: x})
    for entry, result in zip(config["output"], results, strict=True):
        shape = entry["reshape"][0].get("shape", []) if "reshape" in entry else entry["dims"]
        assert list(result.shape) == [2, *[int(d) for d in shape]]
        assert result.dtype == DATA_TYPES[entry["data_type"][0]]


def test_parser_rejects_unknown_fields():
    with pytest.raises(AssertionError, match="no field 'max_batch'"):
        check_schema(parse_pbtxt('name: "m"\nmax_batch: 4\n'))
    with pytest.raises(AssertionError, match="ModelInput has no field 'shape'"):
        check_schema(parse_pbtxt('input [ { name: "x" shape: [ 1 ] } ]'))


def test_bad_repository_options_are_errors(tmp_path, resnet_onnx, capsys):
    explainer = build_explainer(onnx.load(resnet_onnx), "ablation-cam")
    from onnxcam.serving.triton import config_text, write_repository

    with pytest.raises(ValueError, match="max_batch_size must be >= 1, got 0"):
        config_text(explainer, "m", max_batch_size=0)
    with pytest.raises(ValueError, match=re.escape("plain directory name, got '../m'")):
        write_repository(explainer, tmp_path, "../m")
    assert main(["export-explainer", str(resnet_onnx)]) == 2
    assert "expected -o FILE and/or --triton-repo DIR" in capsys.readouterr().err


def test_hostile_tensor_names_are_escaped(resnet_onnx):
    from google.protobuf import text_encoding

    from onnxcam.serving.triton import config_text

    explainer = build_explainer(onnx.load(resnet_onnx), "ablation-cam")
    evil = 'x"\n}\n]\nbackend: "python"\ninput [ { name: "y'
    original = explainer.graph.input[0].name
    for node in explainer.graph.node:
        node.input[:] = [evil if name == original else name for name in node.input]
    explainer.graph.input[0].name = evil
    config = parse_pbtxt(config_text(explainer, "cam"))
    check_schema(config)
    assert config["backend"] == ["onnxruntime"]  # one backend line: the name did not add one
    assert len(config["input"]) == 1
    name = text_encoding.CUnescape(config["input"][0]["name"][0]).decode()
    assert name == evil


@pytest.mark.parametrize("name", ['cam"', "cam\nx", ".hidden", "a b", ""])
def test_model_names_outside_the_safe_set_are_refused(tmp_path, resnet_onnx, name):
    from onnxcam.serving.triton import write_repository

    explainer = build_explainer(onnx.load(resnet_onnx), "ablation-cam")
    with pytest.raises(ValueError, match="plain directory name"):
        write_repository(explainer, tmp_path, name)
    assert not any(tmp_path.iterdir())
