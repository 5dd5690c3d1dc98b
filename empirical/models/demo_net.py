"""The small ResNet-style demo network and its digits preprocessing.

It uses torchvision's own ``BasicBlock`` so that Zennit's ``ResNetCanonizer`` and the ResNet-50
top-down schedule (classifier, then down to each ``*.conv1``) apply to it unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

DEMO_INPUT_SIZE = 32
DEMO_NUM_CLASSES = 10
#: the demo network sees pixel intensities in [0, 1] (no mean/std normalisation)
DEMO_INPUT_RANGE = (0.0, 1.0)


class DemoResNet(nn.Module):
    """A CIFAR-sized ResNet: 3x3 stem ``conv1``, three stages of ``BasicBlock`` (``layerK.J.conv1/conv2``,
    batch-norm, ReLU, skip connections), global average pooling and a final ``fc``.

    Input (N, 3, 32, 32) in [0, 1]; output (N, num_classes) logits. The default widths (16, 32, 48) with
    two blocks a stage hold about 120k parameters (under 0.5 MB of float32 weights).
    """

    def __init__(self, num_classes: int = DEMO_NUM_CLASSES, widths=(16, 32, 48), blocks=(2, 2, 2)):
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {widths!r} and blocks {blocks!r} must be equally long, non-empty")
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_planes = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True), start=1):
            stride = 1 if stage == 1 else 2
            layers = []
            for index in range(count):
                downsample = None
                if index == 0 and (stride != 1 or in_planes != width):
                    downsample = nn.Sequential(
                        nn.Conv2d(in_planes, width, kernel_size=1, stride=stride, bias=False),
                        nn.BatchNorm2d(width),
                    )
                layers.append(BasicBlock(in_planes, width, stride=stride if index == 0 else 1,
                                         downsample=downsample))
                in_planes = width
            self.add_module(f"layer{stage}", nn.Sequential(*layers))
        self.num_stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        for stage in range(1, self.num_stages + 1):
            out = getattr(self, f"layer{stage}")(out)
        return self.fc(torch.flatten(self.avgpool(out), 1))


def digits_to_demo_input(images, size: int = DEMO_INPUT_SIZE) -> torch.Tensor:
    """Turn scikit-learn digits (N, 8, 8) or (N, 64), intensities 0..16, into demo inputs.

    Returns a float32 tensor (N, 3, size, size) in [0, 1]: scaled by 1/16, bilinearly upsampled, grey
    replicated to three channels.
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 2 and array.shape[1] == 64:
        array = array.reshape(-1, 8, 8)
    if array.ndim != 3 or array.shape[1:] != (8, 8):
        raise ValueError(f"images must have shape (N, 8, 8) or (N, 64), got {array.shape}")
    tensor = torch.from_numpy(array / 16.0).clamp_(0.0, 1.0).unsqueeze(1)
    tensor = nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)
    return tensor.clamp_(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()
