"""Batched similarity of attribution maps: SSIM, Spearman and MSE (seed A.1, Theorems 1, 3, 4).

Every function takes two stacks of maps ``a`` and ``b`` of shape (N, H, W) (a single (H, W) map is
treated as N = 1), compares pair ``i`` of ``a`` with pair ``i`` of ``b`` and returns a float64 tensor of
shape (N,) on the maps' device. ``normalize`` ("second-moment", eq. 11; "max-abs"; or None) is applied
to each map on its own before the comparison.

Undefined cases, the same for every measure:

* NaN or infinite values raise ``ValueError`` naming the argument and the maps concerned.
* A constant map (all values equal, e.g. an all-zero gradient) carries no attribution: the score of its
  pair is NaN and a :class:`ConstantMapWarning` names the pairs. Any number there would be made up by
  SSIM's stabilising constants or by the normaliser, not measured.

:func:`empirical.measures.noise_floor.noise_floor` gives, for each pair, the score of a map with b's moments
and zero covariance with a, in closed form (from :mod:`theory`) and drawn, so that a score can be compared
with what noise achieves.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

import theory

__all__ = [
    "MEASURES",
    "MPRT_NORMALIZATIONS",
    "WINDOWS",
    "ConstantMapWarning",
    "mse",
    "normalize_maps",
    "spearman",
    "ssim",
]

WINDOWS = ("uniform7", "gaussian11")
#: the normalisations of a map before it is compared (``normalize=None``: none); the randomisation table has
#: a row for each
MPRT_NORMALIZATIONS = ("second-moment", "max-abs")
#: the similarity measures; the randomisation table has a row for each
MEASURES = ("ssim", "spearman", "spearman-abs", "mse")
_NORMALIZE_CHOICES = (*MPRT_NORMALIZATIONS, None)

_GAUSSIAN_SIGMA = 1.5  # Wang et al. (2004); radius 5 = int(3.5 * sigma + 0.5) as scipy.ndimage truncates


class ConstantMapWarning(UserWarning):
    """A pair contains a constant map: its similarity is undefined and reported as NaN."""


# ----------------------------------------------------------------------------- validation helpers


def _as_map_stack(x, name: str) -> torch.Tensor:
    if isinstance(x, (str, bytes)):
        raise ValueError(f"{name} must be a tensor or array of maps (N, H, W) or (H, W), got {x!r:.80}")
    try:
        x = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{name} must be a tensor or array of maps (N, H, W) or (H, W), "
                         f"got {type(x).__name__} ({error})") from None
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W) or (H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] * x.shape[2] < 2:
        raise ValueError(
            f"{name} must hold at least one map of at least 2 pixels, got shape {tuple(x.shape)}"
        )
    return x


def _working_dtype(a: torch.Tensor, b: torch.Tensor) -> torch.dtype:
    """float64 for float64 (and integer) maps, else float32: the precision scikit-image uses for each."""
    return (
        torch.float64 if torch.float64 in (a.dtype, b.dtype) or not a.is_floating_point() else torch.float32
    )


def _checked_pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape, device and finiteness checks; the maps keep their dtype (no copy)."""
    a, b = _as_map_stack(a, "a"), _as_map_stack(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.device != b.device:
        raise ValueError(f"a and b must be on the same device, got {a.device} and {b.device}")
    for name, x in (("a", a), ("b", b)):
        # one cheap pass first; only a non-finite total (NaN, inf or overflow) needs the per-map search
        if x.is_floating_point() and not bool(torch.isfinite(x.sum())):
            bad = ~torch.isfinite(x).flatten(1).all(dim=1)
            if bool(bad.any()):
                indices = bad.nonzero().flatten().tolist()
                raise ValueError(f"{name} has NaN or infinite values in map(s) {indices[:10]}")
    return a, b


def _validated_pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _checked_pair(a, b)
    dtype = _working_dtype(a, b)
    return a.to(dtype), b.to(dtype)


def _constant_mask(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Boolean (N,) mask of the pairs where a or b is constant."""
    flat_a, flat_b = a.flatten(1), b.flatten(1)
    return (flat_a.amax(1) == flat_a.amin(1)) | (flat_b.amax(1) == flat_b.amin(1))


def _warn_constant(constant: torch.Tensor) -> None:
    if bool(constant.any()):
        indices = constant.nonzero().flatten().tolist()
        warnings.warn(
            f"pair(s) {indices[:10]}{' ...' if len(indices) > 10 else ''} contain a constant map: "
            "similarity is undefined there and reported as NaN",
            ConstantMapWarning,
            stacklevel=4,
        )


def _constant_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Boolean (N,) mask of the pairs where a or b is constant; warns once naming them."""
    constant = _constant_mask(a, b)
    _warn_constant(constant)
    return constant


def _check_choice(value, choices, name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# ----------------------------------------------------------------------------- normalisation


def normalize_maps(x: torch.Tensor, method: str | None) -> torch.Tensor:
    """Scale each map of a (N, H, W) stack on its own: "second-moment" divides by sqrt(mean(x^2))
    (eq. 11), "max-abs" by max|x|, None leaves it. All-zero maps are left at zero (callers report
    them as constant)."""
    _check_choice(method, _NORMALIZE_CHOICES, "normalize")
    if method is None:
        return x
    flat = x.flatten(1)
    scale = flat.square().mean(1).sqrt() if method == "second-moment" else flat.abs().amax(1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return x / scale.view(-1, 1, 1)


def _prepared(a, b, normalize):
    a, b = _validated_pair(a, b)
    _check_choice(normalize, _NORMALIZE_CHOICES, "normalize")
    constant = _constant_pairs(a, b)
    return normalize_maps(a, normalize), normalize_maps(b, normalize), constant


def _nan_where(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, torch.full_like(values, float("nan")), values)


# A CPU chunk of about 2 MB keeps every temporary in cache and out of fresh (page-faulting) memory,
# which on CPU costs more than the arithmetic; on a GPU one launch over the whole batch is fastest.
_CPU_CHUNK_BYTES = 2**21


def _pairwise(a, b, normalize, score, *, absolute: bool = False, raw: bool = False) -> torch.Tensor:
    """Validate, then run ``score(a, b) -> (n,)`` on normalised chunks of pairs; constant pairs -> NaN.
    ``raw=True`` hands ``score`` the maps as given (own dtype, not normalised): for ranks."""
    _check_choice(normalize, _NORMALIZE_CHOICES, "normalize")
    a, b = _checked_pair(a, b)
    dtype = _working_dtype(a, b)
    n = a.shape[0]
    step = n if a.device.type != "cpu" else max(1, _CPU_CHUNK_BYTES // (5 * a[0].numel() * dtype.itemsize))
    values, constants = [], []
    for start in range(0, n, step):
        chunk_a, chunk_b = a[start : start + step], b[start : start + step]
        if raw:
            normalize = None
        else:
            chunk_a, chunk_b = chunk_a.to(dtype), chunk_b.to(dtype)
        if absolute:
            chunk_a, chunk_b = chunk_a.abs(), chunk_b.abs()
        constant = _constant_mask(chunk_a, chunk_b)
        value = score(normalize_maps(chunk_a, normalize), normalize_maps(chunk_b, normalize))
        values.append(_nan_where(value.to(torch.float64), constant))
        constants.append(constant)
    _warn_constant(torch.cat(constants))
    return torch.cat(values)


# ----------------------------------------------------------------------------- SSIM


def _window_kernel(window: str) -> tuple[list[float], bool]:
    """1-D separable weights of the window and whether sample (n - 1) covariance is used."""
    _check_choice(window, WINDOWS, "window")
    if window == "uniform7":
        return [1.0 / 7.0] * 7, True
    weights = np.exp(-0.5 * (np.arange(-5, 6) / _GAUSSIAN_SIGMA) ** 2)
    return list(weights / weights.sum()), False


def _filter_valid(x: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """Separable filter of the last two dims of (C, H, W), "valid" positions only."""
    size = len(weights)
    if x.device.type != "cpu":
        kernel = torch.tensor(weights, dtype=x.dtype, device=x.device)
        flat = x.reshape(-1, 1, *x.shape[-2:])
        out = F.conv2d(F.conv2d(flat, kernel.view(1, 1, size, 1)), kernel.view(1, 1, 1, size))
        return out.reshape(*x.shape[:-2], *out.shape[-2:])
    # on CPU, shifted in-place sums beat torch's single-channel convolution by an order of magnitude
    height = x.shape[-2] - size + 1
    rows = x[..., :height, :] * weights[0]
    for offset in range(1, size):
        rows.add_(x[..., offset : offset + height, :], alpha=weights[offset])
    width = x.shape[-1] - size + 1
    out = rows[..., :width] * weights[0]
    for offset in range(1, size):
        out.add_(rows[..., offset : offset + width], alpha=weights[offset])
    return out


def _windowed_moments(a: torch.Tensor, b: torch.Tensor, window: str):
    """Local means, variances and covariance of every full window ("valid" positions only).

    scikit-image filters with reflected borders and then crops (win_size - 1) // 2 pixels on every
    side before averaging; the windows left after that crop are exactly the ones that lie inside the
    map, so a valid convolution gives the same numbers without computing the border."""
    weights, sample_covariance = _window_kernel(window)
    size = len(weights)
    height, width = a.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"maps must be at least {size}x{size} for window={window!r}, got {height}x{width}")
    filtered = _filter_valid(torch.stack([a, b, a * a, b * b, a * b], dim=1), weights)
    mu_a, mu_b, m_aa, m_bb, m_ab = filtered.unbind(1)
    correction = size * size / (size * size - 1) if sample_covariance else 1.0
    var_a = correction * (m_aa - mu_a * mu_a)
    var_b = correction * (m_bb - mu_b * mu_b)
    cov_ab = correction * (m_ab - mu_a * mu_b)
    return mu_a, mu_b, var_a, var_b, cov_ab


def _given_data_range(data_range, n: int, device) -> torch.Tensor | None:
    """(N,) float64 tensor of a given data range, validated; None stays None."""
    if data_range is None:
        return None
    if isinstance(data_range, (str, bytes)):
        raise ValueError(f"data_range must be a number or None, got {data_range!r:.80}")
    try:
        value = torch.as_tensor(data_range, dtype=torch.float64, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"data_range must be a number or None, got {data_range!r:.80}") from None
    if value.ndim > 1 or (value.ndim == 1 and value.numel() not in (1, n)):
        raise ValueError(f"data_range must be a number or have shape ({n},), got shape {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
        raise ValueError(f"data_range must be finite and positive, got {data_range!r}")
    return value.reshape(-1).expand(n).clone()


def _resolve_data_range(a: torch.Tensor, b: torch.Tensor, data_range) -> torch.Tensor:
    """(N,) data range: given, or max - min over both (normalised) maps of each pair."""
    if data_range is None:
        high = torch.maximum(a.flatten(1).amax(1), b.flatten(1).amax(1))
        low = torch.minimum(a.flatten(1).amin(1), b.flatten(1).amin(1))
        return (high - low).to(torch.float64)
    return _given_data_range(data_range, a.shape[0], a.device)


def _ssim_constants(data_range: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    safe = torch.where(data_range > 0, data_range, torch.ones_like(data_range))  # constant pairs -> NaN later
    c1, c2 = theory.ssim_constants(safe.cpu().numpy())
    as_tensor = lambda c: torch.as_tensor(np.asarray(c), dtype=torch.float64, device=data_range.device)  # noqa: E731
    return as_tensor(c1), as_tensor(c2)


def _ssim_of_chunk(a: torch.Tensor, b: torch.Tensor, window: str, data_range: torch.Tensor) -> torch.Tensor:
    mu_a, mu_b, var_a, var_b, cov_ab = _windowed_moments(a, b, window)
    c1, c2 = (c.to(a.dtype).view(-1, 1, 1) for c in _ssim_constants(data_range))
    numerator = (2 * mu_a * mu_b + c1).mul_(2 * cov_ab + c2)
    denominator = (mu_a.square_() + mu_b.square_() + c1).mul_(var_a.add_(var_b).add_(c2))
    return numerator.div_(denominator).mean(dim=(1, 2), dtype=torch.float64)


def ssim(a, b, window: str = "uniform7", data_range=None, *, normalize: str | None = None) -> torch.Tensor:
    """Mean structural similarity of each pair (Wang et al. 2004; seed Theorem 1), shape (N,).

    ``window="uniform7"``: 7x7 mean with sample (n-1) covariance; ``"gaussian11"``: 11x11 Gaussian,
    sigma 1.5, population covariance. K1 = 0.01, K2 = 0.03 (``theory.ssim_constants``). Only windows
    that lie fully inside the map are averaged, which equals scikit-image's crop of (win - 1) // 2
    border pixels. ``data_range=None`` means, per pair, max - min over both maps after normalisation.
    float64 maps are compared in float64, others in float32 (as scikit-image does).
    """
    _window_kernel(window)
    n = _as_map_stack(a, "a").shape[0]
    given = _given_data_range(data_range, n, torch.as_tensor(a).device)
    done = [0]

    def score(chunk_a, chunk_b):
        start, done[0] = done[0], done[0] + chunk_a.shape[0]
        chunk_range = _resolve_data_range(chunk_a, chunk_b, None) if given is None else given[start : done[0]]
        return _ssim_of_chunk(chunk_a, chunk_b, window, chunk_range)

    return _pairwise(a, b, normalize, score)


# ----------------------------------------------------------------------------- Spearman and MSE


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..L along dim 1, ties given the mean of the ranks they span (float64)."""
    if x.device.type == "cpu":  # numpy's introsort is several times faster than torch's CPU sort
        order = torch.from_numpy(np.argsort(x.detach().numpy(), axis=1))
        values = x.gather(1, order)
    else:
        values, order = torch.sort(x, dim=1)
    length = x.shape[1]
    position = torch.arange(1, length + 1, device=x.device, dtype=torch.float64).expand(order.shape)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    if bool(starts.all()):  # no ties: the sorted position is the rank
        return torch.empty_like(position).scatter_(1, order, position)
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    # first and last sorted position of the tie group that each sorted element belongs to
    first = torch.where(starts, position, 0).cummax(dim=1).values
    last = torch.where(ends, position, length + 1).flip(1).cummin(dim=1).values.flip(1)
    return torch.empty_like(position).scatter_(1, order, (first + last) / 2)


def _spearman_of_chunk(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    centre = (a[0].numel() + 1) / 2  # average ranks always sum to L (L + 1) / 2
    rank_a = _average_ranks(a.flatten(1)).sub_(centre)
    rank_b = _average_ranks(b.flatten(1)).sub_(centre)
    denominator = (rank_a.square().sum(1) * rank_b.square().sum(1)).sqrt()
    denominator = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return (rank_a * rank_b).sum(1) / denominator


def spearman(a, b, absolute: bool = False, *, normalize: str | None = None) -> torch.Tensor:
    """Spearman rank correlation of each pair over all pixels (seed Theorem 3), shape (N,).

    ``absolute=True`` ranks |a| and |b| (the ``spearman-abs`` measure). Ties get average ranks, as
    ``scipy.stats.spearmanr``. The maps are ranked as given, each in its own dtype: normalisation by a
    positive scale does not change ranks in exact arithmetic, but a rounded (float32) division can turn
    distinct values into ties, so ``normalize`` is validated and then not applied (it is accepted so that
    every measure takes the same arguments)."""
    if not isinstance(absolute, (bool, np.bool_)):
        raise ValueError(f"absolute must be True or False, got {absolute!r}")
    return _pairwise(a, b, normalize, _spearman_of_chunk, absolute=bool(absolute), raw=True)


def mse(a, b, *, normalize: str | None = None) -> torch.Tensor:
    """Mean squared difference of each pair (seed Theorem 4; with ``normalize="second-moment"`` the
    normalised MSE of eq. 12, between 0 and 4), shape (N,)."""
    return _pairwise(a, b, normalize, lambda x, y: (x - y).square_().mean(dim=(1, 2), dtype=torch.float64))
