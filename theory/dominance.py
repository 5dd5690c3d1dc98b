"""Positive explanation-score dominance in ReLU networks (seed section G, eq. 58-63).

For a ReLU MLP with non-positive biases, an additive explanation that gives nothing to bias terms (the
bias-free z-rule) starts at sum_i w_i phi_i = f(x) - b >= f(x) and keeps that sum at every layer down to
the input: a positive logit yields dominantly positive relevance whatever the (random) weights.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _validation as v


class LayerRelevance(NamedTuple):
    """`sums`: relevance sum per layer, shape (..., L+1): the logit's relevance f(x) - b_L first, the input
    last. `logit`: f(x) including its bias, shape (...). `target`: the explained output index, shape (...)."""

    sums: np.ndarray
    logit: np.ndarray
    target: np.ndarray


def _network(weights, biases):
    if not isinstance(weights, (list, tuple)) or not isinstance(biases, (list, tuple)):
        raise ValueError("weights and biases must be lists of arrays (one per layer)")
    if len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(f"weights and biases must be non-empty lists of equal length, got {len(weights)} "
                         f"and {len(biases)}")
    ws, bs = [], []
    for index, (w, b) in enumerate(zip(weights, biases, strict=True)):
        w = v.as_float_array(f"weights[{index}]", w)
        b = v.as_float_array(f"biases[{index}]", b)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"weights[{index}] must be (out, in) and biases[{index}] (out,), got shapes "
                             f"{w.shape} and {b.shape}")
        if ws and w.shape[1] != ws[-1].shape[0]:
            raise ValueError(f"weights[{index}] takes {w.shape[1]} inputs but layer {index - 1} has "
                             f"{ws[-1].shape[0]} outputs")
        ws.append(w)
        bs.append(b)
    return ws, bs


def _z_rule(a, w, b, relevance_out, include_bias):
    z = a @ w.T + (b if include_bias else 0.0)
    # A zero denominator only occurs for neurons that receive no relevance (off ReLUs when biases <= 0);
    # they pass nothing on.
    ratio = np.divide(relevance_out, z, out=np.zeros_like(z), where=z != 0)
    return a * (ratio @ w)


def relu_relevance_sums(weights, biases, x, *, target=None, include_bias=False):
    """Relevance sums per layer of the z-rule in the ReLU MLP x -> ReLU(W_1 x + b_1) -> ... -> W_L h + b_L.

    weights: list of (out, in) arrays; biases: list of (out,) arrays; x: (in,) or (batch, in). The explained
    logit is `target` (default: the only output, or the largest logit per sample). The relevance starts at
    f(x) - b_L (the bias gets none) and each ReLU layer is redistributed by R_i = sum_j a_i w_ji R_j / z_j,
    z_j = sum_i a_i w_ji (eq. 61-63). `include_bias=True` puts the bias into z_j (relevance leaks into the
    biases: a control). Returns LayerRelevance(sums, logit, target).
    """
    ws, bs = _network(weights, biases)
    x = v.as_float_array("x", x)
    if x.ndim not in (1, 2) or x.shape[-1] != ws[0].shape[1]:
        raise ValueError(f"x must have shape ({ws[0].shape[1]},) or (batch, {ws[0].shape[1]}), got {x.shape}")
    single = x.ndim == 1
    x = np.atleast_2d(x)

    activations = [x]
    for w, b in zip(ws[:-1], bs[:-1], strict=True):
        activations.append(np.maximum(activations[-1] @ w.T + b, 0.0))
    logits = activations[-1] @ ws[-1].T + bs[-1]

    n_out = ws[-1].shape[0]
    if target is None:
        target = np.argmax(logits, axis=1)
    else:
        target = v.integer_at_least("target", target, 0)
        v.check("target", target, target < n_out, f"an output index below {n_out}")
        target = np.broadcast_to(target, (x.shape[0],))
    rows = np.arange(x.shape[0])
    logit = logits[rows, target]

    relevance = np.zeros_like(logits)
    start = logit - (bs[-1][target] if not include_bias else 0.0)
    relevance[rows, target] = start
    sums = [relevance.sum(axis=1)]
    for w, b, a in zip(ws[::-1], bs[::-1], activations[::-1], strict=True):
        relevance = _z_rule(a, w, b, relevance, include_bias)
        sums.append(relevance.sum(axis=1))
    sums = np.stack(sums, axis=1)
    if single:
        return LayerRelevance(sums[0], logit[0], target[0])
    return LayerRelevance(sums, logit, target)
