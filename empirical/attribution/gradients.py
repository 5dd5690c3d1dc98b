"""Gradient-based attributions and the random control; each returns the raw (N, C, H, W) map.

One forward and one backward pass per batch (integrated gradients: one per chunk of interpolation
steps, all images of the batch together). Only the input gradient is requested, so no parameter
gradients are computed or stored.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def input_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d f_target(x) / d x for every image of the batch at once, shape of ``x``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        selected = select_logits(model(x), target).sum()
        (gradient,) = torch.autograd.grad(selected, x)
    return gradient


def select_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The logit of class ``target[i]`` of each image i, (N, 1); ValueError for a class out of range."""
    if logits.ndim != 2:
        raise ValueError(f"the model must return logits (N, classes), got shape {tuple(logits.shape)}")
    # checked here, not left to gather: an out-of-range index on CUDA is a device-side assert
    low, high = int(target.min()), int(target.max())
    if low < 0 or high >= logits.shape[1]:
        raise ValueError(f"target classes must lie in [0, {logits.shape[1] - 1}], got {low}..{high}")
    return logits.gather(1, target[:, None])


def gradient_x_input(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient times input (seed eq. 43 for one neuron), shape of ``x``."""
    return input_gradient(model, x, target) * x


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, steps: int = 50,
                         baseline=0.0, rule: str = "gausslegendre",
                         steps_per_pass: int | None = None) -> torch.Tensor:
    """Integrated gradients (Sundararajan et al.): (x - x0) times the path integral of the gradient.

    ``baseline`` x0: a scalar or a tensor broadcastable to ``x`` (default 0, i.e. the dataset mean after
    ImageNet normalisation). ``rule``: ``"gausslegendre"`` (as Captum's default) or ``"riemann_trapezoid"``.
    The N * steps interpolated images run in passes of ``steps_per_pass`` steps (default: as many as keep a
    pass near 256 images). Returns the raw map, shape of ``x``.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    alphas, weights = _quadrature(rule, steps)
    baseline = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    difference = x - baseline
    if steps_per_pass is None:
        steps_per_pass = max(1, 256 // max(1, x.shape[0]))
    if not isinstance(steps_per_pass, int) or steps_per_pass < 1:
        raise ValueError(f"steps_per_pass must be a positive integer, got {steps_per_pass!r}")
    alphas = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    total = torch.zeros_like(x)
    shape = (-1, *([1] * x.ndim))
    for start in range(0, steps, steps_per_pass):
        chunk = slice(start, start + steps_per_pass)
        # (steps_in_chunk, N, C, H, W) -> one batch of steps_in_chunk * N images
        path = baseline + alphas[chunk].view(shape) * difference
        gradient = input_gradient(model, path.flatten(0, 1), target.repeat(path.shape[0]))
        total += (gradient.view(path.shape) * weights[chunk].view(shape)).sum(0)
    return total * difference


def _quadrature(rule: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in [0, 1] and weights summing to 1 for the path integral."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ValueError(f"riemann_trapezoid needs steps >= 2, got {steps!r}")
        nodes = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return nodes, weights
    raise ValueError(f"rule must be 'gausslegendre' or 'riemann_trapezoid', got {rule!r}")


def random_uniform(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *,
                   rng: torch.Generator | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A control that carries no information: iid uniform [0, 1) values, one per pixel of ``x``
    (N, C, H, W), the same on every colour channel (a view: the channel reduction keeps one, so drawing
    the others would only be thrown away).

    ``rng`` (or its alias ``generator``) is a ``torch.Generator``; its device decides where the numbers are
    drawn; they are then moved to ``x``'s device. Without one, a fresh nondeterministic generator is used.
    """
    rng = rng if rng is not None else generator
    if rng is None:
        rng = torch.Generator(device="cpu")
        rng.seed()
    if not isinstance(rng, torch.Generator):
        raise ValueError(f"rng must be a torch.Generator, got {type(rng).__name__}")
    n, channels, height, width = x.shape
    values = torch.rand((n, 1, height, width), generator=rng, device=rng.device, dtype=x.dtype)
    return values.to(x.device).expand(n, channels, height, width)
