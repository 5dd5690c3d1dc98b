"""Argument checks shared by the empirical package's public functions."""

from __future__ import annotations

import numpy as np
import torch

#: the largest run seed: experiments derive per-chunk torch seeds from it (e.g. seed * 1_000_003 + image),
#: which must stay inside torch's 64-bit seed range
MAX_SEED = 2**32 - 1


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is a positive integer (numpy ones too); else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def device(value, name: str = "device") -> str:
    """``value`` ("cpu", "cuda", "cuda:<index>" or a torch.device) as text, checked against this machine:
    a ValueError naming it for any other text, a malformed index, or CUDA that is not there."""
    text = str(value) if isinstance(value, (str, torch.device)) else None
    if text is None or (text != "cpu" and not text.startswith("cuda")):
        raise ValueError(f"{name} must be 'cpu' or 'cuda[:index]', got {value!r}")
    try:
        parsed = torch.device(text)  # rejects malformed indices such as "cuda:x"
    except RuntimeError:
        raise ValueError(f"{name} must be 'cpu' or 'cuda[:index]', got {value!r}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {value!r} requested but CUDA is not available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {value!r} requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return text


def nonfinite_rows(tensor: torch.Tensor) -> list[int]:
    """Indices along axis 0 of the rows of ``tensor`` holding a NaN or an infinity (empty when none).

    One reduction decides the common case: a NaN or an infinity makes the sum non-finite, so a finite sum
    proves every value finite; only a non-finite sum (an overflow of finite values included) pays for the
    elementwise check."""
    if not tensor.is_floating_point() or bool(torch.isfinite(tensor.sum())):
        return []
    return (~torch.isfinite(tensor)).reshape(tensor.shape[0], -1).any(1).nonzero().flatten().tolist()
