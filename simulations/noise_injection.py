"""Monte Carlo of theory.noise_injection: what added noise of level s does to SSIM, Spearman and the MSE.

On an H x W torus a clean map A = mean + std F is either a smooth stationary Gaussian field (white noise
blurred by a Gaussian of width ``smoothing``, as in simulations.similarity_processes) or i.i.d. normal
pixels; a clean "randomised-model" map is B = mean + std (rho F + sqrt(1 - rho^2) F'). The noisy variant
of a map adds s * RMS(map) * Z per pixel with Z i.i.d. standard normal, exactly as
``empirical.experiments.noisy`` does, at each level s; A and B get independent noises. Two comparisons:

- ``self``: A + noise against A itself (theory's case (a)),
- ``pair``: A + noise against B + noise' (case (b), what MPRT computes for a noisy explanation).

For each: SSIM over 7x7 uniform windows with sample covariance (scikit-image's default, whose local
variance of i.i.d. noise is unbiased) evaluated at the mean local moments (``ssim-at-mean-local-moments``,
the quantity Theorem 1's formula describes) and the practitioner's mean of per-window SSIMs
(``ssim-mean-of-windows``: a mean of ratios, biased below the formula when windows are noisy, so its
verdict is reported, not expected to agree); Spearman over all pixels against the Gaussian-copula value
at n pixels; the second-moment-normalised MSE. Verdicts use the normal interval at ``level`` from the
standard error (delta method for the SSIM at mean moments), as every simulation here does.

The Gaussian-copula Spearman value (``spearman``) treats pixels as independent pairs. It is exact for the
i.i.d. field; for a smooth field plus i.i.d. noise (``self``) the noise reshuffles the ranks of
neighbouring pixels, whose clean values are close, more than independent pixels would allow, so the
measured coefficient sits slightly below it (about 0.002-0.008 at 48 x 48, smoothing 2) and can fail its
verdict. ``spearman-spatial`` is the same estimate against theory.spearman_expected_stationary, which
keeps the fields' pixel correlations: exact for Gaussian fields with noise of one variance s^2 E[A^2]
(``--noise-scale expected``). With the default ``map-rms`` scale (what empirical.experiments.noisy does) a
smooth map's RMS varies from map to map (its mean does), the coefficient is convex in the noise level,
and the mean sits above the spatial value by about one percent at s = 2 (Jensen): a second-order effect
of the per-map scale, not of the theorems. Maps up to 8192 pixels.

Draws run in blocks; each block returns only sums (of values, squares and moment cross-products), so the
memory does not grow with ``--draws``.

    python -m simulations.noise_injection [--draws N] [--seed S] [--out DIR] [--plot] [--quick]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

import theory
from simulations import _blocks, _checks, cli, results, verdicts
from simulations import similarity_processes as sp
from theory import cli_options

NAME = "noise_injection"
WINDOW = "7x7-uniform"
FIELDS = ("smooth", "iid")
COMPARISONS = ("self", "pair")
#: "map-rms": s * RMS of each map, as empirical.experiments.noisy; "expected": s * E[A^2]^(1/2), the same for
#: every map, the noise theory.noise_injection describes exactly
NOISE_SCALES = ("map-rms", "expected")
SCALARS = ("ssim-mean-of-windows", "spearman", "spearman-spatial", "normalized-mse")
#: largest map for which the spatial Spearman value (n^2 terms) is computed; larger maps get NaN there
SPATIAL_MAX_PIXELS = 8192


@dataclass(frozen=True)
class Config:
    """draws: map pairs per (field, level); levels: noise levels s; correlation: rho of the clean pair;
    noise_scale: ``NOISE_SCALES``."""

    draws: int = 200
    height: int = 48
    width: int = 48
    smoothing: float = 2.0
    mean: float = 0.5
    std: float = 1.0
    correlation: float = 0.6
    levels: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    fields: tuple[str, ...] = FIELDS
    noise_scale: str = "map-rms"
    data_range: float = 8.0
    level: float = 0.999

    def __post_init__(self):
        _checks.positive_int(self.draws, "draws")
        if self.draws < 10:
            raise ValueError(f"draws must be at least 10 map pairs, got {self.draws}")
        for name in ("height", "width"):
            if _checks.positive_int(getattr(self, name), name) < 16:
                raise ValueError(f"{name} must be at least 16 pixels, got {getattr(self, name)}")
        for name in ("smoothing", "std", "data_range"):
            _checks.positive_floats((getattr(self, name),), name)
        if not math.isfinite(self.mean):
            raise ValueError(f"mean must be a finite number, got {self.mean!r}")
        if not 0 <= self.correlation < 1:
            raise ValueError(f"correlation must lie in [0, 1), got {self.correlation!r}")
        levels = tuple(float(s) for s in self.levels)
        if not levels or not all(math.isfinite(s) and s >= 0 for s in levels):
            raise ValueError(f"levels must be non-negative finite noise levels, got {self.levels!r}")
        object.__setattr__(self, "levels", levels)
        fields = tuple(self.fields)
        if not fields or any(f not in FIELDS for f in fields):
            raise ValueError(f"fields must be a non-empty subset of {FIELDS}, got {self.fields!r}")
        if self.noise_scale not in NOISE_SCALES:
            raise ValueError(f"noise_scale must be one of {NOISE_SCALES}, got {self.noise_scale!r}")
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=60, height=32, width=32)


def _field_config(config: Config) -> sp.Config:
    return sp.Config(height=config.height, width=config.width, smoothing=config.smoothing, mean=1.0,
                     std=config.std, data_range=config.data_range)


def _clean_fields(gen, size, config: Config, kernel_f):
    shape = (size, 2, config.height, config.width)
    if kernel_f is None:
        return gen.standard_normal(shape)
    return np.fft.irfft2(np.fft.rfft2(gen.standard_normal(shape)) * kernel_f, s=shape[-2:])


def add_noise(maps: np.ndarray, s: float, gen: np.random.Generator, *,
              rms: float | None = None) -> np.ndarray:
    """maps + s * RMS(map) * Z per map of a (N, H, W) stack, Z i.i.d. standard normal (the noisy variant);
    with ``rms`` given, that one scale for every map instead."""
    if rms is None:
        rms = np.sqrt(np.mean(maps**2, axis=(-2, -1), keepdims=True))
    return maps + s * rms * gen.standard_normal(maps.shape)


def _normalized_mse(a, b):
    second_a, second_b = np.mean(a * a, axis=(1, 2)), np.mean(b * b, axis=(1, 2))
    return 2 - 2 * np.mean(a * b, axis=(1, 2)) / np.sqrt(second_a * second_b)


def _block(size, gen, config: Config, s, kernel_f, window_f, factor, c1, c2):
    """Sums over the block's maps: per comparison, each scalar's sum and sum of squares, and the five mean
    window moments' sum and sum of outer products (for the delta method)."""
    fields = _clean_fields(gen, size, config, kernel_f)
    rho = config.correlation
    a = config.mean + config.std * fields[:, 0]
    b = config.mean + config.std * (rho * fields[:, 0] + math.sqrt(1 - rho**2) * fields[:, 1])
    rms = math.sqrt(config.mean**2 + config.std**2) if config.noise_scale == "expected" else None
    noisy_a, noisy_b = add_noise(a, s, gen, rms=rms), add_noise(b, s, gen, rms=rms)
    sums = {}
    for comparison, (x, y) in {"self": (noisy_a, a), "pair": (noisy_a, noisy_b)}.items():
        ssim, moments = sp.windowed_ssim(x, y, window_f, factor, c1, c2)
        rank = sp.spearman(x, y)
        values = {"ssim-mean-of-windows": ssim, "spearman": rank, "spearman-spatial": rank,
                  "normalized-mse": _normalized_mse(x, y)}
        for name, value in values.items():
            sums[(comparison, name)] = np.array([value.size, value.sum(), np.sum(value**2)])
        sums[(comparison, "moments")] = (size, moments.sum(axis=0), moments.T @ moments)
    return sums


def _ssim_of_moments(m, c1, c2):
    mu_a, mu_b, var_a, var_b, cov = m
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def _delta_method(n, total, outer, statistic):
    """statistic(mean moments) and its delta-method standard error from sums of moments and outer products."""
    mean = total / n
    covariance = (outer - n * np.outer(mean, mean)) / (n - 1)
    gradient = np.empty_like(mean)
    for k in range(mean.size):
        step = 1e-6 * max(1.0, abs(mean[k]))
        up, down = mean.copy(), mean.copy()
        up[k] += step
        down[k] -= step
        gradient[k] = (statistic(up) - statistic(down)) / (2 * step)
    return float(statistic(mean)), math.sqrt(max(0.0, gradient @ covariance @ gradient / n))


def predictions(config: Config, field: str, s: float, c1: float, c2: float) -> dict:
    """Closed forms of theory.noise_injection for one field and level: {(comparison, quantity): value}."""
    mu, var, rho = config.mean, config.std**2, config.correlation
    m2 = mu**2 + var
    local = sp.expected_local_variance(_field_config(config), WINDOW) if field == "smooth" else var
    n = config.height * config.width
    ssim_self = theory.ssim_noisy_self(mu, local, s, c1=c1, c2=c2, second_moment=m2)
    ssim_pair = theory.ssim_noisy_pair(mu, mu, local, local, rho * local, s, c1=c1, c2=c2,
                                       second_moment_a=m2, second_moment_b=m2)
    return {
        ("self", "ssim-at-mean-local-moments"): ssim_self, ("self", "ssim-mean-of-windows"): ssim_self,
        ("self", "spearman"): theory.spearman_noisy_self(mu, var, s, n),
        ("self", "normalized-mse"): theory.normalized_mse_noisy_self(s),
        ("pair", "ssim-at-mean-local-moments"): ssim_pair, ("pair", "ssim-mean-of-windows"): ssim_pair,
        ("pair", "spearman"): theory.spearman_noisy_pair(mu, mu, var, var, rho * var, s, n),
        ("pair", "normalized-mse"): theory.normalized_mse_noisy_pair(mu, mu, var, var, rho * var, s),
        **_spatial_spearman(config, field, s),
    }


def _pixel_correlation(config: Config, field: str) -> np.ndarray:
    """Correlation of the clean field at every torus offset (offset 0 first)."""
    if field == "iid":
        delta = np.zeros((config.height, config.width))
        delta[0, 0] = 1.0
        return delta
    g = np.fft.rfft2(sp.field_kernel(_field_config(config)))
    return np.fft.irfft2(np.abs(g) ** 2, s=(config.height, config.width))


def _spatial_spearman(config: Config, field: str, s: float) -> dict:
    """theory.spearman_expected_stationary for both comparisons (noise of variance s^2 E[A^2] per pixel)."""
    if config.height * config.width > SPATIAL_MAX_PIXELS:
        return {("self", "spearman-spatial"): np.nan, ("pair", "spearman-spatial"): np.nan}
    var = config.std**2
    clean = var * _pixel_correlation(config, field)
    noise = np.zeros_like(clean)
    noise[0, 0] = s**2 * (config.mean**2 + var)
    return {
        ("self", "spearman-spatial"): theory.spearman_expected_stationary(clean, clean + noise, clean),
        ("pair", "spearman-spatial"): theory.spearman_expected_stationary(
            clean + noise, clean + noise, config.correlation * clean),
    }


def _rows(config, field, s, sums, expected, c1, c2) -> list[dict]:
    rows = []
    for comparison in COMPARISONS:
        settings = {"field": field, "comparison": comparison, "s": s, "height": config.height,
                    "width": config.width, "window": WINDOW}
        n, total, outer = sums[(comparison, "moments")]
        estimate, se = _delta_method(n, total, outer, lambda m: _ssim_of_moments(m, c1, c2))
        quantity = "ssim-at-mean-local-moments"
        rows.append(verdicts.row(settings, quantity, estimate=estimate, se=se,
                          theory=expected[(comparison, quantity)], level=config.level, atol=1e-9))
        for quantity in SCALARS:
            count, total, squares = sums[(comparison, quantity)]
            mean = total / count
            se = math.sqrt(max(0.0, (squares - count * mean**2) / (count - 1)) / count)
            rows.append(verdicts.row(settings, quantity, estimate=mean, se=se,
                              theory=expected[(comparison, quantity)], level=config.level, atol=1e-9))
    return rows


def _add_sums(blocks):
    joined = {}
    for key in blocks[0]:
        parts = [block[key] for block in blocks]
        if key[1] == "moments":
            joined[key] = (sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))
        else:
            joined[key] = np.sum(parts, axis=0)
    return joined


def run(config: Config, *, rng) -> pd.DataFrame:
    """One row per (field, level, comparison, quantity): estimate, se, closed form, verdict."""
    rng = _checks.as_generator(rng)
    c1, c2 = theory.ssim_constants(config.data_range)
    kernel, factor = sp.window_kernel(_field_config(config), WINDOW)
    window_f = np.fft.rfft2(kernel)
    settings = [(field, s) for field in config.fields for s in config.levels]
    rows = []
    with _blocks.progress_bar(NAME) as bar:
        for (field, s), gen in zip(settings, rng.spawn(len(settings)), strict=True):
            kernel_f = np.fft.rfft2(sp.field_kernel(_field_config(config))) if field == "smooth" else None
            blocks = _blocks.map_blocks(
                lambda size, g, s=s, kernel_f=kernel_f: _block(size, g, config, s, kernel_f, window_f, factor,
                                                               c1, c2),
                config.draws, gen, bytes_per_draw=8 * config.height * config.width * 40, progress=bar)
            rows += _rows(config, field, s, _add_sums(blocks), predictions(config, field, s, c1, c2), c1, c2)
    return results.finish_table(rows)


def plot(table: pd.DataFrame, path) -> None:
    """Score against s per quantity (columns) and comparison (rows): Monte Carlo points, theory lines."""
    plt = cli.pyplot()
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    quantities = ["ssim-at-mean-local-moments", "spearman", "normalized-mse"]
    fig, axes = plt.subplots(len(COMPARISONS), len(quantities), figsize=(4.2 * len(quantities), 7))
    for i, comparison in enumerate(COMPARISONS):
        for j, quantity in enumerate(quantities):
            ax = axes[i, j]
            for k, field in enumerate(sorted(table["field"].unique())):
                part = table[(table["comparison"] == comparison) & (table["quantity"] == quantity)
                             & (table["field"] == field)]
                ax.plot(part["s"], part["theory"], color=f"C{k}", label=f"{field} theory")
                ax.errorbar(part["s"], part["estimate"], yerr=part["ci_high"] - part["estimate"], fmt="o",
                            color=f"C{k}", label=f"{field} Monte Carlo")
            ax.set_title(f"{comparison}: {quantity}", fontsize=10)
            ax.set_xlabel("noise level s")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Independent noise moves every MPRT score towards 'randomised'", y=1.01)
    cli.save_figure(fig, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config)
    parser.add_argument("--size", type=cli_options.positive_int, nargs=2, default=None, metavar=("H", "W"),
                        help=cli.config_help("map size", Config, "height", "width"))
    parser.add_argument("--levels", type=float, nargs="+", default=None, metavar="S",
                        help=cli.config_help("noise levels s", Config, "levels"))
    parser.add_argument("--noise-scale", choices=NOISE_SCALES, default=None,
                        help=cli.config_help("scale of the noise: each map's RMS or the expected one", Config,
                                             "noise_scale"))

    def config_from_args(args):
        extra = {"height": args.size[0], "width": args.size[1]} if args.size else {}
        if args.levels is not None:
            extra["levels"] = tuple(args.levels)
        if args.noise_scale is not None:
            extra["noise_scale"] = args.noise_scale
        return cli.start_config(Config, args, **extra)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["COMPARISONS", "FIELDS", "NOISE_SCALES", "Config", "add_noise", "main", "plot", "predictions",
           "run"]
