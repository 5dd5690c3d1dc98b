"""The report's figures, one function a figure: seaborn on the Agg backend, one PNG each.

Each function takes a tidy table (docs/results-format.md) and a path, writes the PNG and returns the
path. Titles say what is shown and which direction the test counts as passing (its convention, not
ours: the random-uniform control often "passes" randomisation checks best, and is marked where it does);
bands are 95% t intervals of the mean over images (no bootstrap, so large runs stay fast). Plain matplotlib
axes in seaborn's style: one figure takes about a second where seaborn's relplot took several.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy.stats import t as t_distribution  # noqa: E402

DPI = 100
MEASURE_LABELS = {
    "ssim": ("SSIM to the original map", "the check counts lower as passing"),
    "mse": ("MSE to the original map", "the check counts higher as passing"),
    "spearman": ("Spearman rank correlation to the original map", "the check counts lower as passing"),
    "spearman-abs": ("Spearman rank correlation of |map| to the original",
                     "the check counts lower as passing"),
}
#: the direction in which each randomisation measure counts as passing (+1: higher passes)
_PASSING_SIGN = {"ssim": -1, "mse": 1, "spearman": -1, "spearman-abs": -1}
_CONTROL = "random-uniform"  # the random control (reports.claims.CONTROL_METHOD)
_CONTROL_MARK = "random control passes best here"


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # tight bounding box: tick labels and axis labels wider than their axes are kept, not clipped
    figure.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    plt.close(figure)
    return path


def _title(figure, text: str) -> None:
    # about 10 characters of an 11-point title per inch: wrap instead of running off the figure
    width = max(40, int(figure.get_figwidth() * 10.5))
    figure.suptitle(textwrap.fill(text, width), fontsize=11)


def _panels(
    count: int,
    *,
    width: float = 4.3,
    height: float = 3.1,
    columns: int = 3,
    minimum: float = 8.0,
    integer_x: bool = True,
):
    """A grid of ``count`` axes (at most ``columns`` a row), at least ``minimum`` inches wide."""
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    size = (max(width * columns, minimum), max(height * rows, 3.6))
    with sns.axes_style("whitegrid"):
        figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False, layout="constrained")
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    if integer_x:  # steps and levels are counts
        for axis in axes.flat:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, list(axes.flat)[:count]


def _mean_band(data: pd.DataFrame, keys: list[str], value: str, clip=(-np.inf, np.inf)) -> pd.DataFrame:
    """Mean and 95% t band (over the rows) of ``value`` per ``keys``, clipped to the value's range."""
    summary = data.groupby(keys, sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    count = summary["count"].to_numpy(float)
    # t quantile, not 1.96: a --quick run has two images, where the normal band would be far too narrow
    factor = np.where(count > 1, t_distribution.ppf(0.975, np.maximum(count - 1, 1)), 0.0)
    half = factor * summary["std"].fillna(0.0) / np.sqrt(count)
    low, high = (summary["mean"] - half).clip(*clip), (summary["mean"] + half).clip(*clip)
    return summary.assign(low=low, high=high)


def _method_lines(axis, summary: pd.DataFrame, x: str, colours: dict, *, marker: str | None = None) -> None:
    for method, rows in summary.groupby("method", sort=True):
        axis.plot(rows[x], rows["mean"], color=colours[method], marker=marker, markersize=3, label=method)
        axis.fill_between(rows[x], rows["low"], rows["high"], color=colours[method], alpha=0.12, linewidth=0)


def _colours(methods) -> dict:
    methods = sorted(set(methods))
    return dict(zip(methods, sns.color_palette("tab10", len(methods)), strict=True))


def _legend(figure, axes, title: str) -> None:
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, title=title, loc="outside right center", frameon=False, fontsize="small")


def randomization(table: pd.DataFrame, measure: str, normalization: str, path: Path) -> Path:
    """Seed figures 4-6: similarity per randomisation step and method, a panel a model, noise floor dashed."""
    data = table[(table["measure"] == measure) & (table["normalization"] == normalization)]
    if data.empty:
        raise ValueError(f"no randomization rows for measure={measure!r}, normalization={normalization!r}")
    label, better = MEASURE_LABELS.get(measure, (measure, ""))
    models = sorted(data["model"].unique())
    colours = _colours(data["method"])
    summary = _mean_band(data, ["model", "method", "step"], "value")
    floor = data.groupby(["model", "step"], as_index=False)["noise_floor"].mean()
    figure, axes = _panels(len(models))
    for axis, model in zip(axes, models, strict=True):
        _method_lines(axis, summary[summary["model"] == model], "step", colours, marker="o")
        rows = floor[floor["model"] == model]
        axis.plot(
            rows["step"],
            rows["noise_floor"],
            color="black",
            linestyle="--",
            linewidth=1.2,
            label="noise floor (zero covariance)",
        )
        axis.set_title(model)
        axis.set_xlabel("randomisation step (1 = classifier)")
        axis.set_ylabel(f"{measure} (unitless)")
        _mark_control(axis, _control_wins_randomization(data[data["model"] == model], measure))
    _legend(figure, axes, "method")
    _title(
        figure,
        f"{label} after {normalization} normalisation ({better}); dashed: noise floor; "
        "bands: 95% over images",
    )
    return _save(figure, path)


def faithfulness(table: pd.DataFrame, patch_size: int, path: Path, *,
                 score_label: str = "softmax score (explained class)") -> Path:
    """Seed figures 1-3: softmax score of the explained class per alteration step and method (``score_label``
    names another score: the sigmoid of the top predicted label for multi-label runs, seed A.3)."""
    data = table[table["patch_size"] == patch_size]
    if data.empty:
        raise ValueError(f"no faithfulness rows for patch_size={patch_size!r}")
    models = sorted(data["model"].unique())
    colours = _colours(data["method"])
    summary = _mean_band(data, ["model", "method", "step"], "score", clip=(0.0, 1.0))  # probabilities
    figure, axes = _panels(len(models))
    for axis, model in zip(axes, models, strict=True):
        _method_lines(axis, summary[summary["model"] == model], "step", colours)
        axis.set_title(model)
        axis.set_xlabel("patches replaced by the blurred copy")
        axis.set_ylabel(score_label)
    _legend(figure, axes, "method")
    _title(
        figure,
        f"Region alteration, {patch_size}x{patch_size} patches (the test counts a faster drop as more "
        "faithful; bands: 95% over images)",
    )
    return _save(figure, path)


def faithfulness_area(ranking: pd.DataFrame, path: Path) -> Path:
    """Mean area under the alteration curve per method with its 95% t interval (the MoRF test counts a lower
    area as more faithful); the random control in red, and marked where it has the lowest area."""
    data = ranking.copy()
    data["panel"] = data["model"].astype(str) + ", patch " + data["patch_size"].astype(str)
    panels = list(dict.fromkeys(data["panel"]))
    figure, axes = _panels(
        len(panels), width=4.2, height=0.4 * data["method"].nunique() + 1.6, integer_x=False
    )
    for axis, panel in zip(axes, panels, strict=True):
        rows = data[data["panel"] == panel].sort_values("mean_area")
        y = np.arange(len(rows))
        axis.errorbar(
            rows["mean_area"],
            y,
            xerr=[rows["mean_area"] - rows["ci_low"], rows["ci_high"] - rows["mean_area"]],
            fmt="none",
            ecolor="grey",
            capsize=3,
        )
        control = (rows["method"] == _CONTROL).to_numpy()
        axis.scatter(rows["mean_area"], y, c=np.where(control, "tab:red", "tab:blue"), zorder=3)
        axis.set_yticks(y, rows["method"])
        axis.invert_yaxis()
        axis.set_title(panel)
        axis.set_xlabel("mean area under the score curve")
        _mark_control(axis, _control_wins_area(rows))
    _title(figure, "Faithfulness ranking: mean area per method, 95% interval (the test counts lower as more "
           "faithful; red: the random control)")
    return _save(figure, path)


def _control_wins_randomization(data: pd.DataFrame, measure: str) -> bool:
    """Whether the random control's mean score at the last step is what the check counts as passing best."""
    if _CONTROL not in set(data["method"]):
        return False
    last = data[data["step"] == data["step"].max()].groupby("method")["value"].mean()
    sign = _PASSING_SIGN.get(measure, -1)
    return bool(len(last) > 1 and (sign * last).idxmax() == _CONTROL)


def _control_wins_area(rows: pd.DataFrame) -> bool:
    """Whether the random control has the lowest mean area (ties included): what the MoRF test counts as
    most faithful."""
    control = rows[rows["method"] == _CONTROL]
    return bool(len(control) and len(rows) > 1 and control["mean_area"].min() <= rows["mean_area"].min())


def _mark_control(axis, wins: bool) -> None:
    if wins:
        axis.text(0.98, 0.98, _CONTROL_MARK, transform=axis.transAxes, ha="right", va="top", fontsize=8,
                  color="tab:red", bbox=dict(facecolor="white", edgecolor="tab:red", alpha=0.85))


def overtaking(activations: pd.DataFrame, model: str, path: Path, *, max_levels: int = 6) -> Path:
    """Seed figures 7-9: P(Z >= K) per level against the bottom percentage, one line per top percentage."""
    data = activations[(activations["model"] == model) & (activations["statistic"] == "P")]
    if data.empty:
        raise ValueError(f"no overtaking rows (statistic 'P') for model {model!r}")
    levels = _spread(sorted(data["level"].unique()), max_levels)
    figure, axes = _panels(len(levels), width=3.8, height=2.9)
    highs = sorted(data["q_high"].unique(), reverse=True)
    colours = dict(zip(highs, sns.color_palette("tab10", len(highs)), strict=True))
    for axis, level in zip(axes, levels, strict=True):
        rows = data[data["level"] == level]
        for q_high in highs:
            line = rows[rows["q_high"] == q_high].sort_values("q_low")
            axis.plot(
                line["q_low"] * 100,
                line["value"],
                marker="o",
                markersize=3,
                color=colours[q_high],
                label=f"top {round((1 - q_high) * 100)} %",
            )
        axis.set_title(f"{model}, level {level}")
        axis.set_xlabel("bottom % of activations")
        axis.set_ylabel("P(Z >= K)")
    _legend(figure, axes, "large set")
    _title(
        figure, f"{model}: Theorem 2 tail probabilities from activation quantiles (lower supports Theorem 2)"
    )
    return _save(figure, path)


def overtaking_monte_carlo(table: pd.DataFrame, path: Path, *, quantity: str = "overtake-sum") -> Path:
    """Monte Carlo overtaking frequency on real activations against the exact eq. 27-28, per level.

    One panel per (model, level): x the bottom percentage, points the Monte Carlo frequency with its
    interval, lines the exact probability, one colour per top percentage.
    """
    data = table[table["quantity"] == quantity].sort_values(["model", "activation_level", "q_high", "q_low"])
    if data.empty:
        raise ValueError(f"no {quantity!r} rows in the Monte Carlo table")
    panels = list(dict.fromkeys(zip(data["model"], data["activation_level"], strict=True)))
    figure, axes = _panels(len(panels), height=3.2, integer_x=False)
    colours = dict(
        zip(sorted(data["q_high"].unique(), reverse=True), sns.color_palette("tab10"), strict=False)
    )
    for axis, (model, level) in zip(axes, panels, strict=True):
        panel = data[(data["model"] == model) & (data["activation_level"] == level)]
        for q_high, rows in panel.groupby("q_high", sort=False):
            x = (rows["q_low"] * 100).to_numpy()
            colour = colours[q_high]
            top = f"top {round((1 - q_high) * 100)} %"
            axis.errorbar(
                x,
                rows["estimate"],
                yerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
                fmt="o",
                ms=3,
                capsize=2,
                color=colour,
                label=f"{top}: Monte Carlo",
            )
            axis.plot(x, rows["theory"], "-", color=colour, alpha=0.7, label=f"{top}: exact")
        axis.set_title(f"{model}, level {level}")
        axis.set_xlabel("bottom % of activations (q_low x 100)")
        axis.set_ylabel("P(bottom set overtakes top set)")
    _legend(figure, axes, "large set")
    _title(
        figure,
        "Random N(0, 1) weights on real activations: overtaking frequency (points, interval) vs exact eq. "
        "27-28 (lines); lower supports Theorem 2",
    )
    return _save(figure, path)


def nonpositive(activations: pd.DataFrame, path: Path) -> Path:
    """Seed figure 10: fraction of non-positive activations per level, one panel a model."""
    data = activations[activations["statistic"] == "nonpositive_fraction"]
    if data.empty:
        raise ValueError("no 'nonpositive_fraction' rows in activations.csv")
    models = sorted(data["model"].unique())
    figure, axes = _panels(len(models), width=5.5, height=3.0)
    for axis, model in zip(axes, models, strict=True):
        rows = data[data["model"] == model].groupby("level", as_index=False)["value"].mean()
        axis.bar(rows["level"], rows["value"], color="tab:blue", width=0.8)
        axis.set_ylim(0, 1)
        axis.set_title(model)
        axis.set_xlabel("level (input of the n-th convolution or linear layer)")
        axis.set_ylabel("fraction of values <= 0")
    _title(figure, "Non-positive activations per level (higher = sparser input to the layer)")
    return _save(figure, path)


def _spread(values: list, count: int) -> list:
    if len(values) <= count:
        return list(values)
    picks = np.unique(np.linspace(0, len(values) - 1, count).round().astype(int))
    return [values[i] for i in picks]
