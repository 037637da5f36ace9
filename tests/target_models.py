"""Small torch models with outputs beyond class scores, for the target tests: a U-Net (a dense
map (N, K, H, W)) and a YOLO-style detector (raw detections (N, 4+K, A), or (N, A, 5+K) with
objectness), each with random weights."""

from __future__ import annotations

import torch
from torch import nn


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
