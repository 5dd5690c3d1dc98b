"""Monte Carlo of Theorems 1, 3 and 4: what SSIM, Spearman and the normalised MSE score for random maps.

On an H x W torus the "original" attribution map A = mu + sigma F is a smooth stationary Gaussian field
(white noise blurred by a Gaussian of width ``smoothing``). The "randomised" map B is the original plus
independent noise, B = mu + sigma (rho F + sqrt(1 - rho^2) F'), at several correlations rho; rho = 0 is the
zero-covariance process with exactly the original's per-window moments; and a constant map B = mu. Windowed
SSIM (7x7 uniform with sample covariance, 11x11 Gaussian sigma 1.5), Spearman with and without absolute
values, and the second-moment-normalised MSE are compared with the closed forms of ``theory``. The seed's
point shows in the ``*-zero-cov-vs-others`` rows: the zero-covariance process is the "most randomised" of
all (lowest SSIM and Spearman, highest MSE), although it is noise and not a randomised model.

Two SSIM estimates face Theorem 1 at the process's expected window moments: ``ssim-at-mean-local-moments``
(the formula at the Monte Carlo window moments; agrees) and ``ssim-mean-of-windows`` (what software
reports: the mean of per-window SSIMs). The latter sits well below the formula for smooth maps, because
7x7 and 11x11 windows hold few independent pixels and the SSIM of noisy window moments is biased (a mean of
ratios is not the ratio of means): its ``agree`` is False there, which is the finding, not a defect.

    python -m simulations.similarity_processes [--draws N] [--seed S] [--out DIR] [--plot]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

import theory
from simulations import _blocks, _checks, cli, results, streaming, verdicts
from theory import cli_options

NAME = "similarity_processes"
#: The two windows in use: 7x7 uniform with the N/(N-1) sample covariance (scikit-image's default), and
#: the 11x11 Gaussian window of sigma 1.5 with population moments (Wang et al. 2004).
SIMULATED_WINDOWS = ("7x7-uniform", "11x11-gaussian")


@dataclass(frozen=True)
class Config:
    """draws: map pairs per process; correlations: rho of the original-plus-noise processes."""

    draws: int = 300
    height: int = 64
    width: int = 64
    smoothing: float = 2.0
    mean: float = 1.0
    std: float = 1.0
    correlations: tuple[float, ...] = (0.9, 0.6, 0.3)
    data_range: float = 8.0
    level: float = 0.999

    def __post_init__(self):
        _checks.positive_int(self.draws, "draws")
        if self.draws < 10:
            raise ValueError(f"draws must be at least 10 map pairs, got {self.draws}")
        for name in ("height", "width"):
            value = _checks.positive_int(getattr(self, name), name)
            if value < 16:
                raise ValueError(f"{name} must be at least 16 pixels (the 11x11 window), got {value}")
        for name in ("smoothing", "std", "data_range"):
            _checks.positive_floats((getattr(self, name),), name)
        if not math.isfinite(self.mean) or self.mean <= 0:
            raise ValueError(f"mean must be a finite number > 0 (the constant map is normalised), got "
                             f"{self.mean!r}")
        rhos = tuple(float(r) for r in self.correlations)
        if not all(0 < r < 1 for r in rhos):
            raise ValueError(f"correlations must lie in (0, 1) (0 is the zero-covariance process), "
                             f"got {rhos}")
        object.__setattr__(self, "correlations", rhos)
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=60, height=48, width=48)

    @property
    def processes(self) -> list[tuple[str, float]]:
        """(name, rho) of every randomised process; the constant map has rho = nan."""
        return [(f"noisy-rho={r:g}", r) for r in self.correlations] + [("zero-covariance", 0.0),
                                                                        ("constant", np.nan)]


# --------------------------------------------------------------------------- fields and windows


def _torus_offsets(n: int) -> np.ndarray:
    k = np.arange(n)
    return np.minimum(k, n - k)


def _gaussian_on_torus(height, width, sigma) -> np.ndarray:
    dy, dx = _torus_offsets(height)[:, None], _torus_offsets(width)[None, :]
    return np.exp(-(dy**2 + dx**2) / (2 * sigma**2))


def field_kernel(config: Config) -> np.ndarray:
    """Blur kernel with unit sum of squares: white noise blurred by it has unit variance everywhere."""
    g = _gaussian_on_torus(config.height, config.width, config.smoothing)
    return g / np.sqrt(np.sum(g**2))


def window_kernel(config: Config, window: str) -> tuple[np.ndarray, float]:
    """Window weights (sum 1) on the torus and the factor that turns weighted into reported moments."""
    kernel = np.zeros((config.height, config.width))
    if window == "7x7-uniform":
        offsets = np.arange(-3, 4)
        kernel[np.ix_(offsets % config.height, offsets % config.width)] = 1.0 / 49
        return kernel, 49 / 48
    offsets = np.arange(-5, 6)
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    kernel[np.ix_(offsets % config.height, offsets % config.width)] = g / g.sum()
    return kernel, 1.0


def expected_local_variance(config: Config, window: str) -> float:
    """E of the windowed variance of A: sigma^2 (1 - w^T R w) times the sample-covariance factor.

    R is the field's correlation (autocorrelation of the blur kernel), w the window weights; exact for
    the torus fields drawn here.
    """
    g = np.fft.rfft2(field_kernel(config))
    correlation = np.fft.irfft2(np.abs(g) ** 2, s=(config.height, config.width))
    w, factor = window_kernel(config, window)
    wf = np.fft.rfft2(w)
    window_pairs = np.fft.irfft2(np.abs(wf) ** 2, s=(config.height, config.width))
    return float(config.std**2 * (1 - np.sum(correlation * window_pairs)) * factor)


def _smooth_fields(gen, shape, kernel_f, height, width):
    white = gen.standard_normal(shape + (height, width))
    return np.fft.irfft2(np.fft.rfft2(white) * kernel_f, s=(height, width))


def _filter(maps, window_f, height, width):
    return np.fft.irfft2(np.fft.rfft2(maps) * window_f, s=(height, width))


def _window_moments(a, b, window_f, factor):
    h, w = a.shape[-2:]
    mu_a, mu_b = _filter(a, window_f, h, w), _filter(b, window_f, h, w)
    var_a = (_filter(a * a, window_f, h, w) - mu_a**2) * factor
    var_b = (_filter(b * b, window_f, h, w) - mu_b**2) * factor
    cov = (_filter(a * b, window_f, h, w) - mu_a * mu_b) * factor
    return mu_a, mu_b, var_a, var_b, cov


def ssim_map(a, b, window_f, factor, c1, c2):
    """SSIM of every circular window (main paper eq. 1 on window moments); window given in Fourier space."""
    mu_a, mu_b, var_a, var_b, cov = _window_moments(a, b, window_f, factor)
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def windowed_ssim(a, b, window_f, factor, c1, c2):
    """Mean SSIM over all windows per map, and the per-map means of the five window moments.

    a, b: (batch, H, W). Returns (ssim (batch,), moments (batch, 5): mu_a, mu_b, var_a, var_b, cov).
    """
    moments = _window_moments(a, b, window_f, factor)
    mu_a, mu_b, var_a, var_b, cov = moments
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim.mean(axis=(-2, -1)), np.stack([m.mean(axis=(-2, -1)) for m in moments], axis=-1)


def spearman(a, b):
    """Spearman's rank correlation per map (last two axes flattened); nan where a map is constant."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    n = a.shape[1]
    rank_a = np.argsort(np.argsort(a, axis=1), axis=1).astype(float)
    rank_b = np.argsort(np.argsort(b, axis=1), axis=1).astype(float)
    r = 1 - 6 * np.sum((rank_a - rank_b) ** 2, axis=1) / (n * (n * n - 1))
    constant = (np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0)
    return np.where(constant, np.nan, r)


def _process_block(size, gen, config: Config, rho: float, kernel_f, windows_f, c1, c2):
    h, w = config.height, config.width
    fields = _smooth_fields(gen, (size, 2), kernel_f, h, w)
    a = config.mean + config.std * fields[:, 0]
    if np.isnan(rho):
        b = np.full_like(a, config.mean)
    else:
        b = config.mean + config.std * (rho * fields[:, 0] + math.sqrt(1 - rho**2) * fields[:, 1])
    out = {}
    for window, (window_f, factor) in windows_f.items():
        out[f"ssim-{window}"], out[f"moments-{window}"] = windowed_ssim(a, b, window_f, factor, c1, c2)
    out["spearman"] = spearman(a, b)
    out["spearman-abs"] = spearman(np.abs(a), np.abs(b))
    # Per-map second moments: the normalised MSE of one map pair is 2 - 2 E^[AB] / sqrt(E^[A^2] E^[B^2]).
    out["second-moments"] = np.stack([np.mean(a * a, axis=(1, 2)), np.mean(b * b, axis=(1, 2)),
                                      np.mean(a * b, axis=(1, 2))], axis=1)
    return out


def _delta_method(moments: streaming.Moments, statistic) -> tuple[float, float]:
    """Plug-in ``statistic`` of the pooled per-map means and its delta-method se sqrt(g' S g / n), from
    streamed means and co-moments (S: the sample covariance, g: the gradient at the means by central
    differences). It is the first-order value of the delete-one jackknife, without keeping every map."""
    mean, n = np.asarray(moments.mean, float), moments.n
    estimate = float(statistic(mean))
    cov = moments.covariance(ddof=1)
    step = 1e-6 * np.maximum(np.maximum(np.abs(mean), np.sqrt(np.diag(cov))), 1e-12)
    shifts = np.diag(step)
    gradient = (statistic(mean + shifts) - statistic(mean - shifts)) / (2 * step)
    return estimate, math.sqrt(max(float(gradient @ cov @ gradient), 0.0) / n)


def _summary(block: dict) -> dict:
    """Streamed moments of a block's per-map values (memory does not grow with the draws)."""
    out = {k: streaming.Moments.of(v, co=k.startswith("moments-")) for k, v in block.items()
           if k != "second-moments"}
    m = block["second-moments"]
    # the normalised MSE of one map pair, 2 - 2 E^[AB] / sqrt(E^[A^2] E^[B^2]), is a per-map value
    out["normalized-mse"] = streaming.Moments.of(2 - 2 * m[:, 2] / np.sqrt(m[:, 0] * m[:, 1]))
    return out


def _ssim_of_moments(m, c1, c2):
    mu_a, mu_b, var_a, var_b, cov = np.moveaxis(m, -1, 0)  # moments on the last axis
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def _process_rows(config, name, rho, joined, local_var, c1, c2) -> list[dict]:
    level, mu, var = config.level, config.mean, config.std**2
    constant = np.isnan(rho)
    settings = {"process": name, "rho": rho, "height": config.height, "width": config.width,
                "smoothing": config.smoothing}
    rows = []
    for window in SIMULATED_WINDOWS:
        v_b = 0.0 if constant else local_var[window]
        cov = 0.0 if constant else rho * local_var[window]
        if rho == 0.0:  # Theorem 1 eq. 3-5: the minimum over cov >= 0 sits at cov = 0
            expected = theory.ssim_min_nonnegative_cov(mu, mu, local_var[window], v_b, c1=c1, c2=c2)
        else:
            expected = theory.ssim_from_moments(mu, mu, local_var[window], v_b, cov, c1=c1, c2=c2)
        here = {**settings, "window": window}
        rows.append(verdicts.mean_row(here, "ssim-mean-of-windows", joined[f"ssim-{window}"], theory=expected,
                               level=level))
        estimate, se = _delta_method(joined[f"moments-{window}"], lambda m: _ssim_of_moments(m, c1, c2))
        rows.append(verdicts.row(here, "ssim-at-mean-local-moments", estimate=estimate, se=se,
                                 theory=expected, level=level))
    here = {**settings, "window": "whole-map"}
    n_pixels = config.height * config.width
    rows.append(verdicts.mean_row(here, "spearman", joined["spearman"], level=level,
                                  theory=np.nan if constant else theory.spearman_expected_gaussian(rho,
                                  n_pixels)))
    # |A| and |B| of independent maps are independent: expected rank correlation 0. No closed form else.
    rows.append(verdicts.mean_row(here, "spearman-abs", joined["spearman-abs"], level=level,
                                  theory=0.0 if rho == 0.0 else np.nan))
    second_b = mu**2 if constant else mu**2 + var
    cross = mu**2 if constant else mu**2 + rho * var
    expected_mse = (theory.normalized_mse_max(mu, mu, mu**2 + var, second_b) if rho == 0.0
                    else theory.normalized_mse(mu**2 + var, second_b, cross))
    rows.append(verdicts.mean_row(here, "normalized-mse", joined["normalized-mse"], theory=expected_mse,
                           level=level))
    return rows


def _zero_cov_rows(config, rows) -> list[dict]:
    """Zero-covariance process against the most randomised of the others, per measure (the seed's point)."""
    table = pd.DataFrame(rows)
    out = []
    measures = [("ssim-mean-of-windows", w, "less") for w in SIMULATED_WINDOWS]
    measures += [("spearman", "whole-map", "less"), ("normalized-mse", "whole-map", "greater")]
    for quantity, window, relation in measures:
        part = table[(table["quantity"] == quantity) & (table["window"] == window)]
        part = part.dropna(subset=["estimate"])
        zero = part[part["process"] == "zero-covariance"].iloc[0]
        others = part[part["process"] != "zero-covariance"]
        rival = others.loc[others["estimate"].idxmin() if relation == "less" else others["estimate"].idxmax()]
        settings = {"process": f"zero-covariance vs {rival['process']}", "rho": 0.0, "height": config.height,
                    "width": config.width, "smoothing": config.smoothing, "window": window}
        out.append(verdicts.row(settings, f"{quantity}-zero-cov-vs-others", estimate=zero["estimate"] -
                                rival["estimate"], se=math.hypot(zero["se"], rival["se"]), theory=0.0,
                                relation=relation, level=config.level))
    return out


def run(config: Config, *, rng) -> pd.DataFrame:
    """Rows per process and measure, then the zero-covariance comparison rows."""
    rng = _checks.as_generator(rng)
    h, w = config.height, config.width
    c1, c2 = theory.ssim_constants(config.data_range)
    kernel_f = np.fft.rfft2(field_kernel(config))
    windows_f = {}
    for window in SIMULATED_WINDOWS:
        kernel, factor = window_kernel(config, window)
        windows_f[window] = (np.fft.rfft2(kernel), factor)
    local_var = {window: expected_local_variance(config, window) for window in SIMULATED_WINDOWS}
    rows = []
    with _blocks.progress_bar(NAME) as bar:
        for (name, rho), gen in zip(config.processes, rng.spawn(len(config.processes)), strict=True):
            joined = _blocks.reduce_blocks(
                lambda size, g, rho=rho: _summary(_process_block(size, g, config, rho, kernel_f, windows_f,
                                                                 c1, c2)),
                config.draws, gen, bytes_per_draw=8 * h * w * 24, combine=streaming.add, progress=bar)
            rows += _process_rows(config, name, rho, joined, local_var, c1, c2)
    rows += _zero_cov_rows(config, rows)
    return results.finish_table(rows)


def plot(table: pd.DataFrame, path) -> None:
    """One panel per measure: score of every process (points, intervals) and theory (bars)."""
    plt = cli.pyplot()
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    panels = [("ssim-mean-of-windows", "7x7-uniform"), ("ssim-mean-of-windows", "11x11-gaussian"),
              ("spearman", "whole-map"), ("normalized-mse", "whole-map")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), sharey=False)
    for ax, (quantity, window) in zip(axes, panels, strict=True):
        part = table[(table["quantity"] == quantity) & (table["window"] == window)]
        x = np.arange(len(part))
        colours = ["C3" if p == "zero-covariance" else "C0" for p in part["process"]]
        ax.bar(x, part["theory"].fillna(0), color=colours, alpha=0.35, label="theory")
        ax.errorbar(x, part["estimate"], yerr=[part["estimate"] - part["ci_low"],
                    part["ci_high"] - part["estimate"]], fmt="o", color="k", label="Monte Carlo")
        ax.set_xticks(x, part["process"], rotation=40, ha="right")
        ax.set_title(f"{quantity} ({window})", fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("Zero-covariance noise (red) looks 'most randomised' under every measure", y=1.02)
    cli.save_figure(fig, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config)
    parser.add_argument("--size", type=cli_options.positive_int, nargs=2, default=None, metavar=("H", "W"),
                        help=cli.config_help("map size", Config, "height", "width"))

    def config_from_args(args):
        size = {"height": args.size[0], "width": args.size[1]} if args.size else {}
        return cli.start_config(Config, args, **size)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SIMULATED_WINDOWS", "Config", "expected_local_variance", "field_kernel", "main", "plot", "run",
           "spearman", "ssim_map", "window_kernel", "windowed_ssim"]
