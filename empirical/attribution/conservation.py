"""How much of the explained logit LRP hands to the input (seed eq. 52, section G): the conservation check,
on random networks whose batch-norms are far from the identity.

``calibrated_random_model`` builds a network with random weights, batch-norm affine weights U(0.5, 1.5) and
biases N(0, 0.2), running statistics calibrated on 16 random inputs, and (``scale_classifier``) the last
linear layer scaled so that the explained logits are near 30 as in a trained network; at logits near 2 the
classifier's epsilon term alone would keep about 10% of the relevance back. ``relevance_ratios`` gives
sum(R)/logit and sum(|R|)/logit per image; ``conservation_rows`` a tidy table over methods.
"""

from __future__ import annotations

import torch
from torch import nn

from empirical.attribution import attribute
from empirical.models import build_model

#: LRP settings of the conservation table: (label, method, options)
CONSERVATION_METHODS = (
    ("lrp-alpha1beta0", "lrp-alpha1beta0", {}),
    ("lrp-alpha2beta1", "lrp-alpha2beta1", {}),
    ("lrp-adaptive-beta (inputs)", "lrp-adaptive-beta", {"beta_from": "inputs"}),
    ("lrp-adaptive-beta (output)", "lrp-adaptive-beta", {"beta_from": "output"}),
    ("epsilon-plus-flat", "epsilon-plus-flat", {}),
    ("epsilon-gamma-box", "epsilon-gamma-box", {}),
    ("lrp-epsilon", "lrp-epsilon", {}),
)


def calibrate_batch_norms(model: nn.Module, *, rng: torch.Generator, size: int = 64,
                          batch: int = 16) -> nn.Module:
    """Batch-norm affine weights U(0.5, 1.5) and biases N(0, 0.2) from ``rng``, then running statistics
    from one pass of ``batch`` N(0, 1) inputs of ``size`` x ``size`` with only the batch-norms in train mode
    (cumulative average; dropout and drop-connect stay off, so no global random state is used). Returns
    ``model`` in eval mode."""
    if not isinstance(rng, torch.Generator):
        raise ValueError(f"rng must be a torch.Generator, got {type(rng).__name__}")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    model.eval()
    with torch.no_grad():
        for norm in norms:
            channels = norm.num_features
            norm.weight.copy_(torch.rand(channels, generator=rng) + 0.5)
            norm.bias.copy_(torch.randn(channels, generator=rng) * 0.2)
            norm.reset_running_stats()
            norm.momentum = None
            norm.train()
        model(torch.randn(batch, 3, size, size, generator=rng))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()


def scale_classifier(model: nn.Module, x: torch.Tensor, *, logit: float = 30.0) -> nn.Module:
    """Scale the last linear layer's weight and bias so that the median top logit over ``x`` is ``logit``."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        top = model(x).max(1).values.median()
        if not top > 0:
            raise ValueError(f"the median top logit must be positive to be scaled, got {top.item()!r}")
        factor = logit / top
        linear.weight.mul_(factor)
        if linear.bias is not None:
            linear.bias.mul_(factor)
    return model


def calibrated_random_model(name: str, x: torch.Tensor, *, rng: torch.Generator) -> nn.Module:
    """``build_model(name)`` seeded from ``rng``, batch-norms calibrated at ``x``'s size and the classifier
    scaled to top logits near 30 at ``x`` (see the module docstring); eval mode."""
    model = build_model(name, rng=rng)
    calibrate_batch_norms(model, rng=rng, size=x.shape[-1])
    return scale_classifier(model, x)


def relevance_ratios(model: nn.Module, x: torch.Tensor, method: str, **options) -> dict[str, torch.Tensor]:
    """LRP ``method`` for the top class of every image: ``sum`` = sum(R)/logit and ``abs`` = sum(|R|)/logit
    per image, plus the ``map`` (N, H, W) and the ``logit``."""
    with torch.no_grad():
        logits = model(x)
    logit, target = logits.max(1)
    relevance = attribute(model, x, target, method, **options)
    flat = relevance.flatten(1)
    return {"sum": flat.sum(1) / logit, "abs": flat.abs().sum(1) / logit, "map": relevance, "logit": logit}


def pearson_per_image(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two batches of maps, one value per image."""
    a = first.flatten(1) - first.flatten(1).mean(1, keepdim=True)
    b = second.flatten(1) - second.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def conservation_rows(model: nn.Module, x: torch.Tensor, network: str, methods=CONSERVATION_METHODS,
                      **options) -> list[dict]:
    """One row per method: network, method label, median and max of sum(R)/logit, max of sum(|R|)/logit."""
    rows = []
    for label, method, method_options in methods:
        ratios = relevance_ratios(model, x, method, **method_options, **options)
        rows.append({"network": network, "method": label,
                     "median_sum_ratio": ratios["sum"].median().item(),
                     "min_sum_ratio": ratios["sum"].min().item(), "max_sum_ratio": ratios["sum"].max().item(),
                     "max_abs_ratio": ratios["abs"].max().item()})
    return rows
