"""Shared fixtures for the empirical tests: tiny seeded inputs and networks with non-trivial batch-norms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from empirical.models import build_model


def randomize_batch_norms(model: nn.Module, *, rng: torch.Generator, size: int = 32) -> nn.Module:
    """Batch-norms away from the identity, so that a merge is really exercised: running statistics
    calibrated on 8 random inputs (else activations of a fresh EfficientNet-B0 shrink to 1e-14 at the
    logits), affine weights in [0.75, 1.25] and biases around 0, all from ``rng``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for module in norms:
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration pass
        model.train()
        model(torch.randn(8, 3, size, size, generator=rng))
        model.eval()
        for module, momentum in zip(norms, momenta, strict=True):
            module.momentum = momentum
            c = module.num_features
            module.weight.copy_(torch.rand(c, generator=rng) * 0.5 + 0.75)
            module.bias.copy_(torch.randn(c, generator=rng) * 0.1)
    return model


def seeded_model(name: str, seed: int = 0) -> nn.Module:
    """``build_model(name)`` with weights from a fixed seed and randomised batch-norms, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(name)
    return randomize_batch_norms(model, rng=torch.Generator().manual_seed(seed + 1)).eval()




@pytest.fixture
def demo_model() -> nn.Module:
    """The demo network, random (seeded) weights and batch-norms, eval mode."""
    return seeded_model("demo")


@pytest.fixture
def demo_batch() -> torch.Tensor:
    """Three demo inputs (3, 3, 32, 32) in [0, 1]."""
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))


@pytest.fixture
def imagenet_like_batch() -> torch.Tensor:
    """Two normalised ImageNet-like inputs at small resolution (2, 3, 32, 32)."""
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(11))


def snapshot(model: nn.Module) -> dict:
    """What ``assert_untouched`` compares: state dict values, module tree, parameter identities."""
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "modules": [(name, type(m)) for name, m in model.named_modules()],
        "parameters": [id(p) for p in model.parameters()],
    }


def assert_untouched(model: nn.Module, before: dict, x: torch.Tensor, reference: torch.Tensor) -> None:
    """Same outputs (bit for bit), same state dict, no hook left, no attribute overloaded."""
    with torch.no_grad():
        assert torch.equal(model(x), reference)
    after = snapshot(model)
    assert after["modules"] == before["modules"] and after["parameters"] == before["parameters"]
    assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())
    for name, module in model.named_modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, name
        assert not module._backward_hooks and "forward" not in vars(module), name


class ModelHelpers:
    """Helpers shared by the empirical tests (importlib mode forbids importing conftest directly)."""

    seeded_model = staticmethod(seeded_model)
    snapshot = staticmethod(snapshot)
    assert_untouched = staticmethod(assert_untouched)


@pytest.fixture
def helpers() -> type[ModelHelpers]:
    """``helpers.seeded_model(name)``, ``helpers.snapshot(model)``, ``helpers.assert_untouched(...)``."""
    return ModelHelpers


# the experiments' and their runs' tiny network (moved from tests/empirical/experiments/conftest.py)
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
