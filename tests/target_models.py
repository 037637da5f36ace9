"""Small torch models with outputs beyond class scores, for the target tests: a U-Net (a dense
map (N, K, H, W)) and a YOLO-style detector (raw detections (N, 4+K, A), or (N, A, 5+K) with
objectness), each with random weights; and NMS decoding written after a raw detector's output
(decoded detections)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from onnxcam.engine.graph import opset_version
from onnxcam.engine.graph.builder import NodeBuilder
from onnxcam.exporters import from_torch


def block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyUNet(nn.Module):
    """Two levels down, one up with a skip connection; `classes` score maps at input size."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.down1, self.down2 = block(3, 8), block(8, 16)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.fuse = block(24, 8)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down1(x)
        deep = self.down2(self.pool(skip))
        return self.head(self.fuse(torch.cat([skip, self.up(deep)], dim=1)))


class TinyDetector(nn.Module):
    """Anchor-free heads at strides 4 and 8: per cell a box (cx, cy, w, h) in input pixels
    and sigmoid class scores; (N, 4+K, A) as YOLOv8, or (N, A, 5+K) with an objectness row
    as YOLOv5 when `anchors_first`."""

    def __init__(self, classes: int = 3, anchors_first: bool = False) -> None:
        super().__init__()
        self.anchors_first, self.classes = anchors_first, classes
        rows = 4 + classes + int(anchors_first)
        self.stem = nn.Sequential(block(3, 8), nn.MaxPool2d(2), block(8, 16), nn.MaxPool2d(2))
        self.deeper = nn.Sequential(block(16, 16), nn.MaxPool2d(2))
        self.head4, self.head8 = nn.Conv2d(16, rows, 1), nn.Conv2d(16, rows, 1)
        if anchors_first:  # objectness near 1, so that random weights still detect
            with torch.no_grad():
                self.head4.bias[4] = self.head8.bias[4] = 3.0

    def level(self, features: torch.Tensor, head: nn.Module, stride: int) -> torch.Tensor:
        out = head(features)
        h, w = out.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        cx = (xs.flatten() + torch.sigmoid(out[:, 0].flatten(1))) * stride
        cy = (ys.flatten() + torch.sigmoid(out[:, 1].flatten(1))) * stride
        size = torch.exp(out[:, 2:4].flatten(2).clamp(max=4.0)) * stride * 2
        scores = torch.sigmoid(out[:, 4:].flatten(2))
        return torch.cat([cx[:, None], cy[:, None], size, scores], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s4 = self.stem(x)
        s8 = self.deeper(s4)
        out = torch.cat([self.level(s4, self.head4, 4), self.level(s8, self.head8, 8)], dim=2)
        return out.transpose(1, 2) if self.anchors_first else out


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def export_unet(folder: Path, classes: int = 3) -> tuple[TinyUNet, Path]:
    """A random TinyUNet and its ONNX file with `fuse` exposed."""
    torch.manual_seed(0)
    model = randomised(TinyUNet(classes))
    path = folder / f"unet_{classes}.onnx"
    from_torch(model, torch.randn(2, 3, 32, 32), path, layers=["fuse"])
    return model, path


def export_detector(folder: Path, anchors_first: bool) -> tuple[TinyDetector, Path]:
    """A random TinyDetector and its ONNX file with `stem` exposed."""
    torch.manual_seed(1)
    model = randomised(TinyDetector(anchors_first=anchors_first), seed=1)
    path = folder / f"detector_{anchors_first}.onnx"
    from_torch(model, torch.randn(2, 3, 32, 32), path, layers=["stem"])
    return model, path


def with_nms(model: onnx.ModelProto, detections: int = 20, packed: bool = False) -> onnx.ModelProto:
    """A raw anchors-last detector (N, 4+K, A) with its decoding written after it in ONNX, as
    exporters with NMS in the graph do: corner boxes, best class and its score per anchor,
    NonMaxSuppression per class (IoU 0.45, score 0.25), then per image the `detections` best
    kept anchors by score (rows past the kept ones have score 0). Outputs: boxes (N, D, 4),
    scores (N, D), classes (N, D) int64; or, `packed`, one (N, D, 6): x1, y1, x2, y2, score,
    class."""
    b = NodeBuilder(opset_version(model), "nms/")
    rows = b.op("Transpose", [model.graph.output[0].name], perm=[0, 2, 1])  # (N, A, 4+K)

    def cols(start: int, stop: int) -> str:
        return b.op("Slice", [rows, b.ints([start]), b.ints([stop]), b.ints([2])])

    def as_float(t: str) -> str:
        return b.op("Cast", [t], to=TensorProto.FLOAT)

    cx, cy, w, h = (cols(i, i + 1) for i in range(4))
    half_w, half_h = (b.op("Mul", [v, b.const(0.5, np.float32)]) for v in (w, h))
    corners = [b.op("Sub", [cx, half_w]), b.op("Sub", [cy, half_h])]
    corners += [b.op("Add", [cx, half_w]), b.op("Add", [cy, half_h])]
    boxes = b.op("Concat", corners, axis=2)  # (N, A, 4)
    probs = cols(4, 2**62)
    best = b.reduce("ReduceMax", probs, [2], keepdims=False)  # (N, A)
    label = b.op("ArgMax", [probs], axis=2, keepdims=0)
    apart = b.op("Mul", [as_float(label), b.const(1e4, np.float32)])  # classes never overlap
    shifted = b.op("Add", [boxes, b.unsqueeze(apart, [2])])
    limits = [b.ints([detections]), b.const([0.45], np.float32), b.const([0.25], np.float32)]
    picked = b.op("NonMaxSuppression", [shifted, b.unsqueeze(best, [1]), *limits])  # (S, 3)
    where = b.op("Gather", [picked, b.ints([0, 2])], axis=1)  # (S, 2): image, anchor
    zeros = b.op("Mul", [best, b.const(0.0, np.float32)])
    ones = b.op("Expand", [b.const([1.0], np.float32), b.dims(picked, 0, 1)])
    keep = b.op("ScatterND", [zeros, where, ones])
    kept = b.op("Mul", [best, as_float(b.op("Cast", [keep], to=TensorProto.BOOL))])
    _, order = b.op("TopK", [kept, b.ints([detections])], outputs=2, axis=1)  # (N, D)
    scores = b.op("GatherElements", [kept, order], axis=1)
    classes = b.op("GatherElements", [label, order], axis=1)
    lifted = b.unsqueeze(order, [2])
    index = b.op("Expand", [lifted, b.op("Concat", [b.dims(order, 0, 2), b.ints([4])], axis=0)])
    chosen = b.op("GatherElements", [boxes, index], axis=1)
    if packed:
        columns = [chosen, b.unsqueeze(scores, [2]), b.unsqueeze(as_float(classes), [2])]
        named = [(b.op("Concat", columns, axis=2), "detections", TensorProto.FLOAT, 6)]
    else:
        named = [
            (chosen, "boxes", TensorProto.FLOAT, 4),
            (scores, "scores", TensorProto.FLOAT, None),
            (classes, "classes", TensorProto.INT64, None),
        ]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.node.extend(b.nodes)
    out.graph.initializer.extend(b.initializers)
    del out.graph.output[:]
    for source, name, dtype, last in named:
        out.graph.node.append(helper.make_node("Identity", [source], [name]))
        shape = ["N", detections] + ([] if last is None else [last])
        out.graph.output.append(helper.make_tensor_value_info(name, dtype, shape))
    return out
