"""Argument checks of the simulations' configurations: value first, then the name an error message uses."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def as_generator(rng) -> np.random.Generator:
    """A numpy Generator from a Generator, a seed or a SeedSequence (no global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("rng must be a numpy Generator or an integer seed, got None")
    return np.random.default_rng(rng)


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is a positive integer (numpy ones too); else a ValueError naming it.

    The signature of ``empirical._checks.positive_int``: value first, then its name."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(values: Sequence, name: str) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
            raise ValueError(f"{name} must hold positive integers, got {v!r} in {values!r}")
    return tuple(int(v) for v in values)


def positive_floats(values: Sequence, name: str) -> tuple[float, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if not isinstance(v, int | float | np.number) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must hold positive finite numbers, got {v!r} in {values!r}")
    return tuple(float(v) for v in values)


def probabilities(values: Sequence, name: str, *, closed: bool = False) -> tuple[float, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        ok = isinstance(v, int | float | np.number) and math.isfinite(v)
        ok = ok and ((0 <= v <= 1) if closed else (0 < v < 1))
        if not ok:
            interval = "[0, 1]" if closed else "(0, 1)"
            raise ValueError(f"{name} must hold numbers in {interval}, got {v!r} in {values!r}")
    return tuple(float(v) for v in values)


def confidence_level(level) -> float:
    if not isinstance(level, int | float) or not 0.5 <= level < 1:
        raise ValueError(f"level must be a confidence level in [0.5, 1), got {level!r}")
    return float(level)
