"""LRP rules of the audit: alpha-beta, z+, the adaptive beta rule (seed section A.2, eq. 1-2) and gamma.

All of them are Zennit hooks (``zennit.core.Hook``) for convolutions and linear layers. Unlike Zennit's own
``AlphaBeta``/``ZPlus``/``Gamma``, the redistribution is **bias-free by default**: the shares of output
neuron j are the input contributions z_ij = w_ij x_i of eq. 52, and the layer's bias (after a batch-norm
merge every convolution has one; after DenseNet's folding it is tensor-shaped) takes no relevance. This is
what eq. 52 and the dominance argument of section G assume, and the default of the authors' public code.
``include_bias=True`` gives Zennit's behaviour (a positive bias joins the positive, a negative bias the
negative denominator, and keeps its share).

The linear part of a layer is evaluated with the layer's weight and no bias (``linear_part``), so any
bias a canonizer builds into a convolution's forward is excluded as well; the bias is recovered as the
layer's output minus that linear part.

Conservation fallback (``fallback=True``, the default of the alpha-beta family and of gamma). Eq. 52 has
nothing to redistribute to where a side is empty (a sum below finfo.tiny / finfo.eps of the dtype counts
as empty, so that no division overflows): with the positive sum P_j = 0 the alpha share, with the negative
sum N_j = 0 the beta share is lost. With ReLU inputs this is rare; swish lets relevance reach neurons whose
positive sum is zero (mostly 3x3 depthwise convolutions of EfficientNet-B0, 9 inputs each). The fallback
keeps the alpha - beta share that eq. 52 hands on in total: where N_j = 0 all of it goes to the positive
contributions (the neuron is treated with beta = 0), where P_j = 0 all of it goes to the negative
contributions in proportion z_ij / N_j (the z-rule, stable there since all contributions share one sign),
and where every contribution is zero it is spread evenly over the neuron's inputs (the flat rule; the
gamma rule does the same for its neurons with z_j = 0). ``fallback=False`` drops that relevance, as the
authors' code does.
"""

from __future__ import annotations

import torch
from torch import nn
from zennit.core import Hook, ParamMod, Stabilizer
from zennit.types import AvgPool

DEFAULT_BETA_MAX = 3.0
#: where the adaptive beta takes its statistics from (``AdaptiveBeta(beta_from=...)``)
BETA_FROM = ("inputs", "output")


def adaptive_beta_torch(positive_sum: torch.Tensor, negative_sum: torch.Tensor,
                        beta_max: float = DEFAULT_BETA_MAX) -> torch.Tensor:
    """Torch twin of ``theory.adaptive_beta`` (eq. 1-2): -N/(P+N) capped at ``beta_max``, 0 where P+N <= 0.

    Elementwise on tensors of any shape and device; tested against the numpy original.
    """
    total = positive_sum + negative_sum
    on = total > 0
    beta = -negative_sum / torch.where(on, total, torch.ones_like(total))
    return torch.where(on, beta, torch.zeros_like(beta)).clamp(max=beta_max)


def output_beta_torch(negative_sum: torch.Tensor, output: torch.Tensor,
                      beta_max: float = DEFAULT_BETA_MAX) -> torch.Tensor:
    """The adaptive beta of the authors' public code: -N/z with z the layer output *including* the bias,
    capped at ``beta_max``, 0 where z <= 0. Equals eq. 2 for a layer without bias."""
    on = output > 0
    beta = -negative_sum / torch.where(on, output, torch.ones_like(output))
    return torch.where(on, beta, torch.zeros_like(beta)).clamp(max=beta_max)


def linear_part(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``module``'s map x -> sum_i w_ji x_i with ``weight`` in place of its weight and no bias.

    A module with a ``linear_part(x, weight)`` method (a canonizer's convolution with a tensor-shaped bias)
    computes it itself; any other convolution or linear layer runs its own ``forward`` (so the padding of
    efficientnet-pytorch's same-padding convolutions is kept) with the weight replaced and the bias zeroed,
    without calling its hooks.
    """
    own = getattr(module, "linear_part", None)
    if callable(own):
        return own(x, weight)
    if not isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        raise ValueError(f"module must be a convolution or a linear layer, got {type(module).__name__}")
    replace = ParamMod(lambda param, name: weight if name == "weight" else torch.zeros_like(param),
                       param_keys=["weight", "bias"], require_params=False)
    with replace(module) as modified:
        return modified.forward(x)


def positive_negative_sums(module: nn.Module, x: torch.Tensor,
                           output: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bias-free sums P_j = sum_i (w_ji x_i)^+ and N_j = sum_i (w_ji x_i)^- per output neuron of ``module``.

    For inspecting betas outside LRP (the rules compute the same sums in their own passes). ``output`` is
    accepted for backwards compatibility and not needed.
    """
    del output
    with torch.no_grad():
        weight = module.weight
        x_pos, x_neg = x.clamp(min=0), x.clamp(max=0)
        w_pos, w_neg = weight.clamp(min=0), weight.clamp(max=0)
        positive = linear_part(module, x_pos, w_pos) + linear_part(module, x_neg, w_neg)
        negative = linear_part(module, x_pos, w_neg) + linear_part(module, x_neg, w_pos)
    return positive, negative


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


class _LinearLayerRule(Hook):
    """Base: stores the layer's input and output, returns the input relevance of ``relevance_in``."""

    def forward(self, module, input, output):
        self.stored_tensors["input"] = input[0].detach()
        self.stored_tensors["output"] = output.detach()

    def backward(self, module, grad_input, grad_output):
        relevance = self.relevance_in(module, self.stored_tensors["input"], self.stored_tensors["output"],
                                      grad_output[0].detach())
        return tuple(relevance if g is not None and g.shape == relevance.shape else None for g in grad_input)

    def relevance_in(self, module, x, output, relevance):  # pragma: no cover - abstract
        raise NotImplementedError

    def copy(self):
        return type(self)(**self._config)


class AlphaBeta(_LinearLayerRule):
    """LRP-alpha-beta (seed eq. 52 with alpha = 1 + beta), bias-free unless ``include_bias=True``.

    R_i = sum_j R_j (alpha z_ij^+ / P_j - beta z_ij^- / N_j) with z_ij = w_ij x_i, P_j = sum_i z_ij^+ and
    N_j = sum_i z_ij^- (signed inputs are split as in Zennit: x^+ w^+ and x^- w^- are positive
    contributions). With ``include_bias=True`` the denominators are P_j + b_j^+ and N_j + b_j^- as in
    ``zennit.rules.AlphaBeta``. ``fallback`` (default True): the conserving treatment of empty sides
    described in the module docstring. ``AlphaBeta(1, 0)`` is the z+ rule.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, *, include_bias: bool = False,
                 fallback: bool = True):
        super().__init__()
        if not beta >= 0 or not alpha >= beta:
            raise ValueError(f"alpha and beta must satisfy alpha >= beta >= 0, got alpha={alpha!r}, "
                             f"beta={beta!r}")
        self._config = {"alpha": alpha, "beta": beta,
                        "include_bias": _check_flag("include_bias", include_bias),
                        "fallback": _check_flag("fallback", fallback)}
        # beta = 0 whatever the sums (the z+ rule): the negative sums then matter only for neurons without
        # a positive contribution, and are not computed when there is none such
        self._beta_is_zero = beta == 0

    def coefficients(self, positive, negative, output):
        """(alpha_j, beta_j) of every output neuron from the bias-free sums and the layer output."""
        return self._config["alpha"], self._config["beta"]

    def relevance_in(self, module, x, output, relevance):
        x_pos, x_neg = _split_inputs(x)
        with torch.enable_grad():
            positive = _signed_part(module, x_pos, x_neg, sign=1)
        positive_sum = positive.detach()
        smallest = torch.finfo(positive_sum.dtype).tiny / torch.finfo(positive_sum.dtype).eps
        include_bias = self._config["include_bias"]
        if self._beta_is_zero and not include_bias and bool((positive_sum > smallest).all()):
            negative, negative_sum = None, torch.zeros_like(positive_sum)
        else:
            with torch.enable_grad():
                negative = _signed_part(module, x_pos, x_neg, sign=-1)
            negative_sum = negative.detach()
        alpha, beta = self.coefficients(positive_sum, negative_sum, output)
        alpha, beta = torch.as_tensor(alpha).to(positive_sum), torch.as_tensor(beta).to(positive_sum)
        if include_bias:
            with torch.no_grad():
                bias = output - (positive_sum + negative_sum)
            positive_sum = positive_sum + bias.clamp(min=0)
            negative_sum = negative_sum + bias.clamp(max=0)
        # sums too small to divide by in this dtype (activations of a random EfficientNet-B0 shrink to
        # 1e-14 and below) count as empty: 1/sum would overflow and 0 * inf give NaN
        has_positive, has_negative = positive_sum > smallest, negative_sum < -smallest
        if self._config["fallback"]:
            kept = alpha - beta  # what eq. 52 hands on in total
            alpha = torch.where(has_negative, alpha, kept)
            beta = torch.where(has_positive, torch.where(has_negative, beta, 0.0), -kept)
        positive_grad = relevance * torch.where(has_positive, alpha / _where(has_positive, positive_sum), 0.0)
        outputs, grad_outputs = [positive], [positive_grad]
        if negative is not None:
            outputs.append(negative)
            share = torch.where(has_negative, beta / _where(has_negative, negative_sum), 0.0)
            grad_outputs.append(-relevance * share)
        result = _input_relevance(outputs, grad_outputs, x_pos, x_neg)
        if self._config["fallback"]:
            empty = ~has_positive & ~has_negative & (relevance != 0)
            if bool(empty.any()):
                result = result + _flat(module, x, torch.where(empty, relevance * kept, 0.0))
        return result


def _split_inputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x^+ and x^- as autograd leaves; x^- is None when ``x`` has no negative value (the input of a layer
    after a ReLU), so that the convolutions over it, which add exact zeros, are not run."""
    x_neg = x.clamp(max=0).requires_grad_() if bool((x < 0).any()) else None
    return x.clamp(min=0).requires_grad_(), x_neg


def _signed_part(module: nn.Module, x_pos: torch.Tensor, x_neg: torch.Tensor | None, *, sign: int):
    """Bias-free sum of the positive (``sign=1``: x^+ w^+ + x^- w^-) or the negative (``sign=-1``:
    x^+ w^- + x^- w^+) contributions; x^- None counts as zero.

    Average pooling is a linear layer with non-negative weights: its parts are pool(x^+) and pool(x^-)."""
    if isinstance(module, AvgPool):
        if sign > 0:
            return module.forward(x_pos)
        if x_neg is None:
            return torch.zeros_like(module.forward(x_pos.detach()))
        return module.forward(x_neg)
    weight = module.weight.detach()
    positive_weight, negative_weight = weight.clamp(min=0), weight.clamp(max=0)
    same, other = (positive_weight, negative_weight) if sign > 0 else (negative_weight, positive_weight)
    part = linear_part(module, x_pos, same)
    return part if x_neg is None else part + linear_part(module, x_neg, other)


def _input_relevance(outputs, grad_outputs, x_pos: torch.Tensor, x_neg: torch.Tensor | None) -> torch.Tensor:
    """sum over inputs of x^+ d<outputs, grad_outputs>/dx^+ + x^- d<...>/dx^- (x^- None: no such term)."""
    leaves = [x_pos] if x_neg is None else [x_pos, x_neg]
    grads = torch.autograd.grad([o for o in outputs if o.requires_grad],
                                leaves, grad_outputs=[g for o, g in zip(outputs, grad_outputs, strict=True)
                                                      if o.requires_grad], allow_unused=True)
    result = torch.zeros_like(x_pos.detach())
    for leaf, grad in zip(leaves, grads, strict=True):
        if grad is not None:
            result = result + leaf.detach() * grad
    return result


def _flat(module: nn.Module, x: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """``relevance`` of each output neuron spread evenly over its inputs (Zennit's flat rule; for average
    pooling: in proportion to the pooling weights): the fallback for neurons with no contribution."""
    ones = torch.ones_like(x).requires_grad_()
    with torch.enable_grad():
        if isinstance(module, AvgPool):
            counts = module.forward(ones)
        else:
            counts = linear_part(module, ones, torch.ones_like(module.weight))
    (spread,) = torch.autograd.grad(counts, ones, grad_outputs=relevance / _where(counts > 0, counts))
    return spread


def _where(mask: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``denominator`` where ``mask``, 1 elsewhere (a safe divisor; the masked-out results are discarded)."""
    return torch.where(mask, denominator, torch.ones_like(denominator))


class ZPlus(AlphaBeta):
    """The z+ rule = alpha1-beta0 (relevance to positive contributions only), bias-free by default."""

    def __init__(self, *, include_bias: bool = False, fallback: bool = True):
        super().__init__(1.0, 0.0, include_bias=include_bias, fallback=fallback)
        self._config = {"include_bias": include_bias, "fallback": fallback}

    def coefficients(self, positive, negative, output):
        return 1.0, 0.0


class AdaptiveBeta(AlphaBeta):
    """LRP-beta with one beta per output neuron from the forward pass (seed section A.2, eq. 1-2, and 52).

    ``beta_from="inputs"`` (default, eq. 2): beta_j = -N_j / (P_j + N_j) from the bias-free contributions,
    0 where P_j + N_j <= 0. ``beta_from="output"`` (the authors' public code): beta_j = -N_j / z_j with z_j
    the layer's output including its bias, 0 where z_j <= 0. Both are capped at ``beta_max``; alpha_j =
    1 + beta_j. Redistribution as ``AlphaBeta`` (bias-free unless ``include_bias``, conserving fallback
    unless ``fallback=False``). For a convolution an output neuron is one channel at one position.
    """

    def __init__(self, beta_max: float = DEFAULT_BETA_MAX, *, beta_from: str = "inputs",
                 include_bias: bool = False, fallback: bool = True):
        super().__init__(1.0, 0.0, include_bias=include_bias, fallback=fallback)
        if not beta_max >= 0:
            raise ValueError(f"beta_max must be >= 0, got {beta_max!r}")
        if beta_from not in BETA_FROM:
            raise ValueError(f"beta_from must be one of {BETA_FROM}, got {beta_from!r}")
        self._beta_is_zero = False  # beta comes from the sums
        self._config = {"beta_max": beta_max, "beta_from": beta_from, "include_bias": include_bias,
                        "fallback": fallback}

    def coefficients(self, positive, negative, output):
        if self._config["beta_from"] == "inputs":
            beta = adaptive_beta_torch(positive, negative, self._config["beta_max"])
        else:
            beta = output_beta_torch(negative, output, self._config["beta_max"])
        return 1 + beta, beta


class Gamma(_LinearLayerRule):
    """Zennit's generalised gamma rule with a bias-free redistribution unless ``include_bias=True``.

    Output neurons with z_j > 0 share relevance as x^+ (w + gamma w^+) + x^- (w + gamma w^-) over its sum,
    neurons with z_j < 0 as x^+ (w + gamma w^-) + x^- (w + gamma w^+) over its sum. Bias-free, z_j is the
    sum of the contributions (then the denominators have the sign of z_j and are at least |z_j| in size);
    with ``include_bias`` z_j is the layer output and the bias joins the sums, as in ``zennit.rules.Gamma``.
    Denominators are stabilised as in Zennit (``stabilizer``). A neuron with z_j = 0 has no side to share
    by: with ``fallback`` (default True) its relevance is spread evenly over its inputs (the flat rule, as
    for the alpha-beta family's empty neurons), else lost. Bias-free, these are mostly the neurons of a
    depthwise convolution whose whole window is zero after a ReLU6 (over half of them in EfficientNet-Lite0's
    last depthwise layer): their output is the bias alone.
    """

    def __init__(self, gamma: float = 0.25, *, stabilizer: float = 1e-6, include_bias: bool = False,
                 fallback: bool = True):
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        self._config = {"gamma": gamma, "stabilizer": stabilizer,
                        "include_bias": _check_flag("include_bias", include_bias),
                        "fallback": _check_flag("fallback", fallback)}

    def relevance_in(self, module, x, output, relevance):
        gamma = self._config["gamma"]
        weight = module.weight.detach()
        w_up = weight + gamma * weight.clamp(min=0)
        w_down = weight + gamma * weight.clamp(max=0)
        x_pos, x_neg = _split_inputs(x)
        with torch.enable_grad():
            positive, negative = linear_part(module, x_pos, w_up), linear_part(module, x_pos, w_down)
            if x_neg is not None:
                positive = positive + linear_part(module, x_neg, w_down)
                negative = negative + linear_part(module, x_neg, w_up)
        positive_den, negative_den = positive.detach(), negative.detach()
        with torch.no_grad():
            preactivation = linear_part(module, x, weight)
        if self._config["include_bias"]:
            bias = output - preactivation
            positive_den = positive_den + bias + gamma * bias.clamp(min=0)
            negative_den = negative_den + bias + gamma * bias.clamp(max=0)
            preactivation = output
        stabilize = Stabilizer.ensure(self._config["stabilizer"])
        positive_grad = relevance * (preactivation > 0) / stabilize(positive_den)
        negative_grad = relevance * (preactivation < 0) / stabilize(negative_den)
        result = _input_relevance([positive, negative], [positive_grad, negative_grad], x_pos, x_neg)
        if self._config["fallback"]:
            empty = (preactivation == 0) & (relevance != 0)
            if bool(empty.any()):
                result = result + _flat(module, x, torch.where(empty, relevance, 0.0))
        return result


class Epsilon(_LinearLayerRule):
    """LRP-epsilon, R_i = sum_j z_ij / (z_j + epsilon sign(z_j)) R_j, bias-free unless ``include_bias``.

    Bias-free, z_j = sum_i z_ij, so a layer hands on z_j / (z_j + epsilon sign(z_j)) of its relevance; with
    ``include_bias=True`` z_j is the layer output (bias included), which is ``zennit.rules.Epsilon``.
    """

    def __init__(self, epsilon: float = 1e-6, *, include_bias: bool = False):
        super().__init__()
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
        self._config = {"epsilon": epsilon, "include_bias": _check_flag("include_bias", include_bias)}

    def relevance_in(self, module, x, output, relevance):
        x = x.clone().requires_grad_()
        with torch.enable_grad():
            preactivation = linear_part(module, x, module.weight.detach())
        denominator = output if self._config["include_bias"] else preactivation.detach()
        stabilize = Stabilizer.ensure(self._config["epsilon"])
        (gradient,) = torch.autograd.grad(preactivation, x, grad_outputs=relevance / stabilize(denominator))
        return x.detach() * gradient
