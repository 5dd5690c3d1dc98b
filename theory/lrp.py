"""LRP-beta for one neuron (seed section F.3, eq. 52) and the adaptive beta (section A.2, eq. 1-2)."""

from __future__ import annotations

import numpy as np

from . import _validation as v


def adaptive_beta(positive_sum, negative_sum, beta_max=3.0):
    """Adaptive beta of one neuron from its input statistics (seed eq. 1-2), capped at `beta_max`.

    Solving beta/(1+beta) = -N/P gives beta = -N/(P+N), with P = sum_i (w_i x_i)^+ >= 0 and
    N = sum_i (w_i x_i)^- <= 0 (bias excluded); returns min(beta, beta_max). Where P + N <= 0 the formula
    has no meaning (beta would be negative or infinite): such a neuron is off after its ReLU and passes
    no relevance, so beta = 0 there, as the authors' public implementation does. beta_max >= 0 (inf: no cap).
    """
    p = v.nonnegative("positive_sum", positive_sum)
    n = v.as_float_array("negative_sum", negative_sum)
    v.check("negative_sum", n, n <= 0, "non-positive")
    beta_max = v.nonnegative("beta_max", beta_max, allow_inf=True)
    p, n, beta_max = v.broadcast(positive_sum=p, negative_sum=n, beta_max=beta_max)
    total = p + n
    on = total > 0
    beta = np.where(on, -n / np.where(on, total, 1.0), 0.0)
    return v.scalar_or_array(np.minimum(beta, beta_max))


def _lrp_beta(contributions, relevance, beta):
    pos = np.maximum(contributions, 0.0)
    neg = np.minimum(contributions, 0.0)
    pos_sum = pos.sum(axis=-1, keepdims=True)
    neg_sum = neg.sum(axis=-1, keepdims=True)
    # A part with an empty sum (no positive, or no negative, contributions) receives nothing.
    pos_share = np.divide(pos, pos_sum, out=np.zeros_like(pos), where=pos_sum > 0)
    neg_share = np.divide(neg, neg_sum, out=np.zeros_like(neg), where=neg_sum < 0)
    return relevance * ((1 + beta) * pos_share - beta * neg_share)


def lrp_beta_neuron(contributions, relevance, beta):
    """LRP-beta (alpha = 1 + beta) for one neuron (seed eq. 52).

    R_i = R ((1 + beta) c_i^+ / sum_k c_k^+ - beta c_i^- / sum_k c_k^-) with contributions c_i = w_i x_i
    along the last axis; `relevance` R and `beta` >= 0 broadcast against the leading axes. A part whose sum
    is zero passes no relevance (otherwise sum_i R_i = R). Returns the input relevances, shape of the
    broadcast contributions.
    """
    c = v.as_float_array("contributions", contributions)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"contributions must have a last axis holding the inputs (at least one), got {c!r}")
    r = v.as_float_array("relevance", relevance)[..., None]
    b = v.nonnegative("beta", beta)[..., None]
    c, r, b = v.broadcast(contributions=c, relevance=r, beta=b)
    return _lrp_beta(c, r, b)
