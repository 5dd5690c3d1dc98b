"""Which LRP rule goes to which layer (composites), for every LRP method of ``empirical.attribution``.

Mechanism (hooks, canonizers) lives in Zennit and in ``lrp_rules``/``canonizers``; this module is the
wiring. Every method's rules redistribute bias-free by default (``include_bias=False``, seed eq. 52 and
section G); ``method_settings`` returns the settings a method runs with, for manifests and reports.
"""

from __future__ import annotations

import torch
from torch import nn
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base
from zennit.core import Composite
from zennit.rules import Epsilon as ZennitEpsilon
from zennit.rules import Flat, Pass, ReLUGuidedBackprop, ZBox
from zennit.types import AvgPool, Convolution
from zennit.types import Linear as AnyLinear

from empirical.attribution.canonizers import canonizers_for
from empirical.attribution.densenet_canonizer import ThresholdReLU
from empirical.attribution.graph_canonizer import LRPNotSupportedError, lrp_support, refusal_message
from empirical.attribution.lrp_rules import (
    BETA_FROM,
    DEFAULT_BETA_MAX,
    AdaptiveBeta,
    AlphaBeta,
    Epsilon,
    Gamma,
    ZPlus,
)
from empirical.models import spec_of

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
#: what each method gives the convolutions (first convolution in brackets) and the dense layers
METHOD_RULES = {
    "lrp-epsilon": "epsilon everywhere (bias in the denominator, as Zennit's Epsilon)",
    "lrp-alpha2beta1": "alpha2-beta1 on convolutions and average pooling, epsilon on dense layers",
    "lrp-alpha1beta0": "z+ (alpha1-beta0) on convolutions and average pooling, epsilon on dense layers",
    "lrp-adaptive-beta": "adaptive beta (eq. 1-2) on convolutions and average pooling, epsilon on dense "
                         "layers",
    "epsilon-plus-flat": "flat on the first layer, z+ on other convolutions and average pooling, epsilon on "
                         "dense layers",
    "epsilon-gamma-box": "z^B on the first layer, gamma on other convolutions, epsilon on dense layers",
}


def _swish_types() -> tuple[type, ...]:
    from efficientnet_pytorch.utils import MemoryEfficientSwish, Swish

    return (Swish, MemoryEfficientSwish, nn.SiLU)


def method_settings(method: str, *, beta_from: str = "inputs", include_bias: bool = False,
                    fallback: bool = True, beta_max: float = DEFAULT_BETA_MAX,
                    epsilon: float = DEFAULT_EPSILON, gamma: float = DEFAULT_GAMMA, **_ignored) -> dict:
    """The rule settings LRP method ``method`` runs with under these options, as a flat dict of plain
    values (for run manifests and the report: which ``beta_from``, whether the bias takes relevance).

    Keys: ``method``, ``rules`` (``METHOD_RULES``), ``bias`` (``"excluded"`` or ``"included"`` in the
    redistribution of the alpha-beta, z+, gamma and box rules), ``fallback`` (conserving treatment of
    empty sides, alpha-beta family), ``epsilon``; plus ``beta_from``/``beta_max`` for the adaptive rule
    and ``gamma`` for epsilon-gamma-box.
    """
    if method not in LRP_METHODS:
        raise ValueError(f"unknown LRP method {method!r}; known: {', '.join(LRP_METHODS)}")
    _check_options(beta_from, include_bias, fallback)
    settings = {"method": method, "rules": METHOD_RULES[method], "epsilon": float(epsilon)}
    if method != "lrp-epsilon":
        settings["bias"] = "included" if include_bias else "excluded"
    if method in ("lrp-alpha2beta1", "lrp-alpha1beta0", "lrp-adaptive-beta", "epsilon-plus-flat",
                  "epsilon-gamma-box"):
        settings["fallback"] = bool(fallback)
    if method == "lrp-adaptive-beta":
        settings.update(beta_from=beta_from, beta_max=float(beta_max))
    if method == "epsilon-gamma-box":
        settings["gamma"] = float(gamma)
    return settings


def _check_options(beta_from, include_bias, fallback) -> None:
    if beta_from not in BETA_FROM:
        raise ValueError(f"beta_from must be one of {BETA_FROM}, got {beta_from!r}")
    for name, value in (("include_bias", include_bias), ("fallback", fallback)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")


def lrp_composite(method: str, model: nn.Module, x: torch.Tensor, *, epsilon: float = DEFAULT_EPSILON,
                  gamma: float = DEFAULT_GAMMA, beta_max: float = DEFAULT_BETA_MAX, beta_from: str = "inputs",
                  include_bias: bool = False, fallback: bool = True, stabilizer: float = 1e-6, low=None,
                  high=None, canonizers=None) -> Composite:
    """A fresh Zennit composite for LRP method ``method`` (one of ``LRP_METHODS``) on ``model``.

    Convolutions get the method's rule (``METHOD_RULES``): alpha2-beta1, z+ = alpha1-beta0 and the adaptive
    beta rule (eq. 1-2, ``beta_from="inputs"``; ``"output"``: the authors' -N/z) from ``lrp_rules``, all
    bias-free and with the conserving fallback unless ``include_bias=True`` / ``fallback=False``; dense
    layers get Zennit's epsilon rule (bias in the denominator). ``epsilon-plus-flat``: Zennit's flat rule on
    the first layer, z+ (ours) on the other convolutions. ``epsilon-gamma-box``: Zennit's z^B rule on the
    first layer (bias-free unless ``include_bias``) with bounds ``low``/``high`` (default: the ImageNet range
    after normalisation, or [0, 1] for ``demo``; see ``empirical.models.input_bounds``), the gamma rule
    (ours, bias-free unless ``include_bias``) on the other convolutions. ``lrp-epsilon``: Zennit's epsilon
    rule on every layer, bias included as the rule defines it. ``epsilon`` is used by every dense layer.
    Batch-norms that no canonizer removed and activations (swish and DenseNet's threshold ReLU included)
    pass relevance on unchanged, except that ``lrp-epsilon`` keeps the threshold ReLU's gradient; sums get
    Zennit's ``Norm``, and so does average pooling for ``lrp-epsilon`` and ``epsilon-gamma-box`` (the
    other methods apply their own rule to it: a linear layer with non-negative weights).
    """
    _check_options(beta_from, include_bias, fallback)
    if canonizers is None:
        canonizers = supported_canonizers(model)
    # ReLU6 (EfficientNet-Lite) passes relevance too: a unit clipped at 6 hands it to its pre-activation
    activations = [((*_swish_types(), nn.ReLU6, ThresholdReLU), Pass())]
    base = activations + layer_map_base(stabilizer)
    if method == "lrp-epsilon":
        return LayerMapComposite(layer_map=epsilon_layer_map(ZennitEpsilon(epsilon=epsilon), stabilizer),
                                 canonizers=canonizers)
    dense = [(nn.Linear, Epsilon(epsilon, include_bias=include_bias))]
    family = {"include_bias": include_bias, "fallback": fallback}
    if method in ("lrp-alpha2beta1", "lrp-alpha1beta0", "lrp-adaptive-beta", "epsilon-plus-flat"):
        make_rule = {
            "lrp-alpha2beta1": lambda: AlphaBeta(2.0, 1.0, **family),
            "lrp-alpha1beta0": lambda: ZPlus(**family),
            "lrp-adaptive-beta": lambda: AdaptiveBeta(beta_max=beta_max, beta_from=beta_from, **family),
            "epsilon-plus-flat": lambda: ZPlus(**family),
        }[method]
        # average pooling is a linear layer with non-negative weights: the method's rule applies to it
        layer_map = activations + [(AvgPool, make_rule())] + base + [(Convolution, make_rule())] + dense
        if method != "epsilon-plus-flat":
            return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)
        first_map = [(AnyLinear, Flat(stabilizer=stabilizer))]
        return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=first_map, canonizers=canonizers)
    if method == "epsilon-gamma-box":
        low, high = _box_bounds(model, x, low, high)
        zero_params = None if include_bias else ["bias"]
        gamma_rule = Gamma(gamma, stabilizer=stabilizer, include_bias=include_bias, fallback=fallback)
        layer_map = base + [(Convolution, gamma_rule)] + dense
        first_map = [(AnyLinear, ZBox(low=low, high=high, stabilizer=stabilizer, zero_params=zero_params))]
        return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=first_map, canonizers=canonizers)
    raise ValueError(f"unknown LRP method {method!r}; known: {', '.join(LRP_METHODS)}")


def supported_canonizers(model: nn.Module) -> list:
    """``canonizers_for(model)``; a network without a built-in row whose modules LRP has no rule for raises
    ``LRPNotSupportedError`` naming their types."""
    if spec_of(model) is None and (problems := lrp_support(model)):
        raise LRPNotSupportedError(refusal_message(model, problems))
    return canonizers_for(model)


def epsilon_layer_map(rule, stabilizer: float = 1e-6, *, threshold_rule=None) -> list:
    """The layer map of ``lrp-epsilon`` with ``rule`` (an epsilon rule, bias in the denominator) on every
    convolution and dense layer; sums and average pooling get Zennit's ``Norm``, activations pass relevance
    on, DenseNet's threshold ReLU keeps its gradient (``threshold_rule``: a hook that keeps it too)."""
    # the threshold ReLU keeps its gradient here, so that at epsilon -> 0 the map is gradient x input,
    # as for every piecewise-linear network (with Pass, relevance of clamped units would move on to
    # inputs that do not affect the output, and the maps exploded on DenseNet-121)
    gradient_threshold = [((*_swish_types(), nn.ReLU6), Pass()), (ThresholdReLU, threshold_rule)]
    return gradient_threshold + layer_map_base(stabilizer) + [(Convolution, rule), (nn.Linear, rule)]


def guided_backprop_composite(model: nn.Module) -> Composite:
    """Guided backprop (Springenberg et al.): every ReLU (ReLU6 and swish too) passes only positive upstream
    gradient.

    DenseNet's functional final ReLU is made a module by its canonizer (no batch-norm merging needed).
    """
    # ReLU6 (EfficientNet-Lite) is an nn.Hardtanh, not an nn.ReLU: named here, its gradient (zero below 0
    # and above 6) is kept and only negative upstream signals are cut
    layer_map = [((nn.ReLU, nn.ReLU6, *_swish_types()), ReLUGuidedBackprop())]
    return LayerMapComposite(layer_map=layer_map, canonizers=canonizers_for(model, merge_batch_norm=False))


def _box_bounds(model, x, low, high):
    if low is None or high is None:
        spec = spec_of(model)
        bounds = None if spec is None else spec.input_bounds()
        if bounds is None:
            raise ValueError(
                "epsilon-gamma-box needs the input range of this network: pass low= and high= "
                "(scalars or per-channel tensors)"
            )
        default_low, default_high = bounds
        low = default_low if low is None else low
        high = default_high if high is None else high
    low, high = (torch.as_tensor(bound, dtype=x.dtype, device=x.device) for bound in (low, high))
    # per-channel bounds (C,) must broadcast against (N, C, H, W)
    if low.ndim == 1:
        low = low.view(1, -1, *([1] * (x.ndim - 2)))
    if high.ndim == 1:
        high = high.view(1, -1, *([1] * (x.ndim - 2)))
    return low, high
