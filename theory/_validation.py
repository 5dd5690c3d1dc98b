"""Shared argument checks for the closed forms.

Every public function in `theory` validates its inputs here and raises a `ValueError` that names the
argument and the offending value, instead of letting NaN or a broadcasting error surface from numpy.
"""

from __future__ import annotations

import numbers

import numpy as np


def _describe(name: str, arr: np.ndarray, bad: np.ndarray, requirement: str) -> str:
    """Message naming the argument, the requirement and the first offending value (with its index)."""
    index = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    value = arr[index] if arr.ndim else arr[()]
    where = f" at index {index}" if arr.ndim else ""
    return f"{name} must be {requirement}, got {value!r}{where}"


def as_float_array(name: str, value, *, allow_inf: bool = False) -> np.ndarray:
    """`value` as a float ndarray; rejects non-numeric input, NaN, and infinities unless `allow_inf`."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be numeric, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    nan = np.isnan(arr)
    if nan.any():
        raise ValueError(_describe(name, arr, nan, "a number, not NaN"))
    if not allow_inf:
        inf = np.isinf(arr)
        if inf.any():
            raise ValueError(_describe(name, arr, inf, "finite"))
    return arr


def check(name: str, arr: np.ndarray, ok: np.ndarray, requirement: str) -> np.ndarray:
    """Raise unless `ok` holds everywhere; returns `arr` for chaining."""
    ok = np.asarray(ok, dtype=bool)
    if not ok.all():
        arr_b, ok_b = np.broadcast_arrays(arr, ok)
        raise ValueError(_describe(name, arr_b, ~ok_b, requirement))
    return arr


def nonnegative(name: str, value, *, allow_inf: bool = False) -> np.ndarray:
    arr = as_float_array(name, value, allow_inf=allow_inf)
    return check(name, arr, arr >= 0, "non-negative")


def positive(name: str, value, *, allow_inf: bool = False) -> np.ndarray:
    arr = as_float_array(name, value, allow_inf=allow_inf)
    return check(name, arr, arr > 0, "positive")


def probability(name: str, value) -> np.ndarray:
    """A probability strictly inside (0, 1)."""
    arr = as_float_array(name, value)
    return check(name, arr, (arr > 0) & (arr < 1), "a probability strictly between 0 and 1")


def integer_at_least(name: str, value, minimum: int) -> np.ndarray:
    """Integer-valued array (floats like 3.0 accepted) with every entry >= `minimum`, as int64."""
    arr = as_float_array(name, value)
    check(name, arr, arr == np.round(arr), "integer-valued")
    check(name, arr, arr >= minimum, f"an integer >= {minimum}")
    check(name, arr, arr < 2**62, "an integer below 2**62")
    return arr.astype(np.int64)


def sample_size(name: str, value) -> np.ndarray:
    """A number of draws: integer-valued and >= 1 (3.0 accepted), kept as float so that a huge n (the
    asymptotic regime) is not limited to int64."""
    arr = as_float_array(name, value)
    check(name, arr, arr == np.round(arr), "an integer sample size (integer-valued)")
    return check(name, arr, arr >= 1, "a sample size of at least 1")


def covariance(name: str, value, var_a: np.ndarray, var_b: np.ndarray) -> np.ndarray:
    """A covariance with |cov| <= sqrt(var_a var_b) (Cauchy-Schwarz), with a relative slack of 1e-9 so that
    cov = sqrt(var_a var_b) computed in floating point is accepted."""
    cov = as_float_array(name, value)
    # sqrt(var_a var_b) rounds the product first, which near the subnormal range can exceed the product of
    # the roots by far more than 1e-9 (var_b = 5e-324: 15%); accept either way of computing it
    with np.errstate(under="ignore"):
        bound = np.maximum(np.sqrt(var_a) * np.sqrt(var_b), np.sqrt(var_a * var_b))
    return check(name, cov, np.abs(cov) <= bound * (1 + 1e-9) + 1e-300,
                 "at most sqrt(var_a * var_b) in absolute value (Cauchy-Schwarz)")


def broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast named arrays against each other; a mismatch names every argument and its shape."""
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} with shape {np.shape(v)}" for k, v in arrays.items())
        raise ValueError(f"arguments do not broadcast: {shapes}") from None


def scalar_or_array(arr: np.ndarray):
    """0-d results come back as numpy scalars (as scipy.stats does), others as arrays."""
    arr = np.asarray(arr)
    return arr[()] if arr.ndim == 0 else arr


def option(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def axis_argument(name: str, axis, ndim: int):
    """Validate an `axis` argument (None, int or tuple of ints) against an array's dimensionality."""
    if axis is None:
        return None
    axes = axis if isinstance(axis, tuple) else (axis,)
    for ax in axes:
        if not isinstance(ax, numbers.Integral) or isinstance(ax, bool) or not -ndim <= ax < ndim:
            raise ValueError(
                f"{name} must be None, an int or a tuple of ints in [{-ndim}, {ndim}), got {axis!r}")
    return axis
