"""DenseNet-121 canonizer: every batch-norm -> ReLU -> convolution folded into a threshold ReLU and a
convolution with a tensor-shaped bias (the canonisation of the authors' public DenseNet code, written
here in Zennit's canonizer style; every module swap and forward overload is undone by ``remove``).

In torchvision's DenseNet a batch-norm comes after each concatenation, so no convolution precedes it
that could absorb it. Instead it is folded into the convolution that follows its ReLU. Per channel, with
a = gamma / sqrt(var + eps) and c = beta - a * mean, batch-norm and ReLU give

    relu(a x + c) = a * max(x, t) + c    (a > 0),     a * min(x, t) + c    (a < 0),     t = -c / a,

so conv_w(relu(bn(x))) = conv_{w a}(h) + conv_w(c) with h the *threshold ReLU* of x (max or min with t,
per channel). conv_w(c) is the response to a constant image c under zero padding: a bias that varies
near the border (``BatchNormFoldedConv2d``). A channel with a = 0 is constant (relu(c)); its weight is
zero after folding and relu(c) moves into the bias. The LRP rules then see the contributions
(w a)_ij h_i and, bias-free, give the bias nothing; the threshold ReLU passes relevance on unchanged.
The final norm5 -> ReLU -> pooling -> classifier is folded the same way into a threshold ReLU and a
linear layer (pooling is linear, so the constant c passes through it).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from zennit.canonizers import AttributeCanonizer, Canonizer

from empirical.attribution.merging import ExactNamedMergeBatchNorm


def _scale_and_shift(batch_norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, c) with bn(x) = a x + c per channel (eval mode)."""
    scale = batch_norm.weight.detach() / torch.sqrt(batch_norm.running_var + batch_norm.eps)
    return scale, batch_norm.bias.detach() - scale * batch_norm.running_mean


class ThresholdReLU(nn.Module):
    """max(x, t) on channels with ``sign`` > 0, min(x, t) on channels with ``sign`` < 0, 0 on channels with
    ``sign`` == 0 (their weight in the next layer is zero); the channel axis is 1."""

    def __init__(self, threshold: torch.Tensor, sign: torch.Tensor):
        super().__init__()
        self.register_buffer("threshold", threshold.clone())
        self.register_buffer("sign", sign.clone())

    @classmethod
    def from_batch_norm(cls, batch_norm: nn.BatchNorm2d) -> ThresholdReLU:
        scale, shift = _scale_and_shift(batch_norm)
        on = scale != 0
        safe_scale = torch.where(on, scale, torch.ones_like(scale))
        threshold = torch.where(on, -shift / safe_scale, torch.zeros_like(scale))
        return cls(threshold, torch.sign(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = (1, -1, *([1] * (x.ndim - 2)))
        threshold, sign = self.threshold.view(view), self.sign.view(view)
        result = torch.where(sign > 0, torch.maximum(x, threshold), torch.minimum(x, threshold))
        return torch.where(sign == 0, torch.zeros_like(result), result)


def _folded_shift(batch_norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, s): the per-channel scale and the constant input of the bias (c, or relu(c) where a = 0)."""
    scale, shift = _scale_and_shift(batch_norm)
    return scale, torch.where(scale == 0, shift.clamp(min=0), shift)


class BatchNormFoldedConv2d(nn.Conv2d):
    """conv(relu(bn(x))) as conv_{w a}(threshold_relu(x)) + conv_w(s): ``weight`` is the original weight
    scaled by a per input channel, the bias is the convolution's response to the constant image s
    (tensor-shaped where the zero padding cuts the kernel; ``shift_response``). The LRP rules redistribute
    the contributions of ``linear_part`` (scaled weight, no bias). ``forward`` computes the same function
    as conv_w(relu(a h + s)) from the buffers ``input_scale``, ``input_shift`` and ``original_weight``:
    equal for h = threshold_relu(x), and in float32 as close to the original network as its own rounding
    (the sum of the two large terms conv_{w a}(h) and conv_w(s) is not)."""

    @classmethod
    def fold(cls, batch_norm: nn.BatchNorm2d, conv: nn.Conv2d) -> BatchNormFoldedConv2d:
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError(f"can only fold into a zero-padded convolution without groups, got {conv}")
        scale, input_shift = _folded_shift(batch_norm)
        folded = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
                     device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            folded.weight.copy_(conv.weight * scale.view(1, -1, 1, 1))
            if conv.bias is not None:
                folded.bias.copy_(conv.bias)
        folded.register_buffer("input_scale", scale.to(conv.weight).clone())
        folded.register_buffer("input_shift", input_shift.to(conv.weight).clone())
        folded.register_buffer("original_weight", conv.weight.detach().clone())
        return folded

    def shift_response(self, x: torch.Tensor) -> torch.Tensor:
        """conv_w(s) for inputs of ``x``'s spatial size, (1, out_channels, H', W')."""
        constant = self.input_shift.view(1, -1, 1, 1).expand(1, -1, *x.shape[2:])
        return F.conv2d(constant, self.original_weight, None, self.stride, self.padding, self.dilation)

    def linear_part(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The convolution with ``weight`` and no bias (what the LRP rules redistribute)."""
        return self._conv_forward(x, weight, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = (1, -1, 1, 1)
        restored = torch.relu(x * self.input_scale.view(view) + self.input_shift.view(view))
        return self._conv_forward(restored, self.original_weight, self.bias)


def _folded_linear(batch_norm: nn.BatchNorm2d, linear: nn.Linear) -> nn.Linear:
    """linear(pool(relu(bn(x)))) as linear'(pool(threshold_relu(x))): weight w a, bias b + w s."""
    scale, input_shift = _folded_shift(batch_norm)
    folded = nn.Linear(linear.in_features, linear.out_features, device=linear.weight.device,
                       dtype=linear.weight.dtype)
    with torch.no_grad():
        folded.weight.copy_(linear.weight * scale)
        bias = linear.weight @ input_shift
        folded.bias.copy_(bias if linear.bias is None else linear.bias + bias)
    return folded


class _ModuleSwap:
    """Replace child ``name`` of ``parent`` by ``replacement``; ``remove`` puts the original back."""

    def __init__(self, parent: nn.Module, name: str, replacement: nn.Module):
        self.parent, self.name = parent, name
        self.original = parent._modules[name]
        parent._modules[name] = replacement

    def remove(self):
        self.parent._modules[self.name] = self.original


def _fold_triples(root_module: nn.Module) -> list[tuple[nn.Module, str, str, str]]:
    """(parent, batch-norm, ReLU, convolution) names of every dense layer's two triples and every
    transition's triple, checked to be batch-norm, ReLU and convolution."""
    from torchvision.models.densenet import _DenseLayer, _Transition

    triples = []
    for module in root_module.modules():
        if isinstance(module, _DenseLayer):
            triples += [(module, "norm1", "relu1", "conv1"), (module, "norm2", "relu2", "conv2")]
        elif isinstance(module, _Transition):
            triples.append((module, "norm", "relu", "conv"))
    for parent, norm, relu, conv in triples:
        kinds = (type(parent._modules[norm]), type(parent._modules[relu]), type(parent._modules[conv]))
        if kinds != (nn.BatchNorm2d, nn.ReLU, nn.Conv2d):
            raise ValueError(f"expected batch-norm, ReLU, convolution in {type(parent).__name__}, "
                             f"got {kinds}")
    return triples


class DenseNetCanonizer(Canonizer):
    """Canonizer for torchvision's DenseNet-121 (see the module docstring).

    ``conv0 -> norm0`` is an ordinary batch-norm merge; every other batch-norm becomes a ``ThresholdReLU``,
    its ReLU an identity and its convolution a ``BatchNormFoldedConv2d``; ``norm5`` becomes an identity and
    the classifier a linear layer with the folded weight and bias; ``forward`` is overloaded so that the
    final threshold ReLU and pooling are modules (``canonizer_relu``, ``canonizer_pool``). Exact in the
    forward pass up to rounding. ``merge_batch_norm=False`` only makes the final ReLU and pooling modules
    (an ordinary ReLU, for guided backprop).
    """

    def __init__(self, merge_batch_norm: bool = True):
        super().__init__()
        self.merge_batch_norm = merge_batch_norm

    def apply(self, root_module):
        from torchvision.models import DenseNet

        if not isinstance(root_module, DenseNet):
            raise ValueError("DenseNetCanonizer needs a torchvision DenseNet, "
                             f"got {type(root_module).__name__}")
        if not self.merge_batch_norm:
            attributes = {"canonizer_relu": nn.ReLU(), "canonizer_pool": nn.AdaptiveAvgPool2d((1, 1))}
            return self._overload(root_module, attributes)
        instances = ExactNamedMergeBatchNorm([(("features.conv0",), "features.norm0")]).apply(root_module)
        for parent, norm, relu, conv in _fold_triples(root_module):
            batch_norm = parent._modules[norm]
            folded = BatchNormFoldedConv2d.fold(batch_norm, parent._modules[conv])
            instances += [_ModuleSwap(parent, norm, ThresholdReLU.from_batch_norm(batch_norm)),
                          _ModuleSwap(parent, relu, nn.Identity()), _ModuleSwap(parent, conv, folded)]
        norm5 = root_module.features.norm5
        instances += [_ModuleSwap(root_module, "classifier", _folded_linear(norm5, root_module.classifier)),
                      _ModuleSwap(root_module.features, "norm5", nn.Identity())]
        attributes = {"canonizer_relu": ThresholdReLU.from_batch_norm(norm5),
                      "canonizer_pool": nn.AdaptiveAvgPool2d((1, 1))}
        return instances + self._overload(root_module, attributes)

    @staticmethod
    def _overload(root_module, attributes):
        def attribute_map(name, module):
            if module is not root_module:
                return None
            return {"forward": _densenet_forward.__get__(module), **attributes}

        return AttributeCanonizer(attribute_map).apply(root_module)

    def register(self):
        """Nothing to do: the instances returned by ``apply`` hold the changes."""

    def remove(self):
        """Nothing to do: the instances returned by ``apply`` undo the changes."""

    def copy(self):
        return type(self)(merge_batch_norm=self.merge_batch_norm)


def _densenet_forward(self, x):
    out = self.canonizer_pool(self.canonizer_relu(self.features(x)))
    return self.classifier(torch.flatten(out, 1))
