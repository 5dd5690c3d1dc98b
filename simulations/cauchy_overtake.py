"""Monte Carlo of Theorem 2: small activations overtaking large ones under random weights (seed E, I).

A neuron with iid N(0, 1) weights sees a set of large activations X_L and a set of small ones X_S. The
frequency of sum w_s x_s >= sum w_l x_l among draws with sum w_l x_l > 0 is compared with the exact Cauchy
tail (eq. 27-28) and the gamma_2 bound (eq. 33-36), the same for mean contributions (eq. 37-41), and the
ratio of two single weights with the Cauchy tail (eq. 22-23). Activation sets are synthetic (eq. 21 holds
with equality: min X_L = K max X_S) or cut from one level's real activations at the quantile pairs of
section I (:func:`overtake_on_activations`, for the report).

    python -m simulations.cauchy_overtake [--draws N] [--seed S] [--out DIR] [--plot]
    python -m simulations.cauchy_overtake --activations run/activation_samples.npz --key resnet50/6
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import theory
from simulations import _blocks, _checks, cli, results, streaming, verdicts
from theory import cli_options

NAME = "cauchy_overtake"
SYNTHETIC_DRAWS = 560_000  # x 18 settings: 10^7 random neurons, 7 x 10^7 weights
ACTIVATION_DRAWS = 20_000  # one shared weight vector per value: 8 x 10^7 weights for 4096 values


@dataclass(frozen=True)
class Config:
    """Settings of the overtaking experiment; the defaults are the command line's.

    draws: random neurons per setting (None: 560,000 on synthetic sets, 20,000 on an activation file).
    ks, n_small, n_large: the grid of synthetic sets; ratio_gammas: sigma_s/sigma_l of the weight-ratio rows.
    activations: a CSV, .npy or .npz file of one level's activations (key: the .npz entry, "<model>/<level>").
    """

    draws: int | None = None
    ks: tuple[float, ...] = (1.0, 2.0, 4.0)
    n_small: tuple[int, ...] = (1, 4, 8)
    n_large: tuple[int, ...] = (1, 4)
    ratio_gammas: tuple[float, ...] = (0.5, 1.0, 2.0)
    activations: str | None = None
    key: str | None = None
    q_high: tuple[float, ...] = theory.HIGH_QUANTILES
    q_low: tuple[float, ...] = theory.LOW_QUANTILES
    level: float = 0.999

    def __post_init__(self):
        if self.draws is not None:
            _checks.positive_int(self.draws, "draws")
        object.__setattr__(self, "ks", _checks.positive_floats(self.ks, "K"))
        object.__setattr__(self, "n_small", _checks.positive_ints(self.n_small, "n_small"))
        object.__setattr__(self, "n_large", _checks.positive_ints(self.n_large, "n_large"))
        object.__setattr__(self, "ratio_gammas", _checks.positive_floats(self.ratio_gammas, "ratio_gammas"))
        object.__setattr__(self, "q_high", _checks.probabilities(self.q_high, "q_high"))
        object.__setattr__(self, "q_low", _checks.probabilities(self.q_low, "q_low"))
        if max(self.q_low) >= min(self.q_high):
            raise ValueError(f"q_low must lie below q_high, got q_low={self.q_low}, q_high={self.q_high}")
        _checks.confidence_level(self.level)

    @classmethod
    def quick(cls) -> Config:
        return cls(draws=40_000)

    @property
    def neuron_draws(self) -> int:
        if self.draws is not None:
            return self.draws
        return ACTIVATION_DRAWS if self.activations else SYNTHETIC_DRAWS


# --------------------------------------------------------------------------- activation files


def load_activations(path, key: str | None = None) -> np.ndarray:
    """One level's activations as a flat float array from a CSV, .npy or .npz file (ValueError if unusable).

    An .npz with several entries (an empirical run's ``activation_samples.npz``) needs ``key``. Pickled
    (object) arrays are refused, never unpickled. Every refusal is one ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"activations file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv", ".txt"):
        raise ValueError(f"activations file must end in .csv, .npy or .npz, got {path.name!r}")
    try:
        values = _read_activations(path, suffix, key)
    except _KeyMissing as error:
        raise ValueError(str(error)) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"activations file {str(path)!r} is empty") from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        # numpy's refusal of pickled data, a damaged archive, binary bytes in a CSV, a cut file ...
        reason = "it holds pickled (object) arrays, which are not loaded" if "pickle" in str(error) else error
        raise ValueError(f"activations file {str(path)!r} could not be read: {reason}") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"activations file {str(path)!r} holds {values.dtype} values, not numbers")
    values = np.asarray(values, dtype=float).ravel()
    return check_activations(values, name=f"activations in {path.name}")


class _KeyMissing(ValueError):
    """The .npz has no entry of the requested key (its message lists the entries)."""


def _read_activations(path: Path, suffix: str, key: str | None) -> np.ndarray:
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            keys = sorted(archive.files)
            if key is None and len(keys) == 1:
                key = keys[0]
            if key not in keys:
                shown = ", ".join(keys[:12]) + (" ..." if len(keys) > 12 else "")
                raise _KeyMissing(f"key {key!r} is not in {path.name}; choose one of: {shown or '(none)'}")
            return archive[key]
    values = pd.read_csv(path, header=None, comment="#").apply(pd.to_numeric, errors="coerce")
    values = values.to_numpy(float)
    if values.size and np.isnan(values[0]).all():  # a header row
        values = values[1:]
    return values


def check_activations(values, name: str = "activations") -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be numbers, got {values!r:.80}")
    try:
        values = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {type(values).__name__}") from None
    if values.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"{name} holds {bad} NaN or infinite values of {values.size}")
    if values.size < 4:
        raise ValueError(f"{name} needs at least 4 values to cut quantile sets, got {values.size}")
    return values


def quantile_sets(values: np.ndarray, q_high: float, q_low: float):
    """Index masks of X_L (values >= V(q_high)) and X_S (values <= V(q_low), not in X_L), and both V."""
    v_high, v_low = np.quantile(values, [q_high, q_low])
    large = values >= v_high
    small = (values <= v_low) & ~large  # ties across the middle (sparse layers) go to X_L
    return large, small, float(v_high), float(v_low)


# --------------------------------------------------------------------------- Monte Carlo


def _count_block(size, gen, x_small, x_large, n_small, n_large):
    w_small = gen.standard_normal((size, n_small), dtype=np.float32)
    w_large = gen.standard_normal((size, n_large), dtype=np.float32)
    s, l_ = w_small @ x_small, w_large @ x_large
    positive = l_ > 0
    return (
        int(positive.sum()),
        int((positive & (s >= l_)).sum()),
        int((positive & (s * n_large >= l_ * n_small)).sum()),
    )


def _ratio_block(size, gen, ks, gamma):
    w = gen.standard_normal((2, size), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):  # w_l == 0 in float32: +-inf (or nan: False)
        ratio = (gamma * w[0]) / w[1]
    return (ratio[:, None] >= np.asarray(ks, np.float32)[None, :]).sum(axis=0)


def _synthetic_sets(k, n_small, n_large, gen):
    # Eq. 21 with equality: max X_S = 1 and min X_L = K, the rest spread below and above.
    x_small = gen.uniform(0.1, 1.0, n_small)
    x_small /= x_small.max()
    x_large = gen.exponential(1.0, n_large)
    x_large = k * (1.0 + x_large - x_large.min())
    return x_small.astype(np.float32), x_large.astype(np.float32)


def _set_rows(settings, counts, x_small, x_large, k, level):
    """The four overtaking rows of one pair of sets, from (positive, overtake-sum, overtake-average)."""
    positive, over_sum, over_avg = counts
    n_small, n_large = len(x_small), len(x_large)
    xs, xl = x_small.astype(float), x_large.astype(float)
    if not np.any(xl):
        exact = exact_avg = np.nan  # sum w_l x_l is never positive: the probability is undefined
    else:
        exact = theory.overtake_probability(xs, xl)
        exact_avg = theory.overtake_probability(xs, xl, average=True)
    return [
        verdicts.proportion_row(settings, "overtake-sum", count=over_sum, n=positive, theory=exact,
                                level=level),
        verdicts.proportion_row(settings, "overtake-sum-bound", count=over_sum, n=positive, level=level,
                                theory=theory.overtake_bound(k, n_small, n_large), relation="at_most"),
        verdicts.proportion_row(settings, "overtake-average", count=over_avg, n=positive, theory=exact_avg,
                                level=level),
        verdicts.proportion_row(settings, "overtake-average-bound", count=over_avg, n=positive, level=level,
                                theory=theory.overtake_bound_average(k, n_small, n_large),
                                relation="at_most"),
    ]


def _synthetic_rows(config: Config, rng: np.random.Generator, bar) -> list[dict]:
    grid = [(k, ns, nl) for k in config.ks for ns in config.n_small for nl in config.n_large]
    children = rng.spawn(len(grid) + 1)
    draws, rows = config.neuron_draws, []
    for (k, ns, nl), gen in zip(grid, children[:-1], strict=True):
        x_small, x_large = _synthetic_sets(k, ns, nl, gen)
        counts = _blocks.reduce_blocks(
            lambda size, g, xs=x_small, xl=x_large, ns=ns, nl=nl: _count_block(size, g, xs, xl, ns, nl),
            draws, gen, bytes_per_draw=12 * (ns + nl) + 16, combine=streaming.add, progress=bar,
        )
        gamma_1 = theory.overtake_gamma(x_small.astype(float), x_large.astype(float))
        settings = {"source": "synthetic", "q_high": np.nan, "q_low": np.nan, "K": k, "n_small": ns,
                    "n_large": nl, "gamma": gamma_1}
        rows += _set_rows(settings, counts, x_small, x_large, k, config.level)
    rows += _ratio_rows(config, children[-1], bar)
    return rows


def _ratio_rows(config, gen, bar) -> list[dict]:
    rows = []
    for gamma, g in zip(config.ratio_gammas, gen.spawn(len(config.ratio_gammas)), strict=True):
        counts = _blocks.reduce_blocks(lambda size, gg, gamma=gamma: _ratio_block(size, gg, config.ks, gamma),
                                 config.neuron_draws, g, bytes_per_draw=8 + 4 * len(config.ks),
                                         combine=streaming.add,
                                 progress=bar)
        for k, count in zip(config.ks, counts, strict=True):
            settings = {"source": "weights", "q_high": np.nan, "q_low": np.nan, "K": k, "n_small": 1,
                        "n_large": 1, "gamma": gamma}
            rows.append(verdicts.proportion_row(settings, "ratio-tail", count=int(count),
                                                n=config.neuron_draws,
                                                theory=theory.cauchy_tail(k, gamma), level=config.level))
    return rows


def _shared_block(size, gen, masked):
    # One weight per activation value, shared by every (q_high, q_low) pair: the sets of one pair are
    # disjoint, so each pair still sees independent weights on X_S and X_L.
    weights = gen.standard_normal((size, masked.shape[0]), dtype=np.float32)
    sums = weights @ masked  # (size, 3 * pairs): large, small, small scaled to the mean comparison
    pairs = masked.shape[1] // 3
    large, small, small_avg = sums[:, :pairs], sums[:, pairs:2 * pairs], sums[:, 2 * pairs:]
    positive = large > 0
    # Last two rows: the roles swapped (top set overtaking the bottom set), which section I means for
    # negative statistics, where the bottom set holds the larger magnitudes.
    swapped = small > 0
    return np.stack([positive.sum(0), (positive & (small >= large)).sum(0),
                     (positive & (small_avg >= large)).sum(0), swapped.sum(0),
                     (swapped & (large >= small)).sum(0)])


def overtake_on_activations(
    values,
    *,
    rng,
    draws: int = ACTIVATION_DRAWS,
    q_high=theory.HIGH_QUANTILES,
    q_low=theory.LOW_QUANTILES,
    level: float = 0.999,
    source: str = "activations",
    progress=None,
) -> pd.DataFrame:
    """Overtaking on one level's real activations, per (q_high, q_low) pair of seed section I.

    X_L = values >= V(q_high), X_S = values <= V(q_low); random N(0, 1) weights on every value. Rows per
    pair: the frequency against the exact probability (eq. 27-28), the gamma_2 bound with the realised
    K = min|X_L| / max|X_S| (eq. 33-36), the mean-contribution variant (eq. 37-41), and the section-I
    estimate P_gamma(Z >= V(q_high)/V(q_low)) (``overtake-section-I``; for negative statistics the top set
    overtaking the bottom one, as section I inverts K there). Section I's P is a heuristic, not a proven
    bound: its verdict may fail (its gamma is not gamma_2 of the swapped sets). Returns the table.
    """
    values = check_activations(values)
    draws = _checks.positive_int(draws, "draws")
    level = _checks.confidence_level(level)
    q_high = _checks.probabilities(np.atleast_1d(q_high).tolist(), "q_high")
    q_low = _checks.probabilities(np.atleast_1d(q_low).tolist(), "q_low")
    rng = _checks.as_generator(rng)
    pairs = [(qh, ql) for qh in q_high for ql in q_low if ql < qh]
    if not pairs:
        raise ValueError(f"no pair with q_low < q_high in q_high={q_high}, q_low={q_low}")
    cuts = [quantile_sets(values, qh, ql) for qh, ql in pairs]
    x = values.astype(np.float32)
    masked = np.zeros((values.size, 3 * len(pairs)), np.float32)
    for j, (large, small, _, _) in enumerate(cuts):
        masked[:, j] = np.where(large, x, 0)
        masked[:, len(pairs) + j] = np.where(small, x, 0)
        if small.any():
            masked[:, 2 * len(pairs) + j] = np.where(small, x, 0) * (large.sum() / small.sum())
    counts = _blocks.reduce_blocks(lambda size, g: _shared_block(size, g, masked), draws, rng,
                             bytes_per_draw=4 * (values.size + 6 * len(pairs)), combine=streaming.add,
                             progress=progress)
    rows = []
    for j, ((qh, ql), (large, small, v_high, v_low)) in enumerate(zip(pairs, cuts, strict=True)):
        x_large = values[large]
        x_small = values[small] if small.any() else np.zeros(1)
        top, bottom = np.abs(x_large).min(), np.abs(x_small).max()
        k = np.inf if bottom == 0 else top / bottom
        gamma_1 = theory.overtake_gamma(x_small, x_large) if np.any(x_large) else np.nan
        settings = {"source": source, "q_high": qh, "q_low": ql, "K": k, "n_small": int(small.sum()),
                    "n_large": int(large.sum()), "gamma": gamma_1}
        pair_counts = counts[:, j]
        rows += _set_rows(settings, pair_counts[:3], x_small, x_large, k, level)
        _, _, p_section_i = theory.overtake_from_quantiles(ql, v_low, qh, v_high)
        # Negative statistics (V(q_high) <= 0): the bottom set is the large one in magnitude, and section I
        # asks whether the top set overtakes it (theory.overtake_from_quantiles inverts K accordingly).
        negative = v_high <= 0 and v_low < 0
        over, n = (pair_counts[4], pair_counts[3]) if negative else (pair_counts[1], pair_counts[0])
        rows.append(verdicts.proportion_row(settings, "overtake-section-I", count=int(over), n=int(n),
                                            theory=p_section_i, level=level, relation="at_most"))
    return results.finish_table(rows)


def run(config: Config, *, rng) -> pd.DataFrame:
    """The overtaking table for ``config`` (synthetic grid and weight ratios, or an activation file)."""
    rng = _checks.as_generator(rng)
    with _blocks.progress_bar(NAME) as bar:
        if config.activations:
            values = load_activations(config.activations, config.key)
            return overtake_on_activations(values, rng=rng, draws=config.neuron_draws, q_high=config.q_high,
                                           q_low=config.q_low, level=config.level,
                                           source=config.key or Path(config.activations).name, progress=bar)
        return results.finish_table(_synthetic_rows(config, rng, bar))


def plot(table: pd.DataFrame, path) -> None:
    """Monte Carlo frequency (points with intervals) against the exact probability and the bound (lines)."""
    plt = cli.pyplot()
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    main = table[table["quantity"].isin(["overtake-sum", "overtake-average"])].copy()
    bound = table[table["quantity"].isin(["overtake-sum-bound", "overtake-average-bound"])]
    if table["source"].iloc[0] in ("synthetic", "weights"):
        main["setting"] = [f"K={k:g} |S|={s} |L|={n}" for k, s, n in
                           zip(main["K"], main["n_small"], main["n_large"], strict=True)]
    else:
        main["setting"] = [f"q_h={h:.2f} q_l={lo:.2f}" for h, lo in
                           zip(main["q_high"], main["q_low"], strict=True)]
    fig, axes = plt.subplots(1, 2, figsize=(13, max(4, 0.22 * len(main) / 2 + 1.5)), sharey=True)
    for ax, quantity in zip(axes, ["overtake-sum", "overtake-average"], strict=True):
        part = main[main["quantity"] == quantity]
        bnd = bound[bound["quantity"] == f"{quantity}-bound"]
        y = np.arange(len(part))
        ax.errorbar(part["estimate"], y, xerr=[part["estimate"] - part["ci_low"],
                    part["ci_high"] - part["estimate"]], fmt="o", ms=4, label="Monte Carlo")
        ax.scatter(part["theory"], y, marker="|", s=200, color="k", label="exact (eq. 27-28)")
        ax.scatter(bnd["theory"], y, marker="x", color="C3", label="gamma_2 bound (eq. 36/41)")
        ax.set_yticks(y, part["setting"])
        ax.set_xlabel(f"P({quantity.replace('overtake-', '')} of X_S >= X_L | X_L > 0)")
        ax.set_title(quantity)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Theorem 2: small activations overtaking large ones under random weights")
    cli.save_figure(fig, path)


def main(argv=None) -> int:
    parser = cli.base_parser(NAME, __doc__.split("\n\n")[0], Config,
                             draws="560000 on synthetic sets, 20000 on an activation file")
    parser.add_argument("--activations", default=None, metavar="FILE",
                        help=cli_options.default_help("CSV, .npy or .npz of one level's activations",
                                                      "synthetic sets"))
    parser.add_argument("--key", default=None,
                        help=cli_options.default_help("entry of the .npz, e.g. resnet50/6", "its only entry"))
    parser.add_argument("--K", dest="ks", type=float, nargs="+", default=None, metavar="K",
                        help=cli.config_help("grid of K", Config, "ks"))
    parser.add_argument("--n-small", type=cli_options.positive_int, nargs="+", default=None, metavar="N",
                        help=cli.config_help("grid of |X_S|", Config, "n_small"))
    parser.add_argument("--n-large", type=cli_options.positive_int, nargs="+", default=None, metavar="N",
                        help=cli.config_help("grid of |X_L|", Config, "n_large"))

    def config_from_args(args):
        extra = {"activations": args.activations, "key": args.key, "ks": args.ks,
                 "n_small": args.n_small, "n_large": args.n_large}
        return cli.start_config(Config, args, **extra)

    return cli.cli_main(argv, name=NAME, parser=parser, config_from_args=config_from_args, run=run, plot=plot)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Config", "check_activations", "load_activations", "main", "overtake_on_activations", "plot",
           "quantile_sets", "run"]
