"""Which LRP rule goes to which layer (composites), for every LRP method of ``empirical.attribution``.

Mechanism (hooks, canonizers) lives in Zennit and in ``lrp_rules``/``canonizers``; this module is the
wiring. Zennit's own composites are used where they exist; all of them get Pass for swish, which Zennit's
activation list does not know, and the canonizers of the network at hand.
"""

from __future__ import annotations

import torch
from torch import nn
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    LayerMapComposite,
    layer_map_base,
)
from zennit.core import Composite
from zennit.rules import Epsilon, Pass, ReLUGuidedBackprop
from zennit.types import Convolution

from empirical.attribution.canonizers import canonizers_for
from empirical.attribution.lrp_rules import DEFAULT_BETA_MAX, AdaptiveBeta
from empirical.models import architecture_of, input_bounds

DEFAULT_EPSILON = 0.25
DEFAULT_GAMMA = 0.25
LRP_METHODS = (
    "lrp-epsilon",
    "lrp-alpha2beta1",
    "lrp-alpha1beta0",
    "lrp-adaptive-beta",
    "epsilon-plus-flat",
    "epsilon-gamma-box",
)


def _swish_types() -> tuple[type, ...]:
    from efficientnet_pytorch.utils import MemoryEfficientSwish, Swish

    return (Swish, MemoryEfficientSwish, nn.SiLU)


def lrp_composite(method: str, model: nn.Module, x: torch.Tensor, *, epsilon: float = DEFAULT_EPSILON,
                  gamma: float = DEFAULT_GAMMA, beta_max: float = DEFAULT_BETA_MAX,
                  stabilizer: float = 1e-6, low=None, high=None, canonizers=None) -> Composite:
    """A fresh Zennit composite for LRP method ``method`` (one of ``LRP_METHODS``) on ``model``.

    Convolutions get the method's rule (epsilon; alpha2-beta1; alpha1-beta0 = z+; adaptive beta, eq. 1-2);
    dense layers get epsilon. ``epsilon-plus-flat`` and ``epsilon-gamma-box`` are Zennit's composites: the
    first convolution gets the flat rule, or the z^B rule with bounds ``low``/``high`` (default: the
    ImageNet range after normalisation, or [0, 1] for ``demo``; see ``empirical.models.input_bounds``).
    ``epsilon`` is used by every dense layer (and by all layers of ``lrp-epsilon``).
    """
    if canonizers is None:
        canonizers = canonizers_for(model)
    activations = [(_swish_types(), Pass())]
    common = {"epsilon": epsilon, "stabilizer": stabilizer, "canonizers": canonizers,
              "layer_map": activations}
    if method == "lrp-epsilon":
        layer_map = activations + layer_map_base(stabilizer) + [
            (Convolution, Epsilon(epsilon=epsilon)),
            (nn.Linear, Epsilon(epsilon=epsilon)),
        ]
        return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)
    if method == "lrp-alpha2beta1":
        return EpsilonAlpha2Beta1(**common)
    if method == "lrp-alpha1beta0":
        return EpsilonPlus(**common)
    if method == "lrp-adaptive-beta":
        layer_map = activations + layer_map_base(stabilizer) + [
            (Convolution, AdaptiveBeta(beta_max=beta_max, stabilizer=stabilizer)),
            (nn.Linear, Epsilon(epsilon=epsilon)),
        ]
        return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)
    if method == "epsilon-plus-flat":
        return EpsilonPlusFlat(**common)
    if method == "epsilon-gamma-box":
        low, high = _box_bounds(model, x, low, high)
        return EpsilonGammaBox(low=low, high=high, gamma=gamma, **common)
    raise ValueError(f"unknown LRP method {method!r}; known: {', '.join(LRP_METHODS)}")


def guided_backprop_composite(model: nn.Module) -> Composite:
    """Guided backprop (Springenberg et al.): every ReLU (and swish) passes only positive upstream gradient.

    DenseNet's functional final ReLU is made a module by its canonizer (no batch-norm merging needed).
    """
    layer_map = [((nn.ReLU, *_swish_types()), ReLUGuidedBackprop())]
    return LayerMapComposite(layer_map=layer_map, canonizers=canonizers_for(model, merge_batch_norm=False))


def _box_bounds(model, x, low, high):
    if low is None or high is None:
        try:
            default_low, default_high = input_bounds(architecture_of(model))
        except ValueError:
            raise ValueError(
                "epsilon-gamma-box needs the input range of this network: pass low= and high= "
                "(scalars or per-channel tensors)"
            ) from None
        low = default_low if low is None else low
        high = default_high if high is None else high
    low, high = (torch.as_tensor(bound, dtype=x.dtype, device=x.device) for bound in (low, high))
    # per-channel bounds (C,) must broadcast against (N, C, H, W)
    if low.ndim == 1:
        low = low.view(1, -1, *([1] * (x.ndim - 2)))
    if high.ndim == 1:
        high = high.view(1, -1, *([1] * (x.ndim - 2)))
    return low, high
