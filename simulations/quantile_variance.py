"""Monte Carlo of eq. 20 and section D.1: the variance of sample quantiles and the spread of normalisers.

For each distribution, sample size n and level p, the variance of the sample p-quantile over many samples
is compared with the asymptotic p(1-p) / (n f(F^-1(p))^2) (eq. 20 with the square the seed's print omits;
``as_printed=True`` compares with the printed form, which fails). Then maps of growing size: the max-abs
normaliser max|A| (mean against theory.expected_maximum) spreads far more than the second-moment normaliser
sqrt(mean A^2) (coefficients of variation and their ratio).

    python -m simulations.quantile_variance [--draws N] [--seed S] [--out DIR] [--plot]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

import theory
from simulations import _blocks, _checks, cli, results, streaming, verdicts

NAME = "quantile_variance"

#: The distributions by name; Student-t with 5 degrees of freedom keeps a finite fourth moment.
DISTRIBUTIONS = {
    "norm": stats.norm(),
    "laplace": stats.laplace(),
    "t5": stats.t(5),
    "expon": stats.expon(),
}


@dataclass(frozen=True)
class Config:
    """draws: samples per (distribution, n) and maps per size; sizes: side lengths of square maps."""

    draws: int = 4000
    distributions: tuple[str, ...] = ("norm", "laplace", "t5", "expon")
    ns: tuple[int, ...] = (100, 1000)
    ps: tuple[float, ...] = (0.5, 0.75, 0.9, 0.99)
    sizes: tuple[int, ...] = (8, 16, 32, 64, 128)
    normaliser_draws: int = 1000
    as_printed: bool = False
    level: float = 0.999

    def __post_init__(self):
        _checks.positive_int(self.draws, "draws")
        if self.draws < 10:
            raise ValueError(f"draws must be at least 10 to estimate a variance, got {self.draws}")
        unknown = [d for d in self.distributions if d not in DISTRIBUTIONS]
        if unknown or not self.distributions:
            raise ValueError(f"distributions must be among {tuple(DISTRIBUTIONS)}, got {self.distributions}")
        object.__setattr__(self, "ns", _checks.positive_ints(self.ns, "ns"))
        object.__setattr__(self, "ps", _checks.probabilities(self.ps, "ps"))
        object.__setattr__(self, "sizes", _checks.positive_ints(self.sizes, "sizes"))
        _checks.positive_int(self.normaliser_draws, "normaliser_draws")
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=1000, ns=(200,), sizes=(8, 32, 128), normaliser_draws=300)


def _variance_row(settings, quantity, moments: streaming.Moments, theory_value, level):
    """Sample variance with its large-sample standard error sqrt((m4 - s^4 (m-3)/(m-1)) / m), from the
    streamed moments of the sample (one column of ``moments``, or all of it)."""
    m = moments.n
    s2 = float(moments.var(ddof=1))
    m4 = float(moments.central4())
    se = math.sqrt(max(m4 - s2**2 * (m - 3) / (m - 1), 0.0) / m)
    return verdicts.row(settings, quantity, estimate=s2, se=se, theory=theory_value, level=level)



def _quantile_block(size, gen, dist, n, ps):
    samples = dist.rvs(size=(size, n), random_state=gen)
    return np.quantile(samples, ps, axis=1).T  # (size, len(ps))


def _quantile_rows(config: Config, rng, bar) -> list[dict]:
    grid = [(d, n) for d in config.distributions for n in config.ns]
    rows = []
    for (name, n), gen in zip(grid, rng.spawn(len(grid)), strict=True):
        dist = DISTRIBUTIONS[name]
        quantiles = _blocks.reduce_blocks(
            lambda size, g, dist=dist, n=n: streaming.Moments.of(_quantile_block(size, g, dist, n,
                                                                                   config.ps)),
            config.draws, gen, bytes_per_draw=16 * n, combine=streaming.add, progress=bar)
        expected = theory.quantile_asymptotic_variance(np.array(config.ps), n, dist,
                                                       as_printed=config.as_printed)
        for j, p in enumerate(config.ps):
            settings = {"distribution": name, "n": n, "p": p, "map_size": np.nan}
            rows.append(_variance_row(settings, "quantile-variance", quantiles.column(j), expected[j],
                                      config.level))
    return rows


def _normaliser_block(size, gen, m):
    maps = gen.standard_normal((size, m))
    return np.stack([np.abs(maps).max(axis=1), np.sqrt(np.mean(maps**2, axis=1))], axis=1)


def _cv(moments: streaming.Moments):
    """Coefficient of variation and its normal-theory standard error, from streamed moments."""
    n = moments.n
    cv = float(moments.std(ddof=1) / moments.mean)
    return cv, cv * math.sqrt(1 / (2 * (n - 1)) + cv**2 / n)


def _normaliser_rows(config: Config, rng, bar) -> list[dict]:
    rows = []
    halfnormal = stats.halfnorm()
    for side, gen in zip(config.sizes, rng.spawn(len(config.sizes)), strict=True):
        m = side * side
        both = _blocks.reduce_blocks(lambda size, g, m=m: streaming.Moments.of(_normaliser_block(size, g, m)),
                               config.normaliser_draws, gen, bytes_per_draw=16 * m, combine=streaming.add,
                               progress=bar)
        max_abs, second = both.column(0), both.column(1)
        settings = {"distribution": "norm", "n": m, "p": np.nan, "map_size": side}
        rows.append(verdicts.mean_row(settings, "max-abs-normaliser", max_abs, level=config.level,
                                      theory=theory.expected_maximum(m, halfnormal)))
        cv_max, se_max = _cv(max_abs)
        cv_second, se_second = _cv(second)
        rows.append(verdicts.row(settings, "max-abs-cv", estimate=cv_max, se=se_max, theory=np.nan,
                                 level=config.level))
        rows.append(verdicts.row(settings, "second-moment-cv", estimate=cv_second, se=se_second,
                                 theory=np.nan,
                                 level=config.level))
        # The two CVs come from the same maps; the delta-method se of their ratio ignores that correlation.
        ratio = cv_max / cv_second
        se_ratio = ratio * math.hypot(se_max / cv_max, se_second / cv_second)
        rows.append(verdicts.row(settings, "cv-ratio-max-abs-to-second-moment", estimate=ratio, se=se_ratio,
                                 theory=1.0, relation="greater", level=config.level))
    return rows


def run(config: Config, *, rng) -> pd.DataFrame:
    """Quantile-variance rows (eq. 20) and normaliser-spread rows (section D.1) for ``config``."""
    rng = _checks.as_generator(rng)
    first, second = rng.spawn(2)
    with _blocks.progress_bar(NAME) as bar:
        rows = _quantile_rows(config, first, bar) + _normaliser_rows(config, second, bar)
    return results.finish_table(rows)


def plot(table: pd.DataFrame, path) -> None:
    """Left: Monte Carlo against eq. 20 (log-log); right: coefficient of variation of the normalisers."""
    plt = cli.pyplot()
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    q = table[table["quantity"] == "quantile-variance"]
    sns.scatterplot(data=q, x="theory", y="estimate", hue="distribution", style="p", ax=left, s=60)
    lo, hi = q[["theory", "estimate"]].min().min(), q[["theory", "estimate"]].max().max()
    left.plot([lo, hi], [lo, hi], color="k", lw=1, label="eq. 20")
    left.set(xscale="log", yscale="log", xlabel="eq. 20: p(1-p) / (n f(F^-1(p))^2)",
             ylabel="Monte Carlo variance of the sample quantile", title="Quantile variance (eq. 20)")
    cv = table[table["quantity"].isin(["max-abs-cv", "second-moment-cv"])]
    for quantity, part in cv.groupby("quantity"):
        right.errorbar(part["n"], part["estimate"], yerr=part["estimate"] - part["ci_low"], fmt="o-",
                       label=quantity.replace("-cv", ""))
    right.set(xscale="log", yscale="log", xlabel="pixels in the map", ylabel="coefficient of variation",
              title="Spread of the normaliser (section D.1)")
    right.legend()
    cli.save_figure(fig, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config)
    parser.add_argument("--as-printed", action="store_true",
                        help="compare with eq. 20 as the seed prints it (no square: expected to disagree)")

    def config_from_args(args):
        return cli.start_config(Config, args, as_printed=True if args.as_printed else None)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["DISTRIBUTIONS", "Config", "main", "plot", "run"]
