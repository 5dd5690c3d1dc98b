"""Normalisations of attribution maps before comparing them (seed eq. 11 and section D.1).

The seed's eq. 11 prints h^2 inside the sum; it means A^2: the map is divided by the square root of its
mean second moment, so that the mean squared distance from "no contribution" (0) is 1.
"""

from __future__ import annotations

import numpy as np

from . import _validation as v

NORMALIZATIONS = ("second-moment", "max-abs", "std", "percentile")


def _divide(name: str, a: np.ndarray, scale: np.ndarray, what: str, zero_means: str) -> np.ndarray:
    # A zero scale leaves the normalisation undefined (division by 0): say so, and why it is 0.
    if not (scale > 0).all():
        raise ValueError(f"{name}: {what} is 0 ({zero_means}); cannot normalise it")
    with np.errstate(over="ignore"):
        out = a / scale
    # A positive scale far below max|a| (a subnormal one) can still overflow the quotient: refuse it too.
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: {what} is so small against max|a| that a / ({what}) overflows; "
                         "cannot normalise it")
    return out


def _map(a, axis):
    arr = v.as_float_array("a", a)
    if arr.size == 0:
        raise ValueError(f"a must not be empty, got shape {arr.shape}")
    return arr, v.axis_argument("axis", axis, arr.ndim)


def normalize_second_moment(a, axis=None):
    """A / sqrt(mean(A^2)) over `axis` (None: the whole array) (seed eq. 11, typo h^2 read as A^2)."""
    arr, axis = _map(a, axis)
    scale = np.sqrt(np.mean(arr**2, axis=axis, keepdims=True))
    return _divide("normalize_second_moment", arr, scale, "the second moment of a", "an all-zero map")


def normalize_max_abs(a, axis=None):
    """A / max|A| over `axis`: the normalisation of Adebayo et al. and Quantus (seed section D.1)."""
    arr, axis = _map(a, axis)
    scale = np.max(np.abs(arr), axis=axis, keepdims=True)
    return _divide("normalize_max_abs", arr, scale, "max|a|", "an all-zero map")


def normalize_std(a, axis=None):
    """A / std(A) over `axis`, without centring (seed section D, footnote: (E[A^2] - E[A]^2)^(-1/2))."""
    arr, axis = _map(a, axis)
    scale = np.std(arr, axis=axis, keepdims=True)
    return _divide("normalize_std", arr, scale, "the standard deviation of a", "a constant map")


def normalize_percentile(a, q=99.0, axis=None):
    """A divided by the q-th percentile of |A| over `axis`: a robust stand-in for max-abs (section D.1).

    The percentile is numpy's default (linear interpolation between order statistics). It is 0, and the
    normalisation undefined, for an all-zero map and for a sparse one: with L values, |A| has a q-th
    percentile of 0 once fewer than about (1 - q/100) L of them are non-zero (one non-zero pixel among
    more than 100 for q = 99). Such maps raise ValueError rather than being scaled by another rule
    (max-abs is q = 100, or `normalize_max_abs`).
    """
    arr, axis = _map(a, axis)
    q = v.as_float_array("q", q)
    if q.ndim:
        raise ValueError(f"q must be one percentile (a number), got shape {q.shape}")
    q = float(q)
    if not 0 < q <= 100:
        raise ValueError(f"q must be a percentile in (0, 100], got {q!r}")
    scale = np.percentile(np.abs(arr), q, axis=axis, keepdims=True)
    return _divide("normalize_percentile", arr, scale, f"the {q}th percentile of |a|",
                   f"an all-zero map, or a sparse one with too few non-zero values for the {q}th percentile")


def normalize(a, method, axis=None):
    """Normalise `a` by name: one of NORMALIZATIONS (seed eq. 11 and section D.1)."""
    method = v.option("method", method, NORMALIZATIONS)
    return {
        "second-moment": normalize_second_moment,
        "max-abs": normalize_max_abs,
        "std": normalize_std,
        "percentile": normalize_percentile,
    }[method](a, axis=axis)
