"""Overtaking of large activations by many small ones under random weights (seed Theorem 2, sections E, I).

Randomising a layer draws iid zero-mean normal weights; the question is how likely the contribution of a
set of small activations X_S overtakes that of a set of large ones X_L. The weighted sums are zero-mean
normals, so their ratio is Cauchy (eq. 22) and every probability here is a Cauchy tail (eq. 23).
"""

from __future__ import annotations

import numpy as np

from . import _validation as v

QUANTILE_LEVELS = tuple(round(0.05 * k, 2) for k in range(19, 1, -1))  # 0.95, 0.90, ..., 0.10
HIGH_QUANTILES = (0.95, 0.90, 0.85)
LOW_QUANTILES = tuple(round(0.05 * k, 2) for k in range(10, 1, -1))  # 0.50, 0.45, ..., 0.10


def _tail(k, gamma):
    # 1/2 - atan(k/gamma)/pi written as atan2(gamma, k)/pi: exact for k = +-inf and no cancellation for
    # large k, where the printed form subtracts two nearly equal numbers.
    return np.arctan2(gamma, k) / np.pi


def cauchy_ratio_density(z, gamma):
    """Density 1 / (pi gamma (1 + z^2/gamma^2)) of the ratio w_s/w_l of two zero-mean normals (seed eq. 22).

    gamma = sigma_s / sigma_l > 0; z may be infinite (density 0). Broadcasts.
    """
    z = v.as_float_array("z", z, allow_inf=True)
    gamma = v.positive("gamma", gamma)
    z, gamma = v.broadcast(z=z, gamma=gamma)
    with np.errstate(over="ignore"):
        return v.scalar_or_array(1 / (np.pi * gamma * (1 + (z / gamma) ** 2)))


def cauchy_tail(k, gamma):
    """Tail P(Z >= k) = 1/2 - atan(k/gamma)/pi of a Cauchy(0, gamma) ratio (seed eq. 23).

    k may be +-inf (tail 0 or 1); gamma > 0. Broadcasts.
    """
    k = v.as_float_array("k", k, allow_inf=True)
    gamma = v.positive("gamma", gamma)
    k, gamma = v.broadcast(k=k, gamma=gamma)
    return v.scalar_or_array(_tail(k, gamma))


def _activation_sets(x_small, x_large):
    xs = v.as_float_array("x_small", x_small)
    xl = v.as_float_array("x_large", x_large)
    if xs.ndim == 0 or xs.shape[-1] == 0:
        raise ValueError(f"x_small must hold a non-empty set along its last axis, got shape {xs.shape}")
    if xl.ndim == 0 or xl.shape[-1] == 0:
        raise ValueError(f"x_large must hold a non-empty set along its last axis, got shape {xl.shape}")
    return xs, xl


def overtake_gamma(x_small, x_large, *, average=False):
    """Cauchy parameter gamma_1 = sqrt(sum x_s^2 / sum x_l^2) of the ratio of the weighted sums (eq. 28).

    Sets lie along the last axis (their lengths may differ; leading axes broadcast). `average=True`
    compares mean contributions instead (eq. 37-40): gamma_1 times |X_L| / |X_S|.
    """
    xs, xl = _activation_sets(x_small, x_large)
    sum_s, sum_l = np.sum(xs**2, axis=-1), np.sum(xl**2, axis=-1)
    v.check("x_large", sum_l, sum_l > 0, "non-zero somewhere along the last axis (sum of squares > 0)")
    sum_s, sum_l = v.broadcast(x_small=sum_s, x_large=sum_l)
    gamma = np.sqrt(sum_s / sum_l)
    if average:
        gamma = gamma * (xl.shape[-1] / xs.shape[-1])
    return v.scalar_or_array(gamma)


def overtake_probability(x_small, x_large, *, average=False):
    """Exact probability that the small set overtakes the large one under iid N(0, s^2) weights (eq. 27-28).

    P(sum w_s x_s >= sum w_l x_l | sum w_l x_l > 0) = P(Z >= 1) = 1/2 - atan(1/gamma_1)/pi with
    gamma_1 = `overtake_gamma`. `average=True`: the same for mean contributions (eq. 37-41). Sets lie along
    the last axis; the result has the broadcast leading shape. 0 when x_small is all zero.
    """
    gamma = np.asarray(overtake_gamma(x_small, x_large, average=average))
    return v.scalar_or_array(_tail(1.0, gamma))


def _bound(k, n_small, n_large, *, average):
    k = v.nonnegative("k", k, allow_inf=True)
    n_small, n_large = v.positive("n_small", n_small), v.positive("n_large", n_large)
    k, n_small, n_large = v.broadcast(k=k, n_small=n_small, n_large=n_large)
    gamma = np.sqrt(n_large / n_small) if average else np.sqrt(n_small / n_large)
    return v.scalar_or_array(_tail(k, gamma))


def overtake_bound(k, n_small, n_large):
    """Upper bound P(Z >= K) with gamma_2 = sqrt(|X_S| / |X_L|) on the overtaking probability (eq. 29-36).

    Holds whenever min(X_L) >= K max(X_S) for non-negative activations. k >= 0 (inf gives 0); the set
    sizes must be positive (fractions such as q_l and 1 - q_h are allowed). Broadcasts.
    """
    return _bound(k, n_small, n_large, average=False)


def overtake_bound_average(k, n_small, n_large):
    """The bound for mean contributions: P(Z >= K) with gamma_2,avg = sqrt(|X_L| / |X_S|) (eq. 37-41)."""
    return _bound(k, n_small, n_large, average=True)


def _check_quantile_shapes(**arrays: np.ndarray) -> None:
    """The two refusals of `overtake_from_quantiles`' broadcasting rule (see its docstring)."""
    for level, value in (("q_low", "v_low"), ("q_high", "v_high")):
        a, b = arrays[level], arrays[value]
        if a.ndim and b.ndim and a.shape != b.shape:
            raise ValueError(f"{value} must have the shape of {level} (one value per level) or be a scalar, "
                             f"got {value} with shape {b.shape} and {level} with shape {a.shape}")
    lengths = {name: a.shape[0] for name, a in arrays.items() if a.ndim == 1}
    if len(set(lengths.values())) > 1:
        shapes = ", ".join(f"{name} with length {n}" for name, n in lengths.items())
        raise ValueError(f"1-d arguments must have one length (a length-1 list is not stretched; use a "
                         f"scalar, or shapes (m, 1) and (1, k) for a grid), got {shapes}")


def overtake_from_quantiles(q_low, v_low, q_high, v_high):
    """K, gamma and P_gamma(Z >= K) from a layer's activation quantiles (seed section I).

    K = V(q_high) / V(q_low), gamma = sqrt(q_low / (1 - q_high)), P = `cauchy_tail(K, gamma)`. V(q_low) == 0
    (sparse ReLU layers): K = inf, P = 0. Negative statistics (V(q_high) <= 0, e.g. swish): the large set is
    the negative one, K = V(q_low) / V(q_high) (inf where V(q_high) == 0), bound `overtake_bound(K, 1 -
    q_high, q_low)`. Domain: the one-sign bound (eq. 29-36) needs min(X_L) >= K max(X_S), so K is defined
    only where V(q_low) and V(q_high) do not have opposite signs; where V(q_low) < 0 < V(q_high), K and P
    are NaN (undefined, not a number to average; `k_defined` marks the domain). Requires q_low < q_high and
    v_low <= v_high. Returns (K, gamma, P), broadcast.

    Broadcasting: scalars apply to every entry, arrays follow numpy, with two refusals that catch a
    forgotten entry: `v_low` must have the shape of `q_low` and `v_high` that of `q_high` (unless one of
    the pair is a scalar), and 1-d arguments must have one length. A grid is asked for explicitly, e.g.
    q_high of shape (3, 1) against q_low of shape (1, 9).
    """
    q_low, q_high = v.probability("q_low", q_low), v.probability("q_high", q_high)
    v_low, v_high = v.as_float_array("v_low", v_low), v.as_float_array("v_high", v_high)
    _check_quantile_shapes(q_low=q_low, v_low=v_low, q_high=q_high, v_high=v_high)
    q_low, v_low, q_high, v_high = v.broadcast(q_low=q_low, v_low=v_low, q_high=q_high, v_high=v_high)
    v.check("q_low", q_low, q_low < q_high, "below q_high")
    v.check("v_low", v_low, v_low <= v_high, "at most v_high (quantiles are non-decreasing)")

    positive = v_low >= 0
    negative = ~positive & (v_high <= 0)
    numerator = np.where(positive, v_high, -v_low)
    denominator = np.where(positive, v_low, -v_high)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.inf)
    # opposite signs (neither case above): outside the seed's one-sign domain, K undefined
    k = np.where(positive | negative, k, np.nan)
    gamma = np.sqrt(q_low / (1 - q_high))
    return v.scalar_or_array(k), v.scalar_or_array(gamma), v.scalar_or_array(_tail(k, gamma))


def k_defined(v_low, v_high):
    """Whether section I's K is defined for these quantiles: True unless they have opposite signs
    (v_low < 0 < v_high), where the one-sign bound of eq. 29-36 does not apply. Broadcasts."""
    v_low, v_high = v.as_float_array("v_low", v_low), v.as_float_array("v_high", v_high)
    v_low, v_high = v.broadcast(v_low=v_low, v_high=v_high)
    return v.scalar_or_array(~((v_low < 0) & (v_high > 0)))
