"""Monte Carlo of the positive monotonicity property (seed section F, eq. 42-57).

Random single neurons z = g(sum_k w_k x_k + b) with N(0, 1) weights, inputs and bias. The property
w_i x_i >= w_j x_j > 0 => |R_i| >= |R_j| must hold in every draw for gradient x input (F.1), exact Shapley
values (F.2) and LRP-beta (F.3), and fails for the plain gradient g'(z) w_i in a measurable fraction.

    python -m simulations.monotonicity [--draws N] [--seed S] [--out DIR] [--plot]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import theory
from simulations import _blocks, _checks, cli, results, streaming, verdicts
from theory import cli_options

NAME = "monotonicity"
#: Methods, and whether section F proves the property for them (False: expected to fail sometimes).
METHODS = {"gradient": False, "gradient-x-input": True, "shapley": True, "lrp-beta": True}


@dataclass(frozen=True)
class Config:
    """draws: random neurons per (activation, input count); lrp_beta: the fixed beta of LRP-beta."""

    draws: int = 10_000
    inputs: tuple[int, ...] = (3, 6, 8)
    activations: tuple[str, ...] = theory.ACTIVATIONS
    bias_scale: float = 1.0
    lrp_beta: float = 1.0
    level: float = 0.999

    def __post_init__(self):
        _checks.positive_int(self.draws, "draws")
        inputs = _checks.positive_ints(self.inputs, "inputs")
        if max(inputs) > 16 or min(inputs) < 2:
            raise ValueError(f"inputs must lie in 2..16 (exact Shapley enumerates 2^d subsets), got {inputs}")
        object.__setattr__(self, "inputs", inputs)
        unknown = [a for a in self.activations if a not in theory.ACTIVATIONS]
        if unknown or not self.activations:
            raise ValueError(f"activations must be among {theory.ACTIVATIONS}, got {self.activations}")
        if not np.isfinite(self.bias_scale) or self.bias_scale < 0:
            raise ValueError(f"bias_scale must be a finite number >= 0, got {self.bias_scale!r}")
        if not np.isfinite(self.lrp_beta) or self.lrp_beta < 0:
            raise ValueError(f"lrp_beta must be a finite number >= 0, got {self.lrp_beta!r}")
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=2_000, inputs=(3, 8))


def attributions(method: str, w, x, b, activation: str, lrp_beta: float):
    """The attributions of one method for a batch of neurons (inputs on the last axis), from theory."""
    if method == "gradient":
        return theory.gradient_neuron(w, x, b, activation)
    if method == "gradient-x-input":
        return theory.gradient_x_input_neuron(w, x, b, activation)
    if method == "shapley":
        return theory.shapley_neuron(w, x, b, activation)
    if method == "lrp-beta":
        return theory.lrp_beta_single_neuron(w, x, 1.0, lrp_beta)
    raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")


def _violation_block(size, gen, d, activation, bias_scale, lrp_beta):
    w = gen.standard_normal((size, d))
    x = gen.standard_normal((size, d))
    b = bias_scale * gen.standard_normal(size)
    contributions = w * x
    return np.array([
        int((~theory.is_positively_monotone(contributions, attributions(m, w, x, b, activation, lrp_beta)))
            .sum())
        for m in METHODS
    ])


def run(config: Config, *, rng) -> pd.DataFrame:
    """Violation frequency of section F's property per (activation, inputs, method)."""
    rng = _checks.as_generator(rng)
    grid = [(a, d) for a in config.activations for d in config.inputs]
    rows = []
    with _blocks.progress_bar(NAME) as bar:
        for (activation, d), gen in zip(grid, rng.spawn(len(grid)), strict=True):
            violations = _blocks.reduce_blocks(
                lambda size, g, d=d, a=activation: _violation_block(size, g, d, a, config.bias_scale,
                                                                    config.lrp_beta),
                config.draws, gen, bytes_per_draw=8 * (2**d + 4 * d * d), combine=streaming.add, progress=bar)
            for (method, proven), count in zip(METHODS.items(), violations, strict=True):
                settings = {"activation": activation, "inputs": d, "method": method}
                # Proven methods: no violation in any draw. Plain gradient: a fraction clearly above 0.
                rows.append(verdicts.proportion_row(settings, "violation-frequency", count=int(count),
                                                    n=config.draws, theory=0.0, level=config.level,
                                                    relation="equal" if proven else "greater"))
    return results.finish_table(rows)


def plot(table: pd.DataFrame, path) -> None:
    """Violation frequency per method and activation (0 for the proven methods)."""
    cli.pyplot()  # selects the Agg backend before seaborn draws
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    grid = sns.catplot(data=table, x="inputs", y="estimate", hue="method", col="activation", kind="bar",
                       height=3.5, aspect=0.9)
    grid.set_axis_labels("inputs of the neuron", "fraction of neurons violating section F")
    grid.figure.suptitle("Positive monotonicity: only the plain gradient violates it", y=1.04)
    cli.save_figure(grid.figure, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config)
    parser.add_argument("--inputs", type=cli_options.positive_int, nargs="+", default=None, metavar="N",
                        help=cli.config_help("input counts of the neurons", Config, "inputs"))

    def config_from_args(args):
        return cli.start_config(Config, args, inputs=args.inputs)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["METHODS", "Config", "attributions", "main", "plot", "run"]
