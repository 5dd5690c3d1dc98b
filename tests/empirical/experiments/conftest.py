"""Shared fixtures for the experiment tests: a tiny seeded network, tiny inputs, a plain gradient method."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """Conv-ReLU-pool-linear over 3x16x16 inputs, 5 classes; deterministic from ``seed``."""

    def __init__(self, seed: int = 0, classes: int = 5):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, classes)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv1(x)), 4)
        return self.fc(x.flatten(1))


def plain_gradient(model, x, target):
    """Absolute input gradient of the target logit, summed over channels: (N, H, W)."""
    x = x.detach().clone().requires_grad_(True)
    logits = model(x)
    (gradient,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
    return gradient.abs().sum(dim=1)


@pytest.fixture
def tiny_model():
    return TinyNet(seed=0).eval()


@pytest.fixture
def tiny_images():
    return torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def gradient_method():
    return plain_gradient
