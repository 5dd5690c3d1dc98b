"""Attribution maps for the audit: gradients, integrated gradients, guided backprop,
LRP (Zennit composites and canonizers; bias-free alpha-beta, z+, gamma and adaptive beta rules of seed
eq. 1-2 and 52 in ``lrp_rules``) and a random control, behind one function, ``attribute``, and a registry
that takes any callable. ``method_settings(method, **options)`` says which rule settings an LRP run used
(``beta_from``, bias excluded or included, fallback).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from empirical._checks import nonfinite_rows
from empirical.attribution import gradients as _gradients
from empirical.attribution.canonizers import DenseNetCanonizer, EfficientNetCanonizer, canonizers_for
from empirical.attribution.composites import (
    LRP_METHODS,
    METHOD_RULES,
    guided_backprop_composite,
    lrp_composite,
    method_settings,
)
from empirical.attribution.graph_canonizer import LRPNotSupportedError
from empirical.attribution.lrp_rules import (
    BETA_FROM,
    AdaptiveBeta,
    AlphaBeta,
    Gamma,
    ZPlus,
    adaptive_beta_torch,
    output_beta_torch,
    positive_negative_sums,
)

__all__ = [
    "AdaptiveBeta",
    "AlphaBeta",
    "BETA_FROM",
    "BUILTIN_METHODS",
    "CONSERVATION_BAND",
    "ConservationWarning",
    "LRPNotSupportedError",
    "DenseNetCanonizer",
    "EfficientNetCanonizer",
    "Gamma",
    "LRP_METHODS",
    "METHOD_RULES",
    "REDUCTIONS",
    "adaptive_beta_torch",
    "attribute",
    "available_methods",
    "canonizers_for",
    "conservation_ratios",
    "lrp_composite",
    "method_definition",
    "method_settings",
    "output_beta_torch",
    "positive_negative_sums",
    "promises_conservation",
    "reduce_channels",
    "register_method",
    "ZPlus",
]

REDUCTIONS = ("sum", "mean", "l2", "first", "none")


def reduce_channels(raw: torch.Tensor, reduction: str) -> torch.Tensor:
    """Collapse the colour axis 1 of a raw (N, C, H, W) map: ``sum``, ``mean``, ``l2`` (Euclidean norm),
    ``first`` (channel 0) or ``none`` (return ``raw`` as it is)."""
    if reduction == "sum":
        return raw.sum(1)
    if reduction == "mean":
        return raw.mean(1)
    if reduction == "l2":
        return torch.linalg.vector_norm(raw, dim=1)
    if reduction == "first":
        return raw[:, 0]
    if reduction == "none":
        return raw
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


@dataclass(frozen=True)
class _Method:
    function: Callable
    reduction: str
    takes_options: bool


_REGISTRY: dict[str, _Method] = {}


def register_method(name: str, function: Callable, *, reduction: str = "sum", takes_options: bool = False,
                    replace: bool = False) -> None:
    """Register ``function(model, x, target) -> map`` under ``name`` for ``attribute``.

    ``function`` returns a map per image of ``x`` (N, C, H, W): one value per input channel and pixel, which
    ``attribute`` reduces over channels by ``reduction`` unless asked for the raw map; or (N, H, W): one
    value per pixel, which is returned as it is. Any other shape raises ValueError when called. A
    function from Captum or pytorch-grad-cam plugs in through a wrapper ``(model, x, target) -> tensor``.
    With ``takes_options=True`` the
    options given to ``attribute`` are passed on as keyword arguments. ``replace=True`` allows redefining.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"method name must be a non-empty string, got {name!r}")
    if not callable(function):
        raise ValueError(f"function for method {name!r} must be callable, got {function!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is already registered (pass replace=True to redefine it)")
    _REGISTRY[name] = _Method(function, reduction, takes_options)


def method_definition(name: str) -> dict:
    """What ``name`` was registered with: ``{"function": ..., "reduction": ..., "takes_options": ...}``
    (``register_method``); ValueError for a name that is not registered."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown attribution method {name!r}; known: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[name]
    return {"function": entry.function, "reduction": entry.reduction, "takes_options": entry.takes_options}


def available_methods() -> tuple[str, ...]:
    """Names ``attribute`` accepts, built-in ones first."""
    return tuple(_REGISTRY)


def attribute(model: nn.Module, x: torch.Tensor, target, method: str, *, raw: bool = False,
              **options) -> torch.Tensor:
    """Attribution maps of ``model`` for the classes ``target`` at the inputs ``x`` (N, C, H, W).

    ``target``: a LongTensor (N,) of class indices or an int for all images. ``method``: a name from
    ``available_methods()``. Returns (N, H, W) after the method's channel reduction (see each method's
    registration: ``gradient`` l2 = Sensitivity, ``gradient-mean`` mean, ``random-uniform`` one channel of
    iid draws, all others the sum, which keeps LRP's conservation and IG's completeness), or the raw
    (N, C, H, W) map with ``raw=True``. Runs on the device of ``model`` and ``x``; the model must be in eval
    mode and is left exactly as it was (every hook and canonizer removed).
    """
    if method not in _REGISTRY:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[method]
    _check_inputs(model, x)
    target = _as_target(target, x)
    if entry.takes_options:
        result = entry.function(model, x, target, **options)
    elif options:
        raise ValueError(f"method {method!r} takes no options, got {sorted(options)}")
    else:
        result = entry.function(model, x, target)
    result = _checked_map(result, x, method)
    if raw or result.ndim == 3:
        return result
    return reduce_channels(result, entry.reduction)


def _checked_map(result, x: torch.Tensor, method: str) -> torch.Tensor:
    """``result`` if it is a map per image of ``x``, (N, C, H, W) or (N, H, W); ValueError otherwise."""
    n, _, height, width = x.shape
    shape = tuple(getattr(result, "shape", ()))
    if not isinstance(result, torch.Tensor) or shape not in ((n, x.shape[1], height, width),
                                                              (n, height, width)):
        raise ValueError(f"method {method!r} returned {type(result).__name__} of shape {shape} for x of "
                         f"shape {tuple(x.shape)}: a map must be (N, C, H, W) = "
                         f"{(n, x.shape[1], height, width)} or (N, H, W) = {(n, height, width)}")
    return result


def _check_inputs(model: nn.Module, x: torch.Tensor) -> None:
    """ValueError unless ``model`` is a module in eval mode and ``x`` a finite floating-point (N, C, H, W)
    tensor on the model's device."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a tensor (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(model, nn.Module) or not x.is_floating_point():
        raise ValueError(f"model must be a torch.nn.Module and x a floating-point tensor, got "
                         f"{type(model).__name__} and x of dtype {x.dtype}")
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.device != x.device:
        raise ValueError(f"x is on {x.device} but the model is on {parameter.device}: move one of them")
    if x.device.type != "meta" and (bad := nonfinite_rows(x)):
        raise ValueError(f"x must be finite: NaN or infinite values in image(s) {bad[:10]}")
    if model.training:
        raise ValueError("model is in training mode: call model.eval() first (batch-norm statistics change)")


def _as_target(target, x: torch.Tensor) -> torch.Tensor:
    if isinstance(target, int) and not isinstance(target, bool):
        return torch.full((x.shape[0],), target, dtype=torch.long, device=x.device)
    if not isinstance(target, torch.Tensor) or target.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"target must be an int or an integer tensor (N,), got {target!r}")
    if target.shape != (x.shape[0],):
        raise ValueError(f"target must have shape ({x.shape[0]},) to match x, got {tuple(target.shape)}")
    return target.to(device=x.device, dtype=torch.long)


def _lrp(method: str) -> Callable:
    def run(model, x, target, *, output_relevance: str = "logit", **options):
        """LRP from the target logit as output relevance (``output_relevance="one"``: from 1, as Zennit).

        ``options`` go to ``lrp_composite``: ``beta_from`` ("inputs", eq. 2, or "output", the authors'
        code; adaptive beta only), ``include_bias`` (default False: bias-free redistribution), ``fallback``
        (default True: conserving treatment of empty sides), ``epsilon``, ``gamma``, ``beta_max``, ...
        ``method_settings(method, **options)`` reports what was used."""
        if output_relevance not in ("logit", "one"):
            raise ValueError(f"output_relevance must be 'logit' or 'one', got {output_relevance!r}")
        composite = lrp_composite(method, model, x, **options)
        relevance, logit = _modified_gradient(model, x, target, composite,
                                              scale_by_logit=output_relevance == "logit", with_logit=True)
        if promises_conservation(method, **options):
            _warn_unless_conserved(method, relevance, logit if output_relevance == "logit" else None)
        return relevance

    run.__name__ = method.replace("-", "_")
    return run


def _guided_backprop(model, x, target):
    """Guided backprop: gradient with negative upstream signals cut at every ReLU (raw map)."""
    return _modified_gradient(model, x, target, guided_backprop_composite(model), scale_by_logit=False)


def _modified_gradient(model, x, target, composite, *, scale_by_logit: bool, with_logit: bool = False):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad(), composite.context(model) as hooked:
        selected = _gradients.select_logits(hooked(x), target)
        seed = selected.detach() if scale_by_logit else torch.ones_like(selected)
        (relevance,) = torch.autograd.grad(selected, x, grad_outputs=seed)
    return (relevance, selected.detach()) if with_logit else relevance


def promises_conservation(method: str, *, include_bias: bool = False, **_options) -> bool:
    """Whether LRP ``method`` promises sum(R) = explained logit (supplement eq. 52, section G): every
    bias-free rule does, up to what the dense layers' epsilon absorbs; ``lrp-epsilon`` (bias in the
    denominator, as Zennit's rule) and any rule with ``include_bias=True`` hand part of it to the biases."""
    return method in LRP_METHODS and method != "lrp-epsilon" and not include_bias


def conservation_ratios(relevance: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
    """sum(R) / explained logit per image, (N,): 1 where LRP conserves (supplement eq. 52)."""
    return relevance.detach().flatten(1).sum(1) / logit.detach()


#: the band of the median sum(R) / logit outside which a conserving rule's maps draw a warning
CONSERVATION_BAND = (0.9, 1.1)


class ConservationWarning(RuntimeWarning):
    """LRP maps of a rule that promises conservation (supplement eq. 52) whose median sum(R) / logit lies
    outside ``CONSERVATION_BAND``."""


def _warn_unless_conserved(method, relevance, logit) -> None:
    if logit is None:
        return
    median = float(conservation_ratios(relevance, logit).median())
    low, high = CONSERVATION_BAND
    if not low <= median <= high:
        warnings.warn(
            f"{method} handed a median {median:.3g} of the explained logit to the input over "
            f"{len(logit)} image(s), outside [{low}, {high}]: the maps do not conserve relevance. Small "
            "logits lose a share to the dense layers' epsilon (pass a smaller epsilon=); otherwise a part "
            "of the network has no fitting rule", ConservationWarning, stacklevel=4)


def _register_builtins() -> None:
    register_method("gradient", _gradients.input_gradient, reduction="l2")
    register_method("gradient-mean", _gradients.input_gradient, reduction="mean")
    register_method("gradient-x-input", _gradients.gradient_x_input)
    register_method("integrated-gradients", _gradients.integrated_gradients, takes_options=True)
    register_method("guided-backprop", _guided_backprop)
    for name in LRP_METHODS:
        register_method(name, _lrp(name), takes_options=True)
    register_method("random-uniform", _gradients.random_uniform, reduction="first", takes_options=True)


_register_builtins()
#: the methods that ship with the package, in registration order
BUILTIN_METHODS = available_methods()
