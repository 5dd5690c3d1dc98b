"""The keyword-only ``rng`` of the empirical package's stochastic functions, as a ``torch.Generator``."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["torch_generator"]


def torch_generator(rng) -> torch.Generator:
    """``rng`` itself if it is a ``torch.Generator``, else a CPU generator seeded with the integer ``rng``."""
    if isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return torch.Generator().manual_seed(int(rng))
    raise ValueError(f"rng must be a torch.Generator or an integer seed, got {rng!r}")
