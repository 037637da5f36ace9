"""Small torch models built on the fly for the tests (random weights, randomised BatchNorm)."""

from __future__ import annotations

import warnings

import torch
from torch import nn


class Sum(nn.Module):
    """a + b as a module (a residual sum), so that relevance rules can be attached to it."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.add = Sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return self.relu(self.add(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))), skip))


class TinyResNet(nn.Module):
    """ResNet-shaped: conv-BN-ReLU-maxpool stem, residual stages, GAP + Linear."""

    def __init__(self, widths=(8, 16, 24), classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.layer1 = BasicBlock(widths[0], widths[0])
        self.layer2 = BasicBlock(widths[0], widths[1], stride=2)
        self.layer3 = BasicBlock(widths[1], widths[2], stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class TinyVGG(nn.Module):
    """VGG-shaped: a 31-module nn.Sequential of conv/ReLU/max-pool, flatten, MLP head."""

    def __init__(self, classes: int = 7, size: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for width, convs in ((4, 2), (6, 2), (8, 3), (8, 3), (8, 3)):
            for _ in range(convs):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
                cin = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)  # features.29 is the last ReLU
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * (size // 32) ** 2, 16), nn.ReLU(), nn.Linear(16, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so BN folding is really tested."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


class ResNet18Shape(nn.Module):
    """ResNet-18's shape (7x7 stem, max-pool, BasicBlocks [2, 2, 2, 2], GAP, Linear) at a
    quarter of its widths."""

    def __init__(self, widths=(16, 32, 64, 128), classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, cin = [], widths[0]
        for i, width in enumerate(widths):
            blocks += [BasicBlock(cin, width, 1 if i == 0 else 2), BasicBlock(width, width)]
            cin = width
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def he_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights drawn as trained ReLU nets keep their scale (He et al.: N(0, 2 / fan_in)),
    biases small, so that activations neither vanish nor explode through the depth."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
    return model


def unit_outputs(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Each Conv and Linear rescaled, in order, so that its output on x has unit standard
    deviation (Mishkin & Matas's LSUV without the orthogonal start): deep random nets whose
    activations still fade under He weights then answer their input."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            seen = {}
            hook = module.register_forward_hook(lambda _m, _i, out, s=seen: s.__setitem__("y", out))
            with torch.no_grad():
                model(x)
                scale = seen["y"].std().clamp_min(1e-12)
                module.weight /= scale
                if module.bias is not None:
                    module.bias /= scale
            hook.remove()
    return model


def resnet18_shape(seed: int = 0) -> ResNet18Shape:
    """ResNet18Shape with He-initialised weights and random BatchNorm statistics."""
    return randomise_batchnorm(he_init(ResNet18Shape(), seed), seed)


def vgg_shape(seed: int = 0, size: int = 32) -> TinyVGG:
    """TinyVGG for size x size inputs with He-initialised weights."""
    return he_init(TinyVGG(size=size), seed).eval()


def tiny_resnet(seed: int = 0) -> TinyResNet:
    torch.manual_seed(seed)
    return randomise_batchnorm(TinyResNet(), seed)


def tiny_vgg(seed: int = 0) -> TinyVGG:
    torch.manual_seed(seed)
    return TinyVGG().eval()


def export_plain(model: nn.Module, path, size: tuple[int, ...], **options) -> None:
    """torch.onnx.export(dynamo=False) as users without onnxcam's exporter write it: input
    "input" (or options' names), a dynamic batch axis, an example batch of 2 of `size`."""
    names = options.pop("input_names", ["input"])
    axes = {name: {0: "n"} for name in (*names, *options.get("output_names", []))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randn(2, *size),),
            str(path),
            dynamo=False,
            input_names=names,
            dynamic_axes=axes,
            **options,
        )


def hook_outputs(model: nn.Module, x: torch.Tensor, paths: list[str]) -> dict[str, torch.Tensor]:
    """What torch forward hooks see at `paths` for input x."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(p).register_forward_hook(
            lambda _m, _i, out, p=p: seen.__setitem__(p, out.detach().clone())
        )
        for p in paths
    ]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return seen


def scoped_tensor(model, scope: str) -> str:
    """The first ONNX tensor produced under a torch module path (from the exporter's metadata)."""
    from onnxcam.engine.graph.layers import scope as _scope

    return next(node.output[0] for node in model.graph.node if _scope(node) == scope)


def linear_onnx(V, shape, bias=None):
    """y = V^T flatten(X) (+ bias): a model whose target layer can be its input (algorithms §4,
    toy model iii)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        helper.make_node("MatMul", ["flat", "V"], ["logits" if bias is None else "pre"]),
    ]
    inits = [numpy_helper.from_array(np.asarray(V, np.float32), "V")]
    if bias is not None:
        nodes.append(helper.make_node("Add", ["pre", "b"], ["logits"]))
        inits.append(numpy_helper.from_array(np.asarray(bias, np.float32), "b"))
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", V.shape[1]])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(torch.relu(self.reduce(self.pool(x)))))


class TinyMobileNet(nn.Module):
    """MobileNetV3-shaped: depthwise separable blocks, hardswish, ReLU6, squeeze-excite."""

    def __init__(self, classes: int = 6) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()
        )
        self.block = nn.Sequential(
            nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU6(),
            SqueezeExcite(8, 4),
            nn.Conv2d(8, 16, 1, bias=False),
            nn.BatchNorm2d(16),
        )
        self.down = nn.Sequential(
            nn.Conv2d(16, 16, 5, 2, 2, groups=16, dilation=1, bias=False),
            nn.BatchNorm2d(16),
            nn.Hardswish(),
            nn.Conv2d(16, 24, 1),
            nn.ReLU6(),
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(24, 32),
            nn.Hardswish(),
            nn.Dropout(0.2),
            nn.Linear(32, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.down(self.block(self.stem(x))))


class TinyFCN1d(nn.Module):
    """A 1-D CNN for series (N, C, T): conv-BN-ReLU blocks, pooling, GAP + Linear."""

    def __init__(self, channels: int = 2, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(channels, 8, 7, padding=3),
            nn.BatchNorm1d(8),
            nn.ReLU(),
            nn.MaxPool1d(3, 2, 1),
            nn.Conv1d(8, 12, 5, padding=2, dilation=1),
            nn.BatchNorm1d(12),
            nn.LeakyReLU(0.1),
            nn.AvgPool1d(2),
            nn.Conv1d(12, 16, 3, padding=2, dilation=2),
            nn.ReLU(),
        )
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(-1))


class OpZoo(nn.Module):
    """Every op the gradient rules cover that the CNN toys do not, in one small graph."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.up = nn.ConvTranspose2d(4, 4, 3, 2, 1, output_padding=1)
        self.strided = nn.Conv2d(8, 8, 3, 2, 0)
        self.pool = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.pool_pad = nn.AvgPool2d(3, 1, 1, count_include_pad=True)
        self.max = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.fc = nn.Linear(8 * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, 8, 16, 16)
        a, b = torch.chunk(x, 2, dim=1)
        a = torch.sigmoid(a) * torch.tanh(b) - b / (1.5 + a.abs())
        b = nn.functional.leaky_relu(self.up(b[:, :, ::2, ::2]), 0.2)  # slice, ConvTranspose
        x = torch.cat([a, b], dim=1)
        x = nn.functional.pad(x, (1, 0, 2, 1))[:, :, 1:-1, :-1]  # Pad, then Slice back
        x = self.pool_pad(torch.softmax(x, dim=1) * x)
        x = nn.functional.interpolate(self.max(x), scale_factor=2, mode="nearest")  # 9x9 -> 18
        x = nn.functional.interpolate(x, size=(11, 13), mode="bilinear", align_corners=False)
        x = self.pool(self.strided(x))  # (N, 8, 5, 6) -> (N, 8, 3, 3)
        x = x.permute(0, 2, 3, 1)[:, :2, :2, :].flatten(1)  # Transpose, Slice, Reshape
        return self.fc(x.unsqueeze(1).squeeze(1))


def torch_gradients(model: nn.Module, x, paths: list[str], classes) -> tuple[list, object]:
    """d logit[class] / d(module outputs at paths) and / d x, by torch autograd."""
    import numpy as np

    seen: dict[str, torch.Tensor] = {}

    def keep(path):
        def hook(_module, _inputs, out):
            out.retain_grad()
            seen[path] = out

        return hook

    handles = [model.get_submodule(p).register_forward_hook(keep(p)) for p in paths]
    xt = torch.tensor(np.asarray(x), requires_grad=True)
    out = model(xt)
    out[torch.arange(len(xt)), torch.as_tensor(classes)].sum().backward()
    for handle in handles:
        handle.remove()
    return [seen[p].grad.numpy() for p in paths], xt.grad.numpy()


def conv_gap_linear(inputs: int, width: int, classes: int, kernel: int = 1, rank: int = 2):
    """The smallest CAM model: one conv (of `rank` spatial axes), ReLU, global average pool and
    a linear head; module "1" is the ReLU, the layer the methods read."""
    conv, pool = (
        (nn.Conv1d, nn.AdaptiveAvgPool1d) if rank == 1 else (nn.Conv2d, nn.AdaptiveAvgPool2d)
    )
    return nn.Sequential(
        conv(inputs, width, kernel, padding=kernel // 2),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(width, classes),
    ).eval()
