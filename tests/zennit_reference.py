"""LRP in torch, written from the definitions of zennit 1.0 (rules.py, core.py, composites.py,
canonizers.py), as the reference the engine's relevance is held to. zennit itself cannot be a
test dependency here (it imports torchvision at load).

How zennit computes a rule, restated: for a layer with input x and an upper relevance R, each
of several (input modifier, parameter modifier) pairs gives an output z_i = f_i(m_i(x)); R is
mapped to one gradient per output (`gradient_mapper`); autograd takes each gradient back to its
modified input; a `reducer` combines inputs and gradients into the layer's input relevance.
Stabilisers add eps * sign(z) with sign(0) = +1. Layers get rules from a composite's layer
map; activations pass relevance on, average pools and sums split it by `Norm`, max-pools and
reshapes keep autograd's gradient; BatchNorms are merged into the conv before them and a
residual sum goes through a `Sum` module (the canonizers).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn
from toy_models import Sum

Tensor = torch.Tensor


def stabilise(z: Tensor, eps: float) -> Tensor:
    return z + eps * ((z == 0).to(z) + z.sign())


def pos(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clamp(min=0)


def neg(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clamp(max=0)


@dataclass
class Part:
    """One modified forward: input modifier, weight modifier, bias modifier (None: no bias)."""

    x: Callable[[Tensor], Tensor]
    w: Callable[[Tensor], Tensor]
    b: Callable[[Tensor], Tensor] | None


def identity(t: Tensor) -> Tensor:
    return t


def zero(t: Tensor) -> Tensor:
    return torch.zeros_like(t)


class Rule:
    """parts, a gradient mapper (R, outputs) -> grads, a reducer (inputs, grads) -> relevance."""

    parts: Sequence[Part]

    def mapper(self, r: Tensor, outs: list[Tensor]) -> list[Tensor]:
        raise NotImplementedError

    def reducer(self, inputs: list[Tensor], grads: list[Tensor]) -> Tensor:
        return sum(i * g for i, g in zip(inputs, grads, strict=True))

    def relevance(self, module: nn.Module, x: Tensor, r: Tensor) -> Tensor:
        inputs, outs = [], []
        for part in self.parts:
            xi = part.x(x.detach()).requires_grad_()
            params = {"weight": part.w(module.weight.detach())}
            if getattr(module, "bias", None) is not None:
                bias = module.bias.detach()
                params["bias"] = part.b(bias) if part.b else torch.zeros_like(bias)
            with torch.enable_grad(), swapped(module, params):
                outs.append(type(module).forward(module, xi))
            inputs.append(xi)
        grads = torch.autograd.grad(outs, inputs, self.mapper(r, outs), allow_unused=True)
        grads = [
            torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads, strict=True)
        ]
        return self.reducer(inputs, grads)


@contextmanager
def swapped(module: nn.Module, params: dict[str, Tensor]):
    """The module's parameters replaced by plain tensors for the duration (zennit's ParamMod)."""
    for key, value in params.items():
        object.__setattr__(module, key, value)
    try:
        yield module
    finally:
        for key in params:
            del module.__dict__[key]


class Epsilon(Rule):
    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps
        self.parts = [Part(identity, identity, identity)]

    def mapper(self, r, outs):
        return [r / stabilise(outs[0], self.eps)]


class ZPlus(Rule):
    """x+ with w+ and b+, x- with w- and no bias, one shared denominator."""

    def __init__(self, stabiliser: float = 1e-6) -> None:
        self.eps = stabiliser
        self.parts = [Part(pos, pos, pos), Part(neg, neg, None)]

    def mapper(self, r, outs):
        return [r / stabilise(outs[0] + outs[1], self.eps)] * 2


class AlphaBeta(Rule):
    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabiliser: float = 1e-6) -> None:
        self.alpha, self.beta, self.eps = alpha, beta, stabiliser
        self.parts = [
            Part(pos, pos, pos),
            Part(neg, neg, None),
            Part(pos, neg, neg),
            Part(neg, pos, None),
        ]

    def mapper(self, r, outs):
        p = r / stabilise(outs[0] + outs[1], self.eps)
        n = r / stabilise(outs[2] + outs[3], self.eps)
        return [p, p, n, n]

    def reducer(self, inputs, grads):
        positive = inputs[0] * grads[0] + inputs[1] * grads[1]
        negative = inputs[2] * grads[2] + inputs[3] * grads[3]
        return self.alpha * positive - self.beta * negative


def gamma_mod(gamma: float, part: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    return lambda t: t + gamma * part(t)


class Gamma(Rule):
    """zennit's generalised gamma: positive outputs take x+ (w + g w+) + x- (w + g w-), negative
    outputs x+ (w + g w-) + x- (w + g w+); the output's sign picks the pair."""

    def __init__(self, gamma: float = 0.25, stabiliser: float = 1e-6) -> None:
        self.eps = stabiliser
        up, down = gamma_mod(gamma, pos), gamma_mod(gamma, neg)
        self.parts = [
            Part(pos, up, up),
            Part(neg, down, None),
            Part(pos, down, down),
            Part(neg, up, None),
            Part(identity, identity, identity),
        ]

    def mapper(self, r, outs):
        positive = (outs[4] > 0).to(r) * r / stabilise(outs[0] + outs[1], self.eps)
        negative = (outs[4] < 0).to(r) * r / stabilise(outs[2] + outs[3], self.eps)
        return [positive, positive, negative, negative, torch.zeros_like(r)]

    def reducer(self, inputs, grads):
        return sum(i * g for i, g in zip(inputs[:4], grads[:4], strict=True))


class ZBox(Rule):
    """x with w and b, the low bound with w+ and b+, the high bound with w- and b-; with
    `widen` (onnxcam's profile) the bounds are widened per element to contain x."""

    def __init__(self, low, high, stabiliser: float = 1e-6, widen: bool = False) -> None:
        self.eps = stabiliser

        def bound(value, outward):
            def modifier(t):
                b = torch.as_tensor(value, dtype=t.dtype).expand_as(t).clone()
                return outward(b, t) if widen else b

            return modifier

        self.parts = [
            Part(identity, identity, identity),
            Part(bound(low, torch.minimum), pos, pos),
            Part(bound(high, torch.maximum), neg, neg),
        ]

    def mapper(self, r, outs):
        return [r / stabilise(outs[0] - outs[1] - outs[2], self.eps)] * 3

    def reducer(self, inputs, grads):
        return inputs[0] * grads[0] - inputs[1] * grads[1] - inputs[2] * grads[2]


class Flat(Rule):
    def __init__(self, stabiliser: float = 1e-6) -> None:
        self.eps = stabiliser
        self.parts = [Part(torch.ones_like, torch.ones_like, None)]

    def mapper(self, r, outs):
        return [r / stabilise(outs[0], self.eps)]

    def reducer(self, inputs, grads):
        return grads[0]


class RuleFunction(torch.autograd.Function):
    """The module's forward, with its rule's relevance as the backward."""

    @staticmethod
    def forward(ctx, x, module, rule):
        ctx.save_for_backward(x)
        ctx.module, ctx.rule = module, rule
        with torch.no_grad():
            return type(module).forward(module, x)

    @staticmethod
    def backward(ctx, r):
        (x,) = ctx.saved_tensors
        return ctx.rule.relevance(ctx.module, x, r), None, None


class PassFunction(torch.autograd.Function):
    """An activation: its value forward, the relevance passed on unchanged backward."""

    @staticmethod
    def forward(ctx, x, module):
        with torch.no_grad():
            return type(module).forward(module, x)

    @staticmethod
    def backward(ctx, r):
        return r, None


def norm_split(module: nn.Module, xs: list[Tensor], r: Tensor, eps: float) -> list[Tensor]:
    """zennit's Norm: R_i = x_i * d f / d x_i * R / stab(f(x))."""
    xs = [x.detach().requires_grad_() for x in xs]
    with torch.enable_grad():
        out = type(module).forward(module, *xs)
    grads = torch.autograd.grad(out, xs, r / stabilise(out, eps))
    return [x * g for x, g in zip(xs, grads, strict=True)]


def sign_matched_split(module: nn.Module, xs: list[Tensor], r: Tensor, eps: float) -> list[Tensor]:
    """onnxcam's split at sums and pools (f increasing in every input): where f(x) > 0, R goes
    to the inputs' positive parts in proportion, P = f(x+); where f(x) < 0, to the negative
    parts, N = f(x-)."""
    pos = [x.detach().clamp(min=0).requires_grad_() for x in xs]
    neg = [x.detach().clamp(max=0).requires_grad_() for x in xs]
    with torch.enable_grad():
        out = type(module).forward(module, *[x.detach() for x in xs])
        p = type(module).forward(module, *pos)
        n = type(module).forward(module, *neg)
    zero = torch.zeros_like(r)
    s_p = torch.where(out > 0, r / stabilise(p, eps), zero)
    s_n = torch.where(out < 0, r / stabilise(n, eps), zero)
    g_p = torch.autograd.grad(p, pos, s_p)
    g_n = torch.autograd.grad(n, neg, s_n)
    return [a * ga + b * gb for a, ga, b, gb in zip(pos, g_p, neg, g_n, strict=True)]


class SplitFunction(torch.autograd.Function):
    """A summing or averaging module: its value forward, `split`'s relevance backward."""

    @staticmethod
    def forward(ctx, module, split, eps, *xs):
        ctx.save_for_backward(*xs)
        ctx.module, ctx.split, ctx.eps = module, split, eps
        with torch.no_grad():
            return type(module).forward(module, *xs)

    @staticmethod
    def backward(ctx, r):
        return (None, None, None, *ctx.split(ctx.module, list(ctx.saved_tensors), r, ctx.eps))


ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.SiLU,
    nn.Hardswish,
    nn.GELU,
    nn.ELU,
)
POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


@dataclass
class Composite:
    """Rules per layer kind, as zennit's composites map them: `first` for the first linear
    layer in module order (convolutions only unless first_any_kind), `conv`, `dense`."""

    first: Rule | None
    conv: Rule
    dense: Rule
    first_any_kind: bool = False
    stabiliser: float = 1e-6
    split: Callable = norm_split


def composite(
    name: str,
    epsilon: float = 1e-6,
    gamma: float = 0.25,
    low=0.0,
    high=1.0,
    profile: str = "zennit",
) -> Composite:
    """zennit's composite of that name (lrp-0 and epsilon: Epsilon everywhere); with
    profile="onnxcam", onnxcam's departures: sums split by sign (but in lrp-0 and epsilon),
    z^B bounds widened to contain the input."""
    eps = Epsilon(epsilon)
    onnxcam = profile == "onnxcam"
    split = sign_matched_split if onnxcam else norm_split
    if name == "lrp-0":
        return Composite(None, Epsilon(1e-9), Epsilon(1e-9))
    if name == "epsilon":
        return Composite(None, eps, eps)
    if name == "epsilon-plus":
        return Composite(None, ZPlus(), eps, split=split)
    if name == "epsilon-plus-flat":
        return Composite(Flat(), ZPlus(), eps, first_any_kind=True, split=split)
    if name == "epsilon-alpha2-beta1":
        return Composite(None, AlphaBeta(2.0, 1.0), eps, split=split)
    if name == "epsilon-gamma-box":
        box = ZBox(low, high, widen=onnxcam)
        return Composite(box, Gamma(gamma), eps, first_any_kind=onnxcam, split=split)
    raise ValueError(name)


def attach(model: nn.Module, rules: Composite) -> nn.Module:
    """Each module's forward replaced by its rule's function (in place)."""
    first_done = False
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            is_conv = isinstance(module, (nn.Conv1d, nn.Conv2d))
            rule = rules.conv if is_conv else rules.dense
            if not first_done and rules.first is not None and (is_conv or rules.first_any_kind):
                rule = rules.first
            first_done = True
            module.forward = _ruled(module, rule)
        elif isinstance(module, ACTIVATIONS):
            module.forward = _passed(module)
        elif isinstance(module, (*POOLS, Sum)):  # Sum: the residual sums of the canonizers
            module.forward = _split(module, rules.split, rules.stabiliser)
    return model


def _ruled(module: nn.Module, rule: Rule) -> Callable:
    return lambda x: RuleFunction.apply(x, module, rule)


def _passed(module: nn.Module) -> Callable:
    return lambda x: PassFunction.apply(x, module)


def _split(module: nn.Module, split: Callable, eps: float) -> Callable:
    return lambda *xs: SplitFunction.apply(module, split, eps, *xs)


class MergedBatchNorm(nn.Module):
    """A BatchNorm merged into the layer before it: the identity."""

    def forward(self, x: Tensor) -> Tensor:
        return x


def merge_batch_norm(conv: nn.Module, bn: nn.BatchNorm2d | nn.BatchNorm1d) -> None:
    """zennit's MergeBatchNorm: the BN folded into the conv's weight and bias; the BN becomes
    the identity."""
    scale = bn.weight / (bn.running_var + bn.eps) ** 0.5
    shape = (-1,) + (1,) * (conv.weight.dim() - 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight * scale.reshape(shape))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    bn.__class__ = MergedBatchNorm


def input_relevance(model: nn.Module, rules: Composite, x: Tensor, classes) -> Tensor:
    """Relevance of every input element, seeded with the explained logit (a copy of the model
    gets the rules; the model itself is left as it was)."""
    model = attach(copy.deepcopy(model), rules)
    x = x.clone().requires_grad_()
    out = model(x)
    seed = torch.zeros_like(out)
    rows = torch.arange(len(x))
    seed[rows, classes] = out[rows, classes].detach()
    (relevance,) = torch.autograd.grad(out, x, seed)
    return relevance


def canonize_efficientnet(model: nn.Module) -> nn.Module:
    """The canonizers zennit needs for EfficientNet-Lite, in place: every BatchNorm merged into
    the conv before it, and each block's skip connection through a Sum module."""
    from efficientnet_lite_pytorch.model import MBConvBlock

    class CanonicalBlock(MBConvBlock):
        """MBConvBlock's forward in eval mode (the Lite models have no squeeze-excitation),
        with the skip connection through the block's Sum."""

        def forward(self, inputs: Tensor, drop_connect_rate=None) -> Tensor:
            x = inputs
            if self._block_args.expand_ratio != 1:
                x = self._swish(self._bn0(self._expand_conv(x)))
            x = self._swish(self._bn1(self._depthwise_conv(x)))
            x = self._bn2(self._project_conv(x))
            args = self._block_args
            if self.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
                x = self.sum(x, inputs)
            return x

    merge_batch_norm(model._conv_stem, model._bn0)
    merge_batch_norm(model._conv_head, model._bn1)
    for block in model.modules():
        if isinstance(block, MBConvBlock):
            if block._block_args.expand_ratio != 1:
                merge_batch_norm(block._expand_conv, block._bn0)
            merge_batch_norm(block._depthwise_conv, block._bn1)
            merge_batch_norm(block._project_conv, block._bn2)
            block.sum = Sum()
            block.__class__ = CanonicalBlock
    return model


def canonize_sequential(model: nn.Module) -> nn.Module:
    """zennit's SequentialMergeBatchNorm, in place: a BatchNorm right after a conv in an
    nn.Sequential merged into it; the named pairs of the test ResNets' blocks likewise
    (NamedMergeBatchNorm). Their residual sums are Sum modules already."""
    for module in model.modules():
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            if isinstance(getattr(module, bn, None), (nn.BatchNorm1d, nn.BatchNorm2d)):
                merge_batch_norm(getattr(module, conv), getattr(module, bn))
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.children())
        for first, second in pairwise(children):
            if isinstance(first, (nn.Conv1d, nn.Conv2d)) and isinstance(
                second, (nn.BatchNorm1d, nn.BatchNorm2d)
            ):
                merge_batch_norm(first, second)
    return model
