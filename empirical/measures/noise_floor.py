"""Noise floor of the similarity measures: the score of a zero-covariance map with b's moments.

Closed form from :mod:`theory` (seed eq. 5, 10, 15) and drawn by shuffling b's pixels; see
:func:`noise_floor`. Built on :mod:`empirical.measures.similarity`, whose package-private helpers it
shares so that a floor is validated, normalised and windowed exactly as the score it is compared with; the
similarity module does not import this one (no cycle).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch

import theory
from empirical.measures.similarity import (
    MEASURES,
    _check_choice,
    _nan_where,
    _prepared,
    _resolve_data_range,
    _ssim_constants,
    _validated_pair,
    _windowed_moments,
    mse,
    spearman,
    ssim,
)
from empirical.rng import torch_generator

__all__ = ["NoiseFloor", "closed_form_floor", "noise_floor"]


class NoiseFloor(NamedTuple):
    """Score of a zero-covariance map with matched moments, per pair (tensors of shape (N,))."""

    closed_form: torch.Tensor
    drawn: torch.Tensor


def _shuffled(b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each map of b with its pixels in an independent uniformly random order."""
    flat = b.flatten(1)
    keys = torch.rand(flat.shape, generator=generator, device=generator.device, dtype=torch.float64)
    order = keys.argsort(dim=1).to(b.device)
    return flat.gather(1, order).view_as(b)


def _to_numpy(*tensors):
    return [t.detach().cpu().numpy() for t in tensors]


def _closed_form(a, b, measure, window, data_range, normalize):
    """Score at zero covariance for already normalised, non-constant maps (N,), on their device."""
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
    c1, c2 = (c.view(-1, 1, 1) for c in _ssim_constants(_resolve_data_range(a, b, data_range)))
    # theory.ssim_min_nonnegative_cov (eq. 5) per window, written in torch so that a GPU run never leaves
    # the device (one host round trip per step cost more than the step's attribution pass); a test holds
    # the two equal. Rounding can leave E[x^2] - E[x]^2 a hair below zero in flat windows.
    luminance = (2 * mu_a * mu_b + c1).abs() / (mu_a.square() + mu_b.square() + c1)
    contrast_structure = c2 / (var_a.clamp(min=0) + var_b.clamp(min=0) + c2)
    return (luminance * contrast_structure).mean(dim=(1, 2), dtype=torch.float64)


def closed_form_floor(
    a, b, measure: str, *, window: str = "uniform7", data_range=None, normalize: str | None = None
) -> torch.Tensor:
    """Closed-form noise floor alone (seed eq. 5, 10, 15), (N,) float64 on the maps' device.

    SSIM: ``theory.ssim_min_nonnegative_cov`` in every window, averaged like :func:`ssim`; Spearman 0;
    MSE ``theory.normalized_mse_max`` after second-moment normalisation, else ``theory.mse_bound`` (eq. 19).
    Pairs with a constant map have no floor: NaN, with the same warning as the measures give.
    """
    _check_choice(measure, MEASURES, "measure")
    a, b, constant = _prepared(a, b, normalize)
    if bool(constant.any()):
        # a stand-in pair keeps theory's domain checks quiet; those rows become NaN below
        stand_in = torch.linspace(-1.0, 1.0, a[0].numel(), dtype=a.dtype, device=a.device).view_as(a[0])
        a = torch.where(constant.view(-1, 1, 1), stand_in, a)
        b = torch.where(constant.view(-1, 1, 1), stand_in.flip(-1), b)
    return _nan_where(_closed_form(a, b, measure, window, data_range, normalize), constant)


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
    generator = torch_generator(rng)
    a, b = _validated_pair(a, b)
    kwargs = {"normalize": normalize}
    if measure == "ssim":
        kwargs.update(window=window, data_range=data_range)
    elif measure == "spearman-abs":
        kwargs["absolute"] = True
    score = {"ssim": ssim, "spearman": spearman, "spearman-abs": spearman, "mse": mse}[measure]
    drawn = score(a, _shuffled(b, generator), **kwargs)  # warns once if a pair is constant

    with warnings.catch_warnings():
        # constant pairs were reported once already, by the drawn score
        warnings.simplefilter("ignore")
        closed = closed_form_floor(a, b, measure, window=window, data_range=data_range, normalize=normalize)
    return NoiseFloor(closed_form=closed, drawn=drawn)
