"""What a model's outputs are, read from the graph: class scores, a dense map, or detections.

The kind decides which targets can explain an output (a class, a region of a dense map, a box
of a detector), so a dense map or a detector's output is never read as class scores. It is read
from declared shapes against the input's rank:

- class scores: (N, K), or (N, K, 1, 1) of fully convolutional heads;
- dense: (N, K, H, W) of an image model, (N, K, T) of a series model (scores per position);
- detections, raw: (N, 4+K, A) with boxes (cx, cy, w, h) then K class scores per anchor, as
  YOLOv8 writes it ("anchors-last"), or (N, A, 5+K) with boxes, objectness, then class scores,
  as YOLOv5 writes it ("anchors-first"); the smaller known axis holds the box and class rows;
- detections, decoded: a model whose outputs are boxes (N, D, 4) beside (N, D) scores (and
  classes); stated, not explained.

What the shapes cannot tell (free axes on both sides) is an error that asks for `output_kind`.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from onnxcam.engine.graph.info import ModelInfo, TensorSpec
from onnxcam.errors import ModelError

CLASS_SCORES = "class-scores"
DENSE = "dense"
DETECTIONS = "detections"
ANCHORS_LAST = "detections-anchors-last"
ANCHORS_FIRST = "detections-anchors-first"
DECODED = "detections-decoded"
#: What `output_kind` accepts (`detections` lets the shape choose between the two raw layouts).
KINDS = (CLASS_SCORES, DENSE, DETECTIONS, ANCHORS_LAST, ANCHORS_FIRST)
TEXT = {
    CLASS_SCORES: "class scores",
    DENSE: "dense map (scores per position)",
    ANCHORS_LAST: "detections, raw (N, 4+K, anchors)",
    ANCHORS_FIRST: "detections, raw (N, anchors, 5+K)",
    DECODED: "detections, decoded (boxes, scores)",
}


@dataclass(frozen=True)
class OutputInfo:
    """One graph output and what it holds."""

    name: str
    kind: str
    shape: tuple | None

    @property
    def is_detections(self) -> bool:
        return self.kind in (ANCHORS_LAST, ANCHORS_FIRST)

    def text(self) -> str:
        return TEXT[self.kind]


def _raw_layout(shape: tuple, name: str) -> str:
    rows, anchors = shape[1], shape[2]
    if isinstance(rows, int) and (not isinstance(anchors, int) or anchors > rows):
        return ANCHORS_LAST
    if isinstance(anchors, int) and (not isinstance(rows, int) or rows > anchors):
        return ANCHORS_FIRST
    raise ModelError(
        f"the model's output {name!r} of shape {shape} may be detections (N, 4+K, anchors) or "
        "(N, anchors, 5+K): expected --output-kind detections-anchors-last or "
        "detections-anchors-first"
    )


def _decoded(specs: list[TensorSpec]) -> bool:
    """Boxes (N, D, 4) beside a (N, D) output."""
    boxes = [s for s in specs if s.shape is not None and len(s.shape) == 3 and s.shape[2] == 4]
    flat = [s for s in specs if s.shape is not None and len(s.shape) == 2]
    return bool(boxes) and bool(flat)


def kind_of(spec: TensorSpec, input_rank: int | None, given: str | None = None) -> str:
    """The kind of one output (see the module docstring); `given` where the user said it."""
    shape = spec.shape
    if given == DETECTIONS:
        if shape is None or len(shape) != 3:
            raise ModelError(f"output {spec.name!r} of shape {shape}: detections are rank 3")
        return _raw_layout(shape, spec.name)
    if given is not None:
        return given
    if shape is None or len(shape) < 2:
        return CLASS_SCORES  # a scalar per input is refused where the scores are read
    if len(shape) == 2 or all(d == 1 for d in shape[2:]):
        return CLASS_SCORES
    if len(shape) == 3 and input_rank == 4:
        return _raw_layout(shape, spec.name)
    if all(d is None for d in shape[2:]):
        return CLASS_SCORES  # nothing declared: the first forward pass tells (checks)
    return DENSE


def outputs_of(info: ModelInfo) -> list[OutputInfo]:
    """Every graph output with its kind (a kind that cannot be told is left to `choose`)."""
    specs = [info.specs.get(o.name) or TensorSpec(o.name, 0, None) for o in info.model.graph.output]
    rank = None if info.input.shape is None else len(info.input.shape)
    decoded = _decoded(specs)
    found = []
    for spec in specs:
        if decoded and spec.shape is not None and len(spec.shape) in (2, 3):
            found.append(OutputInfo(spec.name, DECODED, spec.shape))
            continue
        try:
            found.append(OutputInfo(spec.name, kind_of(spec, rank), spec.shape))
        except ModelError:
            found.append(OutputInfo(spec.name, "", spec.shape))
    return found


def choose(info: ModelInfo, output: str | None = None, kind: str | None = None) -> OutputInfo:
    """The explained output: `output` by name (default: the first) with `kind` where given."""
    names = [o.name for o in info.model.graph.output]
    if kind is not None and kind not in KINDS:
        raise ModelError(f"output kind must be one of {', '.join(KINDS)}, got {kind!r}")
    name = names[0] if output is None else output
    if name not in names:
        raise ModelError(f"the model has no output {output!r}: expected one of {', '.join(names)}")
    spec = info.specs.get(name) or TensorSpec(name, 0, None)
    rank = None if info.input.shape is None else len(info.input.shape)
    chosen = next(o for o in outputs_of(info) if o.name == name)
    if chosen.kind == DECODED and kind is None:
        raise ModelError(
            f"the model's outputs are decoded detections (boxes, scores): expected a model "
            f"that returns raw detections (N, 4+K, anchors) or (N, anchors, 5+K); got output "
            f"{name!r} of shape {spec.shape}"
        )
    return OutputInfo(name, kind_of(spec, rank, kind), spec.shape)


def with_first_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """The model with output `name` moved first (the output every view reads)."""
    if model.graph.output[0].name == name:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    outputs = list(copy.graph.output)
    chosen = next(o for o in outputs if o.name == name)
    del copy.graph.output[:]
    copy.graph.output.extend([chosen, *[o for o in outputs if o.name != name]])
    return copy
