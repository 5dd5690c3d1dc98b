"""Where LRP-epsilon's relevance goes: the input, the biases, and what epsilon absorbs (supplement eq. 52,
section G).

The epsilon rule with the bias in the denominator, R_i = z_ij / (z_j + epsilon sign(z_j)) R_j with z_j =
sum_i z_ij + b_j, hands each bias b_j the share b_j / (z_j + epsilon sign(z_j)) R_j and keeps back
epsilon sign(z_j) / (z_j + epsilon sign(z_j)) R_j. What it conserves is therefore input + biases +
absorbed = explained logit, layer by layer; on the input alone it promises nothing, and after batch-norm
merging every convolution has a bias. The bias-free epsilon rule would conserve on the input, but its
denominators are sums of as few as nine contributions (3x3 depthwise convolutions) with no bias to keep
them away from zero, and the maps grow without bound over a deep network.

``relevance_budget`` runs ``lrp-epsilon`` with a rule that equals Zennit's ``Epsilon`` and also books
each layer's bias share and absorbed share, and returns the budget per image.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from zennit.composites import LayerMapComposite
from zennit.core import Hook, Stabilizer

from empirical.attribution import _as_target, _check_inputs, _modified_gradient
from empirical.attribution.composites import DEFAULT_EPSILON, epsilon_layer_map, supported_canonizers
from empirical.attribution.lrp_rules import Epsilon, linear_part
from empirical.storage.tables import RELEVANCE_BUDGET_COLUMNS

__all__ = ["relevance_budget"]


class _BookedEpsilon(Epsilon):
    """``Epsilon(include_bias=True)`` (Zennit's epsilon rule) that adds each layer's bias share and absorbed
    share, per image, to ``ledger["biases"]`` and ``ledger["absorbed"]``."""

    def __init__(self, epsilon: float = 1e-6, *, ledger: dict):
        super().__init__(epsilon, include_bias=True)
        self._config["ledger"] = ledger

    def copy(self):
        return type(self)(self._config["epsilon"], ledger=self._config["ledger"])

    def relevance_in(self, module, x, output, relevance):
        with torch.no_grad():
            bias = output - linear_part(module, x, module.weight.detach())
            per_unit = relevance / Stabilizer.ensure(self._config["epsilon"])(output)
            ledger = self._config["ledger"]
            ledger["biases"] = ledger["biases"] + (per_unit * bias).flatten(1).sum(1)
            ledger["absorbed"] = ledger["absorbed"] + (relevance - per_unit * output).flatten(1).sum(1)
        return super().relevance_in(module, x, output, relevance)


class _BookedThreshold(Hook):
    """DenseNet's threshold ReLU, gradient unchanged, booking the relevance of units held at their threshold
    (a constant output, like a bias) to ``ledger["thresholds"]``."""

    def __init__(self, ledger: dict):
        super().__init__()
        self.ledger = ledger

    def backward(self, module, grad_input, grad_output):
        dropped = (grad_output[0] - grad_input[0]).flatten(1).sum(1)
        self.ledger["thresholds"] = self.ledger["thresholds"] + dropped.detach()

    def copy(self):
        return type(self)(self.ledger)


def relevance_budget(model: nn.Module, x: torch.Tensor, target=None, *,
                     epsilon: float = DEFAULT_EPSILON) -> pd.DataFrame:
    """LRP-epsilon's relevance budget for ``target`` (LongTensor (N,), an int, or None: each image's top
    class), one row per image, every share over the explained logit: ``input`` (sum R, what
    ``attribute(..., "lrp-epsilon")`` gives), ``biases``, ``thresholds`` (DenseNet-121's units held at their
    threshold), ``absorbed`` (epsilon's terms), ``conserved`` = input + biases + thresholds, and
    ``accounted`` = conserved + absorbed (1 up to the stabiliser of sums and pooling, else relevance
    leaks). Columns ``RELEVANCE_BUDGET_COLUMNS``; ``model`` must be in eval mode and is left as it was."""
    _check_inputs(model, x)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    if target is None:
        with torch.no_grad():
            target = model(x).argmax(1)
    target = _as_target(target, x)
    zeros = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    ledger = {"biases": zeros, "thresholds": zeros, "absorbed": zeros}
    layer_map = epsilon_layer_map(_BookedEpsilon(epsilon, ledger=ledger),
                                  threshold_rule=_BookedThreshold(ledger))
    composite = LayerMapComposite(layer_map=layer_map, canonizers=supported_canonizers(model))
    relevance, selected = _modified_gradient(model, x, target, composite, scale_by_logit=True,
                                             with_logit=True)
    logit = selected[:, 0]
    shares = {"input": relevance.flatten(1).sum(1) / logit,
              **{key: ledger[key] / logit for key in ("biases", "thresholds", "absorbed")}}
    frame = pd.DataFrame({"image": range(len(x)), "logit": logit.cpu().numpy(),
                          **{key: value.cpu().numpy() for key, value in shares.items()}})
    frame["conserved"] = frame["input"] + frame["biases"] + frame["thresholds"]
    frame["accounted"] = frame["conserved"] + frame["absorbed"]
    return frame[list(RELEVANCE_BUDGET_COLUMNS)]
