"""Which score is explained: a class, a region of a dense map, or a box of a detector.

A target turns the outputs of one pass into one score per input. Class targets (top-1 or given,
logit or probability) read the class-score output directly. Region and box targets are written
into the graph as ONNX ops after the model's output (`BoundTarget.attach`), so that every
method runs through them unchanged: perturbation methods score each pass with the target's
score, gradient methods and LRP seed the backward graph that the engine builds over the
attached ops, so the target's own gradient is differentiated with the model.

A bound target holds M instances (one box or mask each) and the instance each input explains
(`rows`): the attached output is (N, M), one column per instance, and input i reads column
rows[i], as class targets read column c.

- region:c[:mask] (Semantic segmentation, pytorch-grad-cam's SemanticSegmentationTarget): the
  class-c scores of a dense output summed over a mask; `auto` masks the positions where c is
  the argmax over classes (a one-channel map: where it exceeds half its largest value).
- box:c:x1,y1,x2,y2 (in the model's input pixels): the detection that matches the box best.
  `iou-score` (gradient methods; pytorch-grad-cam's FasterRCNNBoxScoreTarget): the largest
  IoU x class-c score over anchors; `d-rise` (perturbation methods; Petsiuk et al., CVPR
  2021): the largest IoU x cosine of the class vectors x objectness.
- detection:k: the box and class of the k-th detection (by score, after NMS) of each
  unperturbed input, explained as a box target; `detections`: all of them at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxcam.engine.detections import decode, decoded, iou
from onnxcam.engine.graph import opset_version
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.engine.graph.outputs import ANCHORS_FIRST, DENSE, OutputInfo
from onnxcam.errors import ArgumentError, InputError, TargetError

Target = None | str | int | Sequence[int] | np.ndarray
SCORE_KINDS = ("logit", "prob")
#: How a box is scored: per method family (see the module docstring).
BOX_SCORES = ("iou-score", "d-rise")
#: The attached output's name.
TARGET_OUTPUT = "onnxcam_target_scores"
#: IoU a detection must reach with a box target (pytorch-grad-cam's FasterRCNNBoxScoreTarget).
MATCH_IOU = 0.5


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64 (in place on one float64 copy: every temporary
    of a (49, 1000) score table costs its page faults, several times the arithmetic)."""
    e = np.array(x, np.float64)
    e -= e.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def picked_softmax(x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """softmax(x)[i, columns[i]] for the rows of a 2-D x, without dividing the whole table."""
    e = np.array(x, np.float64)
    e -= e.max(axis=1, keepdims=True)
    np.exp(e, out=e)
    return e[np.arange(len(e)), columns] / e.sum(axis=1)


def resolve_targets(target: Target, logits: np.ndarray) -> np.ndarray:
    """(N,) class indices from `target`: None or "top1", one index for all, or one per input."""
    n, n_classes = logits.shape
    if target is None or (isinstance(target, str) and target.lower() == "top1"):
        return logits.argmax(axis=1).astype(np.int64)
    if isinstance(target, str):
        try:
            target = int(target)
        except ValueError:
            raise TargetError(
                f"target must be 'top1' or a class index (or region:C[:mask.png], "
                f"box:C:x1,y1,x2,y2, detection:K, detections), got {target!r}"
            ) from None
    classes = np.asarray(target)
    if classes.dtype.kind not in "iu" or classes.ndim > 1:
        raise TargetError(f"target must be an integer class index or one per input, got {target!r}")
    classes = np.broadcast_to(classes, (n,)) if classes.ndim == 0 else classes
    if len(classes) != n:
        raise TargetError(f"expected {n} target classes (one per input), got {len(classes)}")
    bad = classes[(classes < 0) | (classes >= n_classes)]
    if len(bad):
        raise TargetError(
            f"class index {int(bad[0])} out of range: the model has {n_classes} classes "
            f"(0..{n_classes - 1})"
        )
    return classes.astype(np.int64)


def class_scores(outputs: np.ndarray, classes: np.ndarray, kind: str = "logit") -> np.ndarray:
    """Score of class classes[i] in row i: the logit itself or its softmax probability."""
    rows = np.arange(len(classes))
    outputs = outputs.reshape(len(outputs), -1)  # (N, C, 1, 1) heads of fully convolutional nets
    if kind == "logit":
        return outputs[rows, classes].astype(np.float64)
    if kind == "prob":
        return picked_softmax(outputs, classes)
    raise ArgumentError(f"score must be one of {SCORE_KINDS}, got {kind!r}")


@dataclass(frozen=True)
class Region:
    """region:c[:mask]: class c's dense scores summed over `mask` ((*S) or (N, *S) array, a
    PNG path, or "auto")."""

    cls: int
    mask: str | np.ndarray = "auto"

    @property
    def label(self) -> str:
        name = self.mask if isinstance(self.mask, str) else "array"
        return f"region:{self.cls}:{name}"


@dataclass(frozen=True)
class Box:
    """box:c:x1,y1,x2,y2: the detection of class c that matches the box (input pixels)."""

    cls: int
    box: tuple[float, float, float, float]

    @property
    def label(self) -> str:
        return f"box:{self.cls}:" + ",".join(f"{v:g}" for v in self.box)


@dataclass(frozen=True)
class Detection:
    """detection:k: the k-th detection (0 = the top one) of each unperturbed input;
    `detections` (k None): every detection of every input, each input explaining its top one
    (D-RISE explains them all in one set of passes)."""

    k: int | None

    @property
    def label(self) -> str:
        return "detections" if self.k is None else f"detection:{self.k}"


TargetSpec = Region | Box | Detection


def _integer(text: str, what: str, label: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TargetError(f"target {label!r}: expected an integer {what}, got {text!r}") from None
    if value < 0:
        raise TargetError(f"target {label!r}: expected {what} >= 0, got {value}")
    return value


def parse(text: str) -> Target | TargetSpec:
    """A --target value: a class (top1, an index), region:C[:MASK.png|auto],
    box:C:x1,y1,x2,y2, detection:K or detections."""
    kind, _, rest = text.partition(":")
    if kind == "region":
        cls, _, mask = rest.partition(":")
        return Region(_integer(cls, "class", text), mask or "auto")
    if kind == "box":
        cls, _, coords = rest.partition(":")
        parts = coords.split(",")
        try:
            box = tuple(float(p) for p in parts)
        except ValueError:
            box = ()
        if len(box) != 4 or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise TargetError(
                f"target {text!r}: expected box:CLASS:x1,y1,x2,y2 with x1 < x2 and y1 < y2, "
                f"got {coords!r}"
            )
        return Box(_integer(cls, "class", text), box)
    if kind == "detection":
        return Detection(_integer(rest, "detection rank K", text))
    if text == "detections":
        return Detection(None)
    return text


@dataclass(frozen=True)
class BoundTarget:
    """A target fixed for one batch: M instances and the instance each input explains."""

    label: str
    output: OutputInfo
    rows: np.ndarray  # (N,) instance per input
    classes: np.ndarray  # (M,) class per instance
    masks: np.ndarray | None = None  # (M, *S) region masks
    boxes: np.ndarray | None = None  # (M, 4) x1, y1, x2, y2
    box_score: str = "iou-score"

    @property
    def key(self) -> str:
        """Identifies the attached graph (one per distinct set of constants)."""
        digest = hashlib.sha256()
        for part in (self.classes, self.masks, self.boxes):
            if part is not None:
                digest.update(f"{part.shape}{part.dtype}".encode())
                digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(f"{self.output.name}{self.output.kind}{self.box_score}".encode())
        return digest.hexdigest()

    def attach(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """The model with the (N, M) target scores as its first output, written after the
        explained output as ONNX ops (the other outputs are kept after it)."""
        b = NodeBuilder(opset_version(model), "onnxcam_target/")
        cast = [b.op("Cast", [name], to=TensorProto.FLOAT) for name in self.output.reads]
        source = cast[0]  # float16 models too
        decoded = self.output.decoded
        if self.masks is not None:
            scores = _region_scores(b, source, self.classes, self.masks)
        elif decoded is not None:
            corners = [b.const(self.boxes[:, i].reshape(1, -1, 1), np.float32) for i in range(4)]
            scores = decoded_scores(b, cast, decoded.packed, corners, self.classes)
        else:
            layout = self.output.kind
            scores = _box_scores(b, source, layout, self.classes, self.boxes, self.box_score)
        b.nodes.append(helper.make_node("Identity", [scores], [TARGET_OUTPUT]))
        out = onnx.ModelProto()
        out.CopyFrom(model)
        out.graph.node.extend(b.nodes)
        out.graph.initializer.extend(b.initializers)
        value = helper.make_tensor_value_info(
            TARGET_OUTPUT, TensorProto.FLOAT, ["batch", len(self.classes)]
        )
        outputs = list(out.graph.output)
        del out.graph.output[:]
        out.graph.output.extend([value, *outputs])
        return out


def _region_scores(b: NodeBuilder, out: str, classes: np.ndarray, masks: np.ndarray) -> str:
    """sum over positions of out[:, c_m] * mask_m: (N, M)."""
    return region_scores(b, out, b.const(masks[None], np.float32), masks.ndim - 1, classes)


def region_scores(
    b: NodeBuilder, out: str, masks: str, n_spatial: int, classes: np.ndarray | None = None
) -> str:
    """(N, M): the sum over positions of out[:, c_m] * masks[:, m] for the classes c_m (every
    class where None); masks broadcast to (N, M, *S)."""
    picked = out if classes is None else b.op("Gather", [out, b.ints(classes)], axis=1)
    masked = b.op("Mul", [picked, masks])
    return b.reduce("ReduceSum", masked, list(range(2, n_spatial + 2)), keepdims=False)


def _box_scores(
    b: NodeBuilder, out: str, layout: str, classes: np.ndarray, boxes: np.ndarray, how: str
) -> str:
    """box_scores for constant boxes (M, 4)."""
    corners = [b.const(boxes[:, i].reshape(1, -1, 1), np.float32) for i in range(4)]
    return box_scores(b, out, layout, corners, how, classes)


def _area(b: NodeBuilder, corners: Sequence[str]) -> str:
    return b.op(
        "Mul", [b.op("Sub", [corners[2], corners[0]]), b.op("Sub", [corners[3], corners[1]])]
    )


def _iou(b: NodeBuilder, found: Sequence[str], found_area: str, corners: Sequence[str]) -> str:
    """IoU of the model's boxes (corners each (N, 1, D), areas) with the instances' boxes
    (corners each broadcasting to (N, M, 1)): (N, M, D)."""

    def overlap(low: int, high: int) -> str:  # a tie splits the gradient (the Max/Min rule)
        top = b.op("Min", [found[high], corners[high]])
        return b.op("Relu", [b.op("Sub", [top, b.op("Max", [found[low], corners[low]])])])

    ix, iy = overlap(0, 2), overlap(1, 3)
    inter = b.op("Mul", [ix, iy])
    both = b.op("Add", [found_area, _area(b, corners)])
    return b.op("Div", [inter, b.op("Sub", [both, inter])])


def along(b: NodeBuilder, t: str, start: int, stop: int, axis: int) -> str:
    """t[start:stop] along `axis`."""
    return b.op("Slice", [t, b.ints([start]), b.ints([stop]), b.ints([axis])])


def corners_of(b: NodeBuilder, cx: str, cy: str, w: str, h: str) -> list[str]:
    """x1, y1, x2, y2 of boxes given as centre and size."""
    half_w, half_h = (b.op("Mul", [v, b.const(0.5, np.float32)]) for v in (w, h))
    return [
        b.op("Sub", [cx, half_w]),
        b.op("Sub", [cy, half_h]),
        b.op("Add", [cx, half_w]),
        b.op("Add", [cy, half_h]),
    ]


def decoded_scores(
    b: NodeBuilder, parts: Sequence[str], packed: bool, corners: Sequence[str], classes: np.ndarray
) -> str:
    """Per instance m, the largest over the model's decoded detections d of IoU(box_d, box_m)
    x score_d where class_d is c_m (IoU x cosine of one-hot class vectors x the score, D-RISE's
    similarity, is the same number): (N, M). parts: boxes, scores, classes (float32), or one
    (N, D, 6) table where packed."""

    def column(t: str, i: int) -> str:  # (N, D, columns) -> (N, 1, D)
        return b.op("Transpose", [along(b, t, i, i + 1, 2)], perm=[0, 2, 1])

    if packed:
        found = [column(parts[0], i) for i in range(4)]
        scores, labels = column(parts[0], 4), column(parts[0], 5)
    else:
        boxes, scores, *labels = parts  # no classes output: one class, 0
        labels = labels or [b.op("Mul", [scores, b.const(0.0, np.float32)])]
        found = [column(boxes, i) for i in range(4)]
        scores, labels = (b.unsqueeze(t, [1]) for t in (scores, labels[0]))
    scores = b.op("Relu", [scores])  # padding rows of score -1 count as none
    overlap = _iou(b, found, _area(b, found), corners)  # (N, M, D)
    wanted = b.const(classes.reshape(1, -1, 1), np.float32)
    same = b.op("Cast", [b.op("Equal", [labels, wanted])], to=TensorProto.FLOAT)
    score = b.op("Mul", [b.op("Mul", [overlap, scores]), same])
    return b.reduce("ReduceMax", score, [2], keepdims=False)


def box_rows(b: NodeBuilder, out: str, layout: str) -> tuple[str, int]:
    """The raw detections as (N, rows, A), and the first class row (4, or 5 after objectness)."""
    if layout == ANCHORS_FIRST:
        return b.op("Transpose", [out], perm=[0, 2, 1]), 5
    return out, 4


def box_scores(
    b: NodeBuilder,
    out: str,
    layout: str,
    corners: Sequence[str],
    how: str,
    classes: np.ndarray | None = None,
) -> str:
    """Per instance m, the largest over anchors of IoU(anchor box, box_m) x class score
    (iou-score) or IoU x cos(class vector, one-hot c_m) x objectness (d-rise): (N, M).
    corners: x1, y1, x2, y2 of the M boxes, each broadcasting to (N, M, 1); classes: c_m (every
    class, M = K, where None)."""
    rows, first = box_rows(b, out, layout)

    def rows_of(start: int, stop: int) -> str:
        return along(b, rows, start, stop, 1)

    cx, cy, w, h = (rows_of(i, i + 1) for i in range(4))  # (N, 1, A)
    overlap = _iou(b, corners_of(b, cx, cy, w, h), b.op("Mul", [w, h]), corners)
    probs = rows_of(first, 2**62)  # (N, K, A)
    picked = probs if classes is None else b.op("Gather", [rows, b.ints(classes + first)], axis=1)
    if how == "iou-score":
        score = b.op("Mul", [overlap, picked])
    else:
        norm = b.op("Sqrt", [b.reduce("ReduceSum", b.op("Mul", [probs, probs]), [1])])
        score = b.op("Mul", [overlap, b.op("Div", [picked, norm])])
        if layout == ANCHORS_FIRST:
            score = b.op("Mul", [score, rows_of(4, 5)])
    return b.reduce("ReduceMax", score, [2], keepdims=False)


def bind(
    spec: TargetSpec,
    output: OutputInfo,
    values: Sequence[np.ndarray],
    box_score: str = "iou-score",
) -> BoundTarget:
    """The target fixed for a batch whose outputs `output.reads` are `values` (unperturbed
    inputs); a target that matches nothing (an empty mask, no detection) is an error naming
    it."""
    raw = values[0]
    n = len(raw)
    if isinstance(spec, Region):
        if output.kind != DENSE:
            raise TargetError(
                f"target {spec.label!r} needs a dense output (N, K, H, W) or (N, K, T); "
                f"output {output.name!r} is {output.text()}"
            )
        _check_class(spec.cls, raw.shape[1], spec.label)
        masks = region_masks(spec, raw)
        empty = np.flatnonzero(masks.reshape(len(masks), -1).sum(axis=1) == 0)
        if len(empty):
            where = f"input {int(empty[0])}" if len(masks) == n else "any input"
            raise TargetError(f"target {spec.label!r} covers no position of {where}: empty mask")
        rows = np.arange(n) if len(masks) == n else np.zeros(n, np.int64)
        classes = np.full(len(masks), spec.cls, np.int64)
        return BoundTarget(spec.label, output, rows, classes, masks=masks)
    if not output.is_detections and output.decoded is None:
        raise TargetError(
            f"target {spec.label!r} needs a detector's output: raw (N, 4+K, anchors) or "
            f"(N, anchors, 5+K), or decoded boxes and scores; output {output.name!r} is "
            f"{output.text()}"
        )
    if box_score not in BOX_SCORES:
        raise ArgumentError(f"box score must be one of {BOX_SCORES}, got {box_score!r}")
    if output.decoded is not None:
        found = decoded(values, output.decoded.packed)
    else:
        found = decode(raw, output.kind == ANCHORS_FIRST)
    if isinstance(spec, Detection) and spec.k is None:
        empty = [i for i, d in enumerate(found) if not len(d.scores)]
        if empty:
            raise TargetError(f"target 'detections': input {empty[0]} has no detection")
        counts = np.array([len(d.scores) for d in found])
        rows = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        boxes = np.concatenate([d.boxes for d in found])
        classes = np.concatenate([d.classes for d in found]).astype(np.int64)
        return BoundTarget(spec.label, output, rows, classes, boxes=boxes, box_score=box_score)
    if isinstance(spec, Detection):
        short = [i for i, d in enumerate(found) if len(d.scores) <= spec.k]
        if short:
            i = short[0]
            raise TargetError(
                f"target {spec.label!r}: input {i} has {len(found[i].scores)} detection(s), "
                f"expected more than {spec.k}"
            )
        boxes = np.stack([d.boxes[spec.k] for d in found])
        classes = np.array([d.classes[spec.k] for d in found], np.int64)
        rows = np.arange(n)
        return BoundTarget(spec.label, output, rows, classes, boxes=boxes, box_score=box_score)
    if found[0].n_classes is not None:
        _check_class(spec.cls, found[0].n_classes, spec.label)
    box = np.asarray(spec.box, np.float64)
    for i, d in enumerate(found):
        same = d.classes == spec.cls
        if not same.any() or iou(d.boxes[same], box).max() < MATCH_IOU:
            raise TargetError(
                f"target {spec.label!r} matches no detection of input {i}: expected a class "
                f"{spec.cls} detection with IoU >= {MATCH_IOU} (it has {len(d.scores)} detections)"
            )
    classes = np.array([spec.cls], np.int64)
    return BoundTarget(
        spec.label, output, np.zeros(n, np.int64), classes, boxes=box[None], box_score=box_score
    )


def _check_class(cls: int, n_classes: int, label: str) -> None:
    if cls >= n_classes:
        raise TargetError(
            f"target {label!r}: class {cls} out of range, the output has {n_classes} classes "
            f"(0..{n_classes - 1})"
        )


def region_masks(spec: Region, raw: np.ndarray) -> np.ndarray:
    """(M, *S) float masks on the output's positions: one per input for `auto`, else the given
    mask (a PNG is read as nonzero pixels and resized to the output by nearest neighbour)."""
    spatial = raw.shape[2:]
    if isinstance(spec.mask, str) and spec.mask == "auto":
        if raw.shape[1] == 1:
            peak = raw.reshape(len(raw), -1).max(axis=1).reshape(-1, *[1] * len(spatial))
            return (raw[:, 0] > peak / 2).astype(np.float32)
        return (raw.argmax(axis=1) == spec.cls).astype(np.float32)
    mask = read_mask(spec.mask) if isinstance(spec.mask, str) else np.asarray(spec.mask)
    if mask.ndim == len(spatial):
        mask = mask[None]
    if mask.ndim != len(spatial) + 1 or len(mask) not in (1, len(raw)):
        raise TargetError(
            f"target {spec.label!r}: expected a mask of shape {spatial} or "
            f"({len(raw)}, *{spatial}), got {mask.shape}"
        )
    if mask.shape[1:] != spatial:
        picks = [np.arange(s) * m // s for s, m in zip(spatial, mask.shape[1:], strict=True)]
        mask = mask[np.ix_(np.arange(len(mask)), *picks)]
    return (mask != 0).astype(np.float32)


def read_mask(path: str) -> np.ndarray:
    """A mask image as a 2-D array: nonzero where any channel is nonzero."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(Path(path)) as image:
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise InputError(f"mask {path!r}: expected a readable image (PNG), got: {err}") from None
    return pixels if pixels.ndim == 2 else pixels.any(axis=-1)
