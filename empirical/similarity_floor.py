"""Noise floor of the similarity measures: the score of a zero-covariance map with b's moments.

Closed form from :mod:`theory` (seed eq. 5, 10, 15) and drawn by shuffling b's pixels; see
:func:`noise_floor`. Importable as ``empirical.similarity.noise_floor``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch

import theory
from empirical.similarity import (
    MEASURES,
    _check_choice,
    _nan_where,
    _resolve_data_range,
    _ssim_constants,
    _validated_pair,
    _windowed_moments,
    mse,
    normalize_maps,
    spearman,
    ssim,
)

__all__ = ["NoiseFloor", "noise_floor"]


class NoiseFloor(NamedTuple):
    """Score of a zero-covariance map with matched moments, per pair (tensors of shape (N,))."""

    closed_form: torch.Tensor
    drawn: torch.Tensor


def _torch_generator(rng) -> torch.Generator:
    if isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return torch.Generator().manual_seed(int(rng))
    raise ValueError(f"rng must be a torch.Generator or an integer seed, got {rng!r}")


def _shuffled(b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each map of b with its pixels in an independent uniformly random order."""
    flat = b.flatten(1)
    keys = torch.rand(flat.shape, generator=generator, device=generator.device, dtype=torch.float64)
    order = keys.argsort(dim=1).to(b.device)
    return flat.gather(1, order).view_as(b)


def _to_numpy(*tensors):
    return [t.detach().cpu().numpy() for t in tensors]


def _closed_form_floor(a, b, measure, window, data_range, normalize):
    """Score at zero covariance from the theory module, for already normalised maps (N,)."""
    if measure in ("spearman", "spearman-abs"):
        return torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
    if measure == "mse":
        flat_a, flat_b = a.flatten(1), b.flatten(1)
        mu_a, mu_b = flat_a.mean(1), flat_b.mean(1)
        if normalize == "second-moment":
            args = _to_numpy(mu_a, mu_b, flat_a.square().mean(1), flat_b.square().mean(1))
            value = theory.normalized_mse_max(*args)
        else:
            args = _to_numpy(mu_a, mu_b, flat_a.var(1, correction=0), flat_b.var(1, correction=0))
            value = theory.mse_bound(*args)
        return torch.as_tensor(np.asarray(value), dtype=torch.float64, device=a.device)
    mu_a, mu_b, var_a, var_b, _ = _windowed_moments(a, b, window)
    c1, c2 = _to_numpy(*_ssim_constants(_resolve_data_range(a, b, data_range)))
    # rounding can leave E[x^2] - E[x]^2 a hair below zero in flat windows
    mu_a, mu_b, var_a, var_b = _to_numpy(mu_a, mu_b, var_a.clamp(min=0), var_b.clamp(min=0))
    per_window = theory.ssim_min_nonnegative_cov(
        mu_a, mu_b, var_a, var_b, c1=c1[:, None, None], c2=c2[:, None, None]
    )
    return torch.as_tensor(np.asarray(per_window), dtype=torch.float64, device=a.device).mean(dim=(1, 2))


def noise_floor(
    a,
    b,
    measure: str,
    *,
    rng,
    window: str = "uniform7",
    data_range=None,
    normalize: str | None = None,
) -> NoiseFloor:
    """Score that a map with b's moments and zero covariance with a gets, per pair (seed eq. 5, 10, 15).

    ``closed_form``: SSIM from ``theory.ssim_min_nonnegative_cov`` in every window (local moments of a
    and b, averaged like :func:`ssim`); Spearman 0; MSE ``theory.normalized_mse_max`` after
    second-moment normalisation, else ``theory.mse_bound`` (eq. 19). ``drawn``: the measure between a
    and b with its pixels shuffled (``rng``: ``torch.Generator`` or seed), which keeps b's values and
    has zero expected covariance with a; its expectation is the closed form for MSE and Spearman, while
    for SSIM shuffling also removes b's local structure, so the two can differ. ``measure`` is one of
    ``MEASURES``; the other keywords are those of the measure.
    """
    _check_choice(measure, MEASURES, "measure")
    generator = _torch_generator(rng)
    a, b = _validated_pair(a, b)
    kwargs = {"normalize": normalize}
    if measure == "ssim":
        kwargs.update(window=window, data_range=data_range)
    elif measure == "spearman-abs":
        kwargs["absolute"] = True
    score = {"ssim": ssim, "spearman": spearman, "spearman-abs": spearman, "mse": mse}[measure]
    drawn = score(a, _shuffled(b, generator), **kwargs)  # warns once if a pair is constant

    constant = torch.isnan(drawn)
    a_n, b_n = normalize_maps(a, normalize), normalize_maps(b, normalize)
    with warnings.catch_warnings():
        # constant pairs are NaN already and were reported by the drawn score
        warnings.simplefilter("ignore", RuntimeWarning)
        closed = _closed_form_floor(a_n, b_n, measure, window, data_range, normalize)
    return NoiseFloor(closed_form=_nan_where(closed, constant), drawn=drawn)
