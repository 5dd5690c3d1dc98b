"""Single-neuron attributions and the positive monotonicity property (seed section F, eq. 42-57).

A neuron z = g(sum_k w_k x_k + b) with inputs that connect only to it. Positive monotonicity:
w_i x_i >= w_j x_j > 0 implies |R_i| >= |R_j|. It holds for gradient x input (F.1), exact Shapley values
with a non-decreasing g (F.2) and LRP-beta (F.3); the plain gradient g'(z) w_i does not have it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from . import _validation as v
from .lrp import _lrp_beta

ACTIVATIONS = ("relu", "identity", "softplus", "sigmoid")
MAX_SHAPLEY_INPUTS = 20  # 2^20 coalitions per neuron is the most exact enumeration is asked to do


def _activation(name, z):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "identity":
        return z
    if name == "softplus":
        return np.logaddexp(0.0, z)
    return expit(z)


def _derivative(name, z):
    if name == "relu":
        return (z > 0).astype(float)  # g'(0) = 0, as autograd frameworks define it
    if name == "identity":
        return np.ones_like(z)
    if name == "softplus":
        return expit(z)
    s = expit(z)
    return s * (1 - s)


def _neuron(w, x, b, activation):
    activation = v.option("activation", activation, ACTIVATIONS)
    w, x = v.as_float_array("w", w), v.as_float_array("x", x)
    b = v.as_float_array("b", b)
    if w.ndim == 0 and x.ndim == 0:
        raise ValueError(f"w and x must have a last axis holding the inputs, got w={w!r}, x={x!r}")
    w, x = v.broadcast(w=w, x=x)
    b = v.broadcast(b=b[..., None], inputs=w[..., :1])[0][..., 0]
    return w, x, b, activation


def gradient_neuron(w, x, b=0.0, activation="relu"):
    """Plain gradient dz/dx_i = g'(sum_k w_k x_k + b) w_i (inputs on the last axis; g'(0) = 0 for ReLU).

    The control of seed section F: it lacks the factor x_i of eq. 43 and is NOT positively monotone.
    """
    w, x, b, activation = _neuron(w, x, b, activation)
    z = np.sum(w * x, axis=-1) + b
    return _derivative(activation, z)[..., None] * w


def gradient_x_input_neuron(w, x, b=0.0, activation="relu"):
    """Gradient x input R_i = g'(sum_k w_k x_k + b) w_i x_i (seed eq. 43; dz/df = 1)."""
    w, x, b, activation = _neuron(w, x, b, activation)
    z = np.sum(w * x, axis=-1) + b
    return _derivative(activation, z)[..., None] * w * x


def _coalition_sums(c: np.ndarray) -> np.ndarray:
    """sum_{k in S} c_k for all 2^d subsets S, index m holding S = {k : bit k of m set}; (..., 2^d).

    Built by doubling (subsets without input k, then with it), so no (2^d, d) membership matrix is stored.
    """
    sums = np.zeros(c.shape[:-1] + (1,))
    for k in range(c.shape[-1]):
        sums = np.concatenate([sums, sums + c[..., k : k + 1]], axis=-1)
    return sums


def shapley_neuron(w, x, b=0.0, activation="relu"):
    """Exact Shapley values of f(S) = g(sum_{k in S} w_k x_k + b), absent inputs set to 0 (eq. 47-51).

    phi_i = sum over S not containing i of |S|! (d-|S|-1)! / d! (f(S + i) - f(S)), by enumeration of all
    2^d subsets (d <= 20 inputs, on the last axis). Sums to f(all) - f(empty).
    """
    w, x, b, activation = _neuron(w, x, b, activation)
    d = w.shape[-1]
    if d > MAX_SHAPLEY_INPUTS:
        raise ValueError(
            f"w and x must have at most {MAX_SHAPLEY_INPUTS} inputs for exact Shapley values, got {d}"
        )
    values = _activation(activation, _coalition_sums(w * x) + b[..., None])  # (..., 2^d)
    weights = _coalition_weights(d)
    phi = np.empty(w.shape)
    lead = values.shape[:-1]
    for i in range(d):
        # View index m as (high bits, bit i, low bits): the marginal f(S + i) - f(S) is a difference of two
        # slices. Differences, not a signed weighted sum of f, keep phi exact where f hardly changes.
        split = values.reshape(lead + (2 ** (d - 1 - i), 2, 2**i))
        marginal = (split[..., 1, :] - split[..., 0, :]).reshape(lead + (-1,))
        phi[..., i] = marginal @ weights.reshape(2 ** (d - 1 - i), 2, 2**i)[:, 0, :].ravel()
    return phi


def _coalition_weights(d: int) -> np.ndarray:
    """|S|! (d - |S| - 1)! / d! for every subset index m (0 for the full set, which has no marginal)."""
    sizes = np.zeros(1, dtype=np.int64)
    for _ in range(d):
        sizes = np.concatenate([sizes, sizes + 1])
    by_size = [math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)]
    return np.array(by_size + [0.0])[sizes]


def lrp_beta_single_neuron(w, x, relevance, beta):
    """LRP-beta (eq. 52) on the contributions w_i x_i of one neuron; see `theory.lrp_beta_neuron`."""
    w, x = v.as_float_array("w", w), v.as_float_array("x", x)
    w, x = v.broadcast(w=w, x=x)
    if w.ndim == 0:
        raise ValueError(f"w and x must have a last axis holding the inputs, got w={w!r}, x={x!r}")
    r = v.as_float_array("relevance", relevance)[..., None]
    b = v.nonnegative("beta", beta)[..., None]
    c, r, b = v.broadcast(contributions=w * x, relevance=r, beta=b)
    return _lrp_beta(c, r, b)


def is_positively_monotone(contributions, attributions, *, rtol=1e-9, atol=0.0):
    """Seed section F's predicate: for all i, j with c_i >= c_j > 0, |R_i| >= |R_j| (inputs on the last axis).

    Rounding of size atol + rtol * max|R| is forgiven (ties c_i == c_j computed along different paths).
    Returns a bool per neuron (the broadcast leading shape).
    """
    c = v.as_float_array("contributions", contributions)
    r = v.as_float_array("attributions", attributions)
    rtol = float(v.nonnegative("rtol", rtol))
    atol = float(v.nonnegative("atol", atol))
    if c.ndim == 0 or r.ndim == 0:
        raise ValueError("contributions and attributions must have a last axis holding the inputs")
    c, r = v.broadcast(contributions=c, attributions=r)
    mag = np.abs(r)
    slack = atol + rtol * np.max(mag, axis=-1, keepdims=True)[..., None]
    ci, cj = c[..., :, None], c[..., None, :]
    applies = (ci >= cj) & (cj > 0)
    holds = mag[..., :, None] >= mag[..., None, :] - slack
    return v.scalar_or_array(np.all(~applies | holds, axis=(-2, -1)))
