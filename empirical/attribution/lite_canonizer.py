"""LRP canonizer for EfficientNet-Lite (efficientnet-lite-pytorch), in Zennit's style (every change undone).

As for EfficientNet-B0 (supplement A.1 of Binder et al., CVPR 2023): each batch-norm is merged into the
convolution before it (stem, expansion, depthwise, projection, head), exactly (the emptied batch-norm is
the identity), and each block's identity skip goes through a ``Sum`` module, so that the composites'
sum rule sees it (as Zennit's ResNet canonizer does). Lite blocks have no squeeze-excitation. ReLU6 is an
activation (``nn.Hardtanh``): the composites pass relevance through it unchanged; a unit clipped at 6
hands its relevance to its pre-activation like any active unit, which keeps the conservation of seed
eq. 52. One ReLU6 instance serves both the expansion and the depthwise step of a block (and one the stem
and the head); the canonized forward keeps that sharing, which Zennit's hooks handle call by call.
"""

from __future__ import annotations

import torch
from zennit.canonizers import AttributeCanonizer, Canonizer
from zennit.layer import Sum

from empirical.attribution.merging import ExactNamedMergeBatchNorm

__all__ = ["LiteCanonizer", "lite_merge_pairs"]


def lite_merge_pairs(model) -> list[tuple[tuple[str, ...], str]]:
    """(convolution names, batch-norm name) of every batch-norm of a Lite network, in forward order."""
    pairs = [(("_conv_stem",), "_bn0")]
    for index, block in enumerate(model._blocks):
        prefix = f"_blocks.{index}"
        if hasattr(block, "_expand_conv"):
            pairs.append(((f"{prefix}._expand_conv",), f"{prefix}._bn0"))
        pairs.append(((f"{prefix}._depthwise_conv",), f"{prefix}._bn1"))
        pairs.append(((f"{prefix}._project_conv",), f"{prefix}._bn2"))
    pairs.append((("_conv_head",), "_bn1"))
    return pairs


class LiteCanonizer(Canonizer):
    """Batch-norms merged exactly, identity skips through a ``Sum`` module (see the module docstring).

    ``merge_batch_norm=False`` keeps only the skip overload."""

    def __init__(self, merge_batch_norm: bool = True):
        self.merge_batch_norm = merge_batch_norm

    def apply(self, root_module):
        instances = []
        if self.merge_batch_norm:
            instances += ExactNamedMergeBatchNorm(lite_merge_pairs(root_module)).apply(root_module)
        instances += AttributeCanonizer(_attributes).apply(root_module)
        return instances

    def register(self):
        """Nothing to do: the instances returned by ``apply`` hold the changes."""

    def remove(self):
        """Nothing to do: the instances returned by ``apply`` undo the changes."""

    def copy(self):
        return type(self)(merge_batch_norm=self.merge_batch_norm)


def _attributes(name, module):
    from efficientnet_lite_pytorch.model import MBConvBlock

    if not isinstance(module, MBConvBlock):
        return None
    return {"forward": _lite_block_forward.__get__(module), "canonizer_sum": Sum()}


def _lite_block_forward(self, inputs, drop_connect_rate=None):
    """efficientnet-lite-pytorch's ``MBConvBlock.forward`` in eval mode, the skip addition as a ``Sum``."""
    x = inputs
    if self._block_args.expand_ratio != 1:
        x = self._swish(self._bn0(self._expand_conv(inputs)))
    x = self._swish(self._bn1(self._depthwise_conv(x)))
    if self.has_se:
        raise ValueError("this Lite block has squeeze-excitation, which EfficientNet-Lite does not: "
                         "use the EfficientNet-B0 canonizer")
    x = self._bn2(self._project_conv(x))
    args = self._block_args
    if self.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
        # drop connect is the identity in eval mode, the only mode attribution runs in
        x = self.canonizer_sum(torch.stack([inputs, x], dim=-1))
    return x
