"""LRP rules that Zennit 0.5.1 lacks: the forward-pass adaptive beta rule (seed section A.2, eq. 1-2).

The rule is a Zennit ``BasicHook``: four modified forward passes (positive and negative parts of inputs
and weights, as in ``zennit.rules.AlphaBeta``) redistribute the relevance of each output neuron with
alpha = 1 + beta, beta = beta_j of that neuron (eq. 52). For a convolution an output neuron is one
channel at one position, so beta has the shape of the layer's output.
"""

from __future__ import annotations

import torch
from zennit.core import BasicHook, ParamMod, Stabilizer
from zennit.rules import ClampMod, zero_bias

DEFAULT_BETA_MAX = 3.0


def adaptive_beta_torch(positive_sum: torch.Tensor, negative_sum: torch.Tensor,
                        beta_max: float = DEFAULT_BETA_MAX) -> torch.Tensor:
    """Torch twin of ``theory.adaptive_beta`` (eq. 1-2): -N/(P+N) capped at ``beta_max``, 0 where P+N <= 0.

    Elementwise on tensors of any shape and device; tested against the numpy original.
    """
    total = positive_sum + negative_sum
    on = total > 0
    beta = -negative_sum / torch.where(on, total, torch.ones_like(total))
    return torch.where(on, beta, torch.zeros_like(beta)).clamp(max=beta_max)


def positive_negative_sums(module: torch.nn.Module, x: torch.Tensor,
                           output: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bias-free sums P_j = sum_i (w_ji x_i)^+ and N_j = sum_i (w_ji x_i)^- per output neuron of ``module``.

    Uses P + N = z_j (the output without bias) and P - N = sum_i |w_ji| |x_i|: one extra pass of the layer
    with absolute weights, for inspecting betas outside LRP (the rule itself reuses its own passes).
    ``output``: the layer's own output, if already computed.
    """
    with torch.no_grad():
        if output is None:
            with _bias_free(lambda param, name: param)(module) as bare:
                signed = bare.forward(x)
        else:
            signed = output - _bias_view(module, output)
        with _bias_free(lambda param, name: param.abs())(module) as mod:
            absolute = mod.forward(x.abs())
    return (signed + absolute) / 2, (signed - absolute) / 2


def _bias_free(modifier) -> ParamMod:
    return ParamMod(modifier, zero_params=["bias"], require_params=False)


def _bias_view(module: torch.nn.Module, output: torch.Tensor) -> torch.Tensor | float:
    bias = getattr(module, "bias", None)
    if bias is None:
        return 0.0
    # channels sit on axis 1 for convolutions and on the last axis for linear layers
    if isinstance(module, torch.nn.Linear):
        return bias
    return bias.view(1, -1, *([1] * (output.ndim - 2)))


class AdaptiveBeta(BasicHook):
    """LRP-beta with one beta per output neuron from the forward pass (seed eq. 1-2 and 52).

    beta_j = min(-N_j/(P_j+N_j), beta_max) from the bias-free positive and negative input contributions
    (``theory.adaptive_beta``); relevance R_j is spread as (1+beta_j) z_ij^+/z_j^+ - beta_j z_ij^-/z_j^-.
    Like ``zennit.rules.AlphaBeta``, a positive bias joins the positive and a negative bias the negative
    denominator (``zero_params=["bias"]`` drops it). ``fixed_beta`` replaces the adaptive beta by a
    constant, which makes the rule equal to ``AlphaBeta(1 + fixed_beta, fixed_beta)``.
    """

    def __init__(self, beta_max: float = DEFAULT_BETA_MAX, stabilizer=1e-6, zero_params=None,
                 fixed_beta: float | None = None):
        if not beta_max >= 0:
            raise ValueError(f"beta_max must be >= 0, got {beta_max!r}")
        if fixed_beta is not None and not fixed_beta >= 0:
            raise ValueError(f"fixed_beta must be >= 0 or None, got {fixed_beta!r}")
        self._config = {"beta_max": beta_max, "stabilizer": stabilizer, "zero_params": zero_params,
                        "fixed_beta": fixed_beta}
        stabilize = Stabilizer.ensure(stabilizer)

        def map_gradient(relevance, outputs):
            positive_total, negative_total = outputs[0] + outputs[1], outputs[2] + outputs[3]
            beta = self._beta(positive_total.detach(), negative_total.detach())
            positive = relevance * (1 + beta) / stabilize(positive_total)
            negative = relevance * beta / stabilize(negative_total)
            return [positive, positive, negative, negative]

        def reduce(inputs, gradients):
            return (inputs[0] * gradients[0] + inputs[1] * gradients[1]
                    - inputs[2] * gradients[2] - inputs[3] * gradients[3])

        with_bias = {"zero_params": zero_params}
        without_bias = {"zero_params": zero_bias(zero_params)}
        super().__init__(
            input_modifiers=[lambda t: t.clamp(min=0), lambda t: t.clamp(max=0)] * 2,
            # positive part: x+ w+ (+ b+) and x- w-; negative part: x+ w- (+ b-) and x- w+
            param_modifiers=[ClampMod(min=0.0, **with_bias), ClampMod(max=0.0, **without_bias),
                             ClampMod(max=0.0, **with_bias), ClampMod(min=0.0, **without_bias)],
            output_modifiers=[lambda t: t] * 4,
            gradient_mapper=map_gradient,
            reducer=reduce,
        )

    def forward(self, module, input, output):
        """Store the input, and the bias that the positive and negative passes add, for ``_beta``."""
        super().forward(module, input, output)
        zero_params = self._config["zero_params"] or ()
        counted = "bias" not in ([zero_params] if isinstance(zero_params, str) else zero_params)
        self.stored_tensors["bias"] = _bias_view(module, output) if counted else 0.0

    def _beta(self, positive_total: torch.Tensor, negative_total: torch.Tensor) -> torch.Tensor | float:
        """Per-neuron beta from the passes the rule makes anyway: P + b^+ and N + b^- less the bias."""
        fixed = self._config["fixed_beta"]
        if fixed is not None:
            return float(fixed)
        bias = self.stored_tensors["bias"]
        if isinstance(bias, torch.Tensor):
            positive_total = positive_total - bias.clamp(min=0)
            negative_total = negative_total - bias.clamp(max=0)
        return adaptive_beta_torch(positive_total, negative_total, self._config["beta_max"])

    def copy(self):
        return type(self)(**self._config)
