"""Monte Carlo of positive explanation-score dominance in ReLU networks (seed section G, eq. 58-63).

Random ReLU MLPs (He-normal weights) with non-positive biases, and with positive biases as a control,
explained at a positive logit by the bias-free z-rule. With biases <= 0 every layer's relevance sum equals
the logit relevance f(x) - b >= f(x) > 0; with positive biases the sums are still conserved but f(x) - b
can be negative, so some positive logits get dominantly negative explanations.

    python -m simulations.positive_dominance [--draws N] [--seed S] [--out DIR] [--plot]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulations import _blocks, _checks, cli, results, streaming, verdicts
from theory import cli_options

NAME = "positive_dominance"
BIAS_SIGNS = ("non-positive", "positive")
#: Conservation is checked relative to the logit relevance, to this tolerance (float64 rounding).
#: The positive-bias control divides by pre-activations z_j that can be close to 0, hence the slack.
IDENTITY_RTOL = 1e-6


@dataclass(frozen=True)
class Config:
    """draws: random networks per bias sign, each explained at ``inputs_per_network`` random inputs."""

    draws: int = 2_000
    inputs_per_network: int = 32
    layer_sizes: tuple[int, ...] = (16, 32, 32, 32, 1)
    bias_scale: float = 0.5
    level: float = 0.999

    def __post_init__(self):
        _checks.positive_int(self.draws, "draws")
        _checks.positive_int(self.inputs_per_network, "inputs_per_network")
        sizes = _checks.positive_ints(self.layer_sizes, "layer_sizes")
        if len(sizes) < 2 or sizes[-1] != 1:
            raise ValueError(f"layer_sizes must run from the input size to one logit, got {sizes}")
        object.__setattr__(self, "layer_sizes", sizes)
        if not np.isfinite(self.bias_scale) or self.bias_scale <= 0:
            raise ValueError(f"bias_scale must be a finite number > 0, got {self.bias_scale!r}")
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=300)


def random_networks(gen, count: int, layer_sizes, bias_scale: float, bias_sign: str):
    """``count`` ReLU MLPs: weights (count, out, in) He-normal, biases (count, out) of the given sign."""
    sign = -1.0 if bias_sign == "non-positive" else 1.0
    weights, biases = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        weights.append(gen.standard_normal((count, fan_out, fan_in)) * np.sqrt(2.0 / fan_in))
        biases.append(sign * np.abs(gen.standard_normal((count, fan_out))) * bias_scale)
    return weights, biases


def relevance_sums(weights, biases, x):
    """Layer-wise relevance sums of the bias-free z-rule for a batch of networks (seed eq. 59-63).

    weights[l]: (nets, out, in); biases[l]: (nets, out); x: (nets, batch, in). Returns (sums, logit) with
    sums (nets, batch, L + 1), the logit relevance f(x) - b first and the input last, as
    theory.relu_relevance_sums does for one network.
    """
    activations = [x]
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        activations.append(np.maximum(np.einsum("nbi,noi->nbo", activations[-1], w) + b[:, None, :], 0))
    logit = np.einsum("nbi,noi->nbo", activations[-1], weights[-1])[..., 0] + biases[-1][:, None, 0]
    relevance = (logit - biases[-1][:, None, 0])[..., None]
    sums = [relevance.sum(-1)]
    for w, a in zip(weights[::-1], activations[::-1], strict=True):
        z = np.einsum("nbi,noi->nbo", a, w)  # the bias gets no relevance: it is not in the denominator
        ratio = np.divide(relevance, z, out=np.zeros_like(z), where=z != 0)
        relevance = a * np.einsum("nbo,noi->nbi", ratio, w)
        sums.append(relevance.sum(-1))
    return np.stack(sums, axis=-1), logit


def _block(size, gen, config: Config, bias_sign: str):
    weights, biases = random_networks(gen, size, config.layer_sizes, config.bias_scale, bias_sign)
    x = gen.standard_normal((size, config.inputs_per_network, config.layer_sizes[0]))
    sums, logit = relevance_sums(weights, biases, x)
    chosen = logit > 0  # the theorem explains positive logits only
    sums, logit = sums[chosen], logit[chosen]
    start = sums[:, :1]
    return {
        "positive": int(chosen.sum()),
        "all_positive": int((sums > 0).all(axis=1).sum()),
        "relative_error": np.abs(sums - start).max(axis=1) / np.maximum(np.abs(start[:, 0]), 1e-300),
        # Relative slack for rounding: the input sum equals f(x) - b up to float64 error.
        "at_least_logit": int((sums[:, -1] >= logit - 1e-9 * np.abs(logit)).sum()),
    }


def _summary(block: dict) -> dict:
    """A block's counts as they are and its relative errors as their maximum (streaming.Worst)."""
    return {**block, "relative_error": streaming.Worst(block["relative_error"])}


def run(config: Config, *, rng) -> pd.DataFrame:
    """Per bias sign: share of positive logits whose every layer sum is positive, conservation, dominance."""
    rng = _checks.as_generator(rng)
    rows, level = [], config.level
    per_draw = 8 * config.inputs_per_network * sum(config.layer_sizes) * 4 + 8 * sum(
        a * b for a, b in zip(config.layer_sizes[:-1], config.layer_sizes[1:], strict=True))
    with _blocks.progress_bar(NAME) as bar:
        for sign, gen in zip(BIAS_SIGNS, rng.spawn(len(BIAS_SIGNS)), strict=True):
            total = _blocks.reduce_blocks(lambda size, g, sign=sign: _summary(_block(size, g, config, sign)),
                                    config.draws, gen, bytes_per_draw=per_draw, combine=streaming.add,
                                          progress=bar)
            positive, all_positive = total["positive"], total["all_positive"]
            errors, at_least_logit = total["relative_error"], total["at_least_logit"]
            settings = {"biases": sign, "layers": len(config.layer_sizes) - 1,
                        "bias_scale": config.bias_scale}
            proven = sign == "non-positive"
            rows += [
                # Section G: with biases <= 0 every layer sum of a positive logit is positive (frequency 1);
                # the positive-bias control falls short of 1.
                verdicts.proportion_row(settings, "all-layer-sums-positive", count=all_positive, n=positive,
                                        theory=1.0, level=level, relation="equal" if proven else "less"),
                verdicts.identity_row(settings, "max-relative-conservation-error", errors, level=level,
                                      atol=IDENTITY_RTOL),
                # The input layer's sum is f(x) - b >= f(x) when b <= 0: at least the logit itself.
                verdicts.proportion_row(settings, "input-sum-at-least-logit", count=at_least_logit,
                                        n=positive,
                                        theory=1.0, level=level, relation="equal" if proven else "less"),
            ]
    return results.finish_table(rows)


def plot(table: pd.DataFrame, path) -> None:
    """Share of positive logits with every layer sum positive, per bias sign."""
    plt = cli.pyplot()
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    part = table[table["quantity"] == "all-layer-sums-positive"]
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.barplot(data=part, x="biases", y="estimate", ax=ax, color="C0")
    ax.errorbar(np.arange(len(part)), part["estimate"], yerr=[part["estimate"] - part["ci_low"],
                part["ci_high"] - part["estimate"]], fmt="none", color="k")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="section G (biases <= 0)")
    ax.set(ylim=(0, 1.05), ylabel="share of positive logits, all layer sums > 0",
           title="Positive dominance in random ReLU networks")
    ax.legend(loc="lower left")
    cli.save_figure(fig, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config)
    parser.add_argument("--layer-sizes", type=cli_options.positive_int, nargs="+", default=None, metavar="N",
                        help=cli.config_help("input size ... 1", Config, "layer_sizes"))

    def config_from_args(args):
        return cli.start_config(Config, args, layer_sizes=args.layer_sizes)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["BIAS_SIGNS", "Config", "main", "plot", "random_networks", "relevance_sums", "run"]
