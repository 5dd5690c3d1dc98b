"""Canonizers for the audit's networks, in Zennit's style (every change undone by ``remove``).

Zennit 0.5.1 ships a ResNet canonizer, used here with an exact batch-norm merge for ResNet-50 and, since
the demo network is built from torchvision's ``BasicBlock``, for ``demo`` too. It has nothing for
DenseNet-121 or EfficientNet-B0: ``EfficientNetCanonizer`` here merges every batch-norm into the
convolution before it and routes skip additions and squeeze-excitation gates through modules and
functions that rules can see; ``DenseNetCanonizer`` (module ``densenet_canonizer``) folds each
batch-norm -> ReLU -> convolution into a threshold ReLU and a convolution with a tensor-shaped bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from zennit.canonizers import AttributeCanonizer, Canonizer, CompositeCanonizer
from zennit.layer import Sum
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer

from empirical.attribution.densenet_canonizer import DenseNetCanonizer
from empirical.attribution.graph_canonizer import GraphCanonizer
from empirical.attribution.lite_canonizer import LiteCanonizer
from empirical.attribution.merging import ExactNamedMergeBatchNorm, ExactSequentialMergeBatchNorm
from empirical.models import spec_of

__all__ = ["CANONIZATIONS", "DenseNetCanonizer", "EfficientNetCanonizer", "ExactNamedMergeBatchNorm",
           "ExactSequentialMergeBatchNorm", "GraphCanonizer", "LiteCanonizer", "ResNetCanonizer",
           "canonizers_for"]


class ResNetCanonizer(CompositeCanonizer):
    """Zennit's ResNet canonizer (merged batch-norms, ``Sum`` modules for the skip additions of torchvision's
    ``Bottleneck`` and ``BasicBlock``) with exact batch-norm merging."""

    def __init__(self):
        super().__init__((ExactSequentialMergeBatchNorm(), ResNetBottleneckCanonizer(),
                          ResNetBasicBlockCanonizer()))


class _ModelCanonizer(Canonizer):
    """Base: a named batch-norm merge computed from the model at hand, plus attribute overloads."""

    def __init__(self, merge_batch_norm: bool = True):
        self.merge_batch_norm = merge_batch_norm

    def apply(self, root_module):
        instances = []
        if self.merge_batch_norm:
            instances += ExactNamedMergeBatchNorm(self._merge_pairs(root_module)).apply(root_module)
        instances += AttributeCanonizer(self._attributes).apply(root_module)
        return instances

    def register(self):
        """Nothing to do: the instances returned by ``apply`` hold the changes."""

    def remove(self):
        """Nothing to do: the instances returned by ``apply`` undo the changes."""

    def copy(self):
        return type(self)(merge_batch_norm=self.merge_batch_norm)

    @staticmethod
    def _merge_pairs(root_module):
        raise NotImplementedError

    @staticmethod
    def _attributes(name, module):
        raise NotImplementedError


class EfficientNetCanonizer(_ModelCanonizer):
    """Canonizer for efficientnet-pytorch's EfficientNet-B0.

    Merges each batch-norm into the convolution before it (stem, expansion, depthwise, projection, head);
    swish is an activation and gets the Pass rule in the composites. Each block's forward is overloaded:
    the skip addition goes through a ``Sum`` module (as in Zennit's ResNet canonizer), and the
    squeeze-excitation product ``x * sigmoid(s)`` sends all relevance to the gated signal x and none to the
    gate (a diagonal linear map with weights sigmoid(s) passes relevance unchanged under every rule).
    """

    @staticmethod
    def _merge_pairs(root_module):
        pairs = [(("_conv_stem",), "_bn0"), (("_conv_head",), "_bn1")]
        for index, block in enumerate(root_module._blocks):
            prefix = f"_blocks.{index}"
            if hasattr(block, "_expand_conv"):
                pairs.append(((f"{prefix}._expand_conv",), f"{prefix}._bn0"))
            pairs.append(((f"{prefix}._depthwise_conv",), f"{prefix}._bn1"))
            pairs.append(((f"{prefix}._project_conv",), f"{prefix}._bn2"))
        return pairs

    @staticmethod
    def _attributes(name, module):
        from efficientnet_pytorch.model import MBConvBlock

        if not isinstance(module, MBConvBlock):
            return None
        return {"forward": _mbconv_forward.__get__(module), "canonizer_sum": Sum()}


class _RelevanceToSignal(torch.autograd.Function):
    """``signal * gate``; backward hands the incoming relevance to ``signal`` unchanged, none to ``gate``."""

    @staticmethod
    def forward(ctx, signal, gate):
        return signal * gate

    @staticmethod
    def backward(ctx, relevance):
        return relevance, None


def _mbconv_forward(self, inputs, drop_connect_rate=None):
    x = inputs
    if self._block_args.expand_ratio != 1:
        x = self._swish(self._bn0(self._expand_conv(inputs)))
    x = self._swish(self._bn1(self._depthwise_conv(x)))
    if self.has_se:
        # the gate is computed from a detached copy: no relevance (and no hook call) reaches its branch
        squeezed = self._se_expand(self._swish(self._se_reduce(F.adaptive_avg_pool2d(x.detach(), 1))))
        x = _RelevanceToSignal.apply(x, torch.sigmoid(squeezed))
    x = self._bn2(self._project_conv(x))
    args = self._block_args
    if self.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
        # drop connect is the identity in eval mode, the only mode attribution runs in
        x = self.canonizer_sum(torch.stack([inputs, x], dim=-1))
    return x


def _resnet_canonizers(merge_batch_norm: bool) -> list[Canonizer]:
    # resnet50 and demo (torchvision blocks): Zennit's canonizer, exact merge
    return [ResNetCanonizer()] if merge_batch_norm else []


def _densenet_canonizers(merge_batch_norm: bool) -> list[Canonizer]:
    return [DenseNetCanonizer(merge_batch_norm=merge_batch_norm)]


def _efficientnet_canonizers(merge_batch_norm: bool) -> list[Canonizer]:
    # its activations are modules already; the gate and sum overloads are for LRP only
    return [EfficientNetCanonizer()] if merge_batch_norm else []


def _lite_canonizers(merge_batch_norm: bool) -> list[Canonizer]:
    # EfficientNet-Lite0..4 (module lite_canonizer); its ReLU6 are modules already
    return [LiteCanonizer()] if merge_batch_norm else []


def _generic_canonizers(merge_batch_norm: bool) -> list[Canonizer]:
    return [GraphCanonizer()] if merge_batch_norm else []


#: ``NetworkSpec.canonization`` -> factory(merge_batch_norm) of the canonizers of that network family
CANONIZATIONS = {
    "resnet": _resnet_canonizers,
    "densenet": _densenet_canonizers,
    "efficientnet": _efficientnet_canonizers,
    "lite": _lite_canonizers,
    "generic": _generic_canonizers,
}


def canonizers_for(model: nn.Module, *, merge_batch_norm: bool = True) -> list[Canonizer]:
    """The canonizers of ``model``'s spec (``empirical.models.spec_of``; ``CANONIZATIONS``).

    A network that is no built-in one gets :class:`GraphCanonizer` (batch-norms merged into the layer that
    feeds them, from the ``torch.fx`` graph). ``merge_batch_norm=False`` keeps only what makes every ReLU a
    module (for guided backprop).
    """
    spec = spec_of(model)
    return CANONIZATIONS["generic" if spec is None else spec.canonization](merge_batch_norm)
