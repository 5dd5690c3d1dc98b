"""Monte Carlo of the adaptive beta rule (seed section A.2, eq. 1-2) with LRP-beta (eq. 52).

Random layers of neurons with N(0, 1) weights on shared half-normal (post-ReLU) inputs. With the adaptive
beta, LRP-beta hands the negative inputs a share of relevance that is -N/P of the positive share (eq. 1),
up to the cap beta_max; relevance is conserved per neuron and per layer; and a neuron is off (beta = 0,
nothing passed) exactly when P + N <= 0, which for symmetric weights happens with probability 1/2.

    python -m simulations.adaptive_beta [--draws N] [--seed S] [--out DIR] [--plot]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import theory
from simulations import _blocks, _checks, cli, results, streaming, verdicts

NAME = "adaptive_beta"
#: Identities are checked to this absolute tolerance (float64 rounding over <= 256 inputs).
IDENTITY_ATOL = 1e-9


@dataclass(frozen=True)
class Config:
    """draws: random neurons per input count (in layers of ``width`` neurons sharing their inputs)."""

    draws: int = 200_000
    inputs: tuple[int, ...] = (4, 16, 64, 256)
    width: int = 16
    beta_max: float = 3.0
    level: float = 0.999

    def __post_init__(self):
        _checks.positive_int(self.draws, "draws")
        object.__setattr__(self, "inputs", _checks.positive_ints(self.inputs, "inputs"))
        _checks.positive_int(self.width, "width")
        if self.draws < self.width:
            raise ValueError(f"draws must be at least width={self.width} (one layer), got {self.draws}")
        if not np.isfinite(self.beta_max) or self.beta_max < 0:
            raise ValueError(f"beta_max must be a finite number >= 0, got {self.beta_max!r}")
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=40_000)


def _layer_block(layers, gen, d, width, beta_max):
    """Statistics of ``layers`` random layers of ``width`` neurons with ``d`` shared inputs."""
    x = np.abs(gen.standard_normal((layers, 1, d)))
    contributions = gen.standard_normal((layers, width, d)) * x
    positive = np.maximum(contributions, 0).sum(-1)
    negative = np.minimum(contributions, 0).sum(-1)
    beta = theory.adaptive_beta(positive, negative, beta_max)
    on = positive + negative > 0
    relevance_in = np.where(on, 1.0, 0.0)  # an off ReLU neuron passes nothing (R_z = 0)
    r = theory.lrp_beta_neuron(contributions, relevance_in, beta)
    both = on & (negative < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        realised = -np.where(r < 0, r, 0).sum(-1) / np.where(r > 0, r, 0).sum(-1)
        eq1 = -negative / positive
    raw_beta = np.where(on, -negative / np.where(on, positive + negative, 1.0), 0.0)
    capped = raw_beta > beta_max
    cap_ratio = beta_max / (1 + beta_max)
    layer_error = r.sum(axis=(1, 2)) - relevance_in.sum(axis=1)  # input relevance of the whole layer
    return {
        "off": int((~on).sum()),
        "n": on.size,
        "capped": int((on & capped).sum()),
        "on": int(on.sum()),
        "ratio_error": (realised - eq1)[both & ~capped],
        "capped_error": (realised - cap_ratio)[both & capped],
        "conservation_error": (r.sum(-1) - relevance_in)[on],
        "layer_error": layer_error,
    }


_ERRORS = ("ratio_error", "capped_error", "conservation_error", "layer_error")


def _summary(block: dict) -> dict:
    """A block's counts as they are and its per-neuron errors as their maximum (streaming.Worst)."""
    return {k: streaming.Worst(v) if k in _ERRORS else v for k, v in block.items()}


def run(config: Config, *, rng) -> pd.DataFrame:
    """Per input count: eq. 1 ratio, the cap, conservation per neuron and layer, the off fraction."""
    rng = _checks.as_generator(rng)
    layers = config.draws // config.width
    rows, level = [], config.level
    with _blocks.progress_bar(NAME) as bar:
        for d, gen in zip(config.inputs, rng.spawn(len(config.inputs)), strict=True):
            total = _blocks.reduce_blocks(
                lambda size, g, d=d: _summary(_layer_block(size, g, d, config.width, config.beta_max)),
                layers, gen, bytes_per_draw=8 * config.width * d * 6, combine=streaming.add, progress=bar)
            settings = {"inputs": d, "width": config.width, "beta_max": config.beta_max}
            rows += [
                verdicts.identity_row(settings, "max-ratio-minus-eq1", total["ratio_error"],
                               level=level, atol=IDENTITY_ATOL),
                verdicts.identity_row(settings, "max-capped-ratio-minus-cap", total["capped_error"],
                               level=level, atol=IDENTITY_ATOL),
                verdicts.identity_row(settings, "max-neuron-conservation", total["conservation_error"],
                               level=level, atol=IDENTITY_ATOL),
                verdicts.identity_row(settings, "max-layer-conservation", total["layer_error"],
                               level=level, atol=IDENTITY_ATOL),
                # P + N = sum w x is symmetric about 0 for N(0, 1) weights: off with probability 1/2.
                verdicts.proportion_row(settings, "off-fraction", count=total["off"], n=total["n"],
                                        theory=0.5, level=level),
                verdicts.proportion_row(settings, "capped-fraction", count=total["capped"], n=total["on"],
                                        theory=np.nan, level=level),
            ]
    return results.finish_table(rows)


def plot(table: pd.DataFrame, path) -> None:
    """Largest identity error per check (log scale) and the off / capped fractions per input count."""
    plt = cli.pyplot()
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    errors = table[table["quantity"].str.startswith("max-")].copy()
    errors["max |error| + 1e-18"] = errors["estimate"].fillna(0) + 1e-18
    sns.barplot(data=errors, x="inputs", y="max |error| + 1e-18", hue="quantity", ax=left)
    left.axhline(IDENTITY_ATOL, color="k", ls="--", lw=1, label="tolerance")
    left.set(yscale="log", title="eq. 1 ratio and conservation: rounding only")
    fractions = table[table["quantity"].isin(["off-fraction", "capped-fraction"])]
    sns.pointplot(data=fractions, x="inputs", y="estimate", hue="quantity", ax=right)
    right.axhline(0.5, color="k", lw=1, ls=":")
    right.set(ylabel="fraction of neurons", title=f"off neurons (theory 1/2) and beta capped at "
              f"{table['beta_max'].iloc[0]:g}")
    cli.save_figure(fig, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config)
    parser.add_argument("--beta-max", type=float, default=None, metavar="B",
                        help=cli.config_help("cap on beta", Config, "beta_max"))

    def config_from_args(args):
        return cli.start_config(Config, args, beta_max=args.beta_max)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Config", "main", "plot", "run"]
