"""The tiny float64 network, data and signed gradient that the sMPRT/eMPRT tests share."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn


class _ToDouble(nn.Module):
    """Quantus's predict feeds float32; the network computes in float64 so both sides round alike."""

    def forward(self, x):
        return x.double()


def _model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                  nn.Flatten(), nn.Linear(4 * 16 * 16, 5)]
        return nn.Sequential(_ToDouble(), nn.Sequential(*layers).double()).eval()


def _data(n=4):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 16, 16, generator=gen, dtype=torch.float64), torch.arange(n) % 5


def _gradient(model, x, target):
    """Signed input gradient summed over the colour channels, (N, H, W)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    return grad.sum(1)


@pytest.fixture
def mprt_parts():
    """``model()``, ``data(n)`` and ``gradient(model, x, target)`` of the sMPRT/eMPRT tests."""
    return SimpleNamespace(model=_model, data=_data, gradient=_gradient)
