"""What a model's outputs are, read from the graph: class scores, a dense map, or detections.

The kind decides which targets can explain an output (a class, a region of a dense map, a box
of a detector), so a dense map or a detector's output is never read as class scores. It is read
from declared shapes against the input's rank:

- class scores: (N, K), or (N, K, 1, 1) of fully convolutional heads;
- dense: (N, K, H, W) of an image model, (N, K, T) of a series model (scores per position);
- detections, raw: (N, 4+K, A) with boxes (cx, cy, w, h) then K class scores per anchor, as
  YOLOv8 writes it ("anchors-last"), or (N, A, 5+K) with boxes, objectness, then class scores,
  as YOLOv5 writes it ("anchors-first"); the smaller known axis holds the box and class rows;
- detections, decoded (after NMS): boxes (N, D, 4) beside (N, D) scores and, optionally,
  (N, D) classes (an integer output, or the one whose name says class or label); or one
  (N, D, 6) table x1, y1, x2, y2, score, class computed through NonMaxSuppression or TopK
  (the shape alone would read as raw detections with one class). Boxes are corners in input
  pixels; rows of score 0 are padding.

What the shapes cannot tell (free axes on both sides) is an error that asks for `output_kind`.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from onnxcam.engine.graph.info import FLOAT_TYPES, ModelInfo, TensorSpec
from onnxcam.engine.graph.surgery import needed_indices
from onnxcam.errors import ModelError

CLASS_SCORES = "class-scores"
DENSE = "dense"
DETECTIONS = "detections"
ANCHORS_LAST = "detections-anchors-last"
ANCHORS_FIRST = "detections-anchors-first"
DECODED = "detections-decoded"
#: What `output_kind` accepts (`detections` lets the shape choose between the two raw layouts).
KINDS = (CLASS_SCORES, DENSE, DETECTIONS, ANCHORS_LAST, ANCHORS_FIRST, DECODED)
#: Ops after which an output holds decoded detections.
DECODING_OPS = ("NonMaxSuppression", "TopK")
TEXT = {
    CLASS_SCORES: "class scores",
    DENSE: "dense map (scores per position)",
    ANCHORS_LAST: "detections, raw (N, 4+K, anchors)",
    ANCHORS_FIRST: "detections, raw (N, anchors, 5+K)",
    DECODED: "detections, decoded (boxes, scores)",
}


@dataclass(frozen=True)
class Decoded:
    """Where decoded detections are: boxes (N, D, 4), scores (N, D), classes (N, D) or None;
    all three one (N, D, 6) table where `packed`."""

    boxes: str
    scores: str
    classes: str | None = None

    @property
    def packed(self) -> bool:
        return self.boxes == self.scores

    @property
    def reads(self) -> tuple[str, ...]:
        """The outputs the detections are read from."""
        names = (self.boxes, self.scores, self.classes)
        return tuple(dict.fromkeys(n for n in names if n is not None))


@dataclass(frozen=True)
class OutputInfo:
    """One graph output and what it holds (with the rest of its detections where decoded)."""

    name: str
    kind: str
    shape: tuple | None
    decoded: Decoded | None = None

    @property
    def is_detections(self) -> bool:
        """Raw detections (anchors), which box targets read with the model's own decoding."""
        return self.kind in (ANCHORS_LAST, ANCHORS_FIRST)

    @property
    def reads(self) -> tuple[str, ...]:
        """The outputs a target reads."""
        return self.decoded.reads if self.decoded is not None else (self.name,)

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


def _decoded(specs: list[TensorSpec]) -> Decoded | None:
    """Boxes (N, D, 4) beside (N, D) scores (and classes), as the module docstring says."""
    boxes = [s for s in specs if s.shape is not None and len(s.shape) == 3 and s.shape[2] == 4]
    if not boxes:
        return None
    rows = boxes[0].shape[1]
    flat = [
        s
        for s in specs
        if s.shape is not None
        and len(s.shape) == 2
        and (s.shape[1] == rows or not isinstance(rows, int) or not isinstance(s.shape[1], int))
    ]
    named = [s for s in flat if any(w in s.name.lower() for w in ("class", "label"))]
    integer = [s for s in flat if s.elem_type not in FLOAT_TYPES]
    classes = (integer or named or [None])[0]
    scores = [s for s in flat if s is not classes and s.elem_type in FLOAT_TYPES]
    if not scores:
        return None
    return Decoded(boxes[0].name, scores[0].name, None if classes is None else classes.name)


def _after_decoding(info: ModelInfo, name: str) -> bool:
    """Whether a NonMaxSuppression or TopK node computes into `name`."""
    nodes = info.model.graph.node
    return any(nodes[i].op_type in DECODING_OPS for i in needed_indices(nodes, [name]))


def _packed(spec: TensorSpec) -> Decoded | None:
    """One (N, D, 6) table of decoded detections."""
    shape = spec.shape
    if shape is not None and len(shape) == 3 and shape[2] == 6:
        return Decoded(spec.name, spec.name, spec.name)
    return None


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
    group = _decoded(specs)
    found = []
    for spec in specs:
        packed = _packed(spec)
        if group is not None and spec.name in group.reads:
            found.append(OutputInfo(spec.name, DECODED, spec.shape, group))
        elif packed is not None and _after_decoding(info, spec.name):
            found.append(OutputInfo(spec.name, DECODED, spec.shape, packed))
        else:
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
    if kind == DECODED or (kind is None and chosen.kind == DECODED):
        decoded = chosen.decoded or _packed(spec)
        if decoded is None:
            raise ModelError(
                f"output {name!r} of shape {spec.shape}: expected decoded detections, boxes "
                "(N, D, 4) beside (N, D) scores or one (N, D, 6) table"
            )
        return OutputInfo(name, DECODED, spec.shape, decoded)
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
