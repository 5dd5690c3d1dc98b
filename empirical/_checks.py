"""Argument checks shared by the empirical package's public functions."""

from __future__ import annotations

import numpy as np

#: the largest run seed: experiments derive per-chunk torch seeds from it (e.g. seed * 1_000_003 + image),
#: which must stay inside torch's 64-bit seed range
MAX_SEED = 2**32 - 1


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is a positive integer (numpy ones too); else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
