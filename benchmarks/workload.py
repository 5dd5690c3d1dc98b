"""The network and inputs every stage of a harness run shares: random weights, random images.

Numbers from these are for speed only (DESIGN.md section 4, the ``bench`` profile). The network comes
from ``empirical.models.load_model(name, weights="random")``; while that module is not there the same
architectures are built here from torchvision / efficientnet-pytorch, so the floors can still be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Workload:
    """A model in eval mode on ``device``, a batch of images and the class explained for each."""

    model: nn.Module
    images: torch.Tensor
    targets: torch.Tensor
    source: str  # where the network came from: "empirical.models" or the fallback constructor

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def batch_size(self) -> int:
        return self.images.shape[0]


def _fallback_model(name: str) -> nn.Module:
    if name == "resnet50":
        from torchvision.models import resnet50
        return resnet50(weights=None)
    if name == "densenet121":
        from torchvision.models import densenet121
        return densenet121(weights=None)
    if name == "efficientnet-b0":
        from efficientnet_pytorch import EfficientNet
        return EfficientNet.from_name("efficientnet-b0")
    if name == "demo":
        from empirical.models.demo_net import DemoResNet
        return DemoResNet()
    raise ValueError(f"model must be one of resnet50, densenet121, efficientnet-b0, demo, got {name!r}")


def load_bench_model(name: str, device: torch.device | str) -> tuple[nn.Module, str]:
    """The network ``name`` with random weights, in eval mode on ``device``, and where it came from."""
    try:
        from empirical.models import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        model = load_model(name, weights="random", device=device)
        source = "empirical.models"
    else:
        model = _fallback_model(name)
        source = "fallback constructor (empirical.models not available)"
    model = model.to(device).eval()
    return model, source


def make_workload(name: str, *, batch_size: int, image_size: int, device: torch.device | str,
                  seed: int = 0) -> Workload:
    """Random-weight network ``name`` and ``batch_size`` random images (N, 3, S, S) with random targets.

    The images are drawn from a seeded CPU generator (the same on every device), standard normal as
    after ImageNet normalisation, except for the demo network, which sees [0, 1] intensities.
    """
    model, source = load_bench_model(name, device)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, image_size, image_size, generator=generator)
    if name == "demo":
        images = images.sigmoid()
    with torch.no_grad():
        classes = model(images[:1].to(device)).shape[1]
    targets = torch.randint(0, classes, (batch_size,), generator=generator)
    return Workload(model=model, images=images.to(device), targets=targets.to(device), source=source)
