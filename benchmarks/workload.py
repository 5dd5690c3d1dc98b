"""The network and inputs every stage of a harness run shares: random weights, random images.

Numbers from these are for speed only (as with the ``bench`` profile). The network comes
from ``empirical.models.load_model(name, weights="random")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from empirical.models import load_model


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


def load_bench_model(name: str, device: torch.device | str) -> tuple[nn.Module, str]:
    """The network ``name`` with random weights, in eval mode on ``device``, and where it came from."""
    return load_model(name, weights="random", device=device).to(device).eval(), "empirical.models"


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
