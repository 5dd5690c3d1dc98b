"""Report section "What each test rewards": every test's score against the noise level s.

Reads ``rewards.csv`` of the empirical run (``empirical.experiments.rewards``: each base method M replaced
by M+noise(s) = M + s RMS(M) Z, scored by MPRT with SSIM, Spearman and MSE after both normalisations,
sMPRT, eMPRT, and the MoRF and LeRF areas and their gap) and the run's declared choices of that experiment.
The default report's demo run computes it; a run of any profile (``python -m empirical rewards``, or
``all``) brings it to a report ``--from`` it.

A test *rewards noise* when its score improves (in the test's own direction) as s grows: the 95% t interval
over images of the per-image least-squares slope of the oriented score against s lies above 0; it
*penalises noise* when it lies below 0, and is *indifferent* otherwise. The closed forms of
``theory.noise_injection`` (case (b): independent noises on both maps), from each image's clean-pair
moments, are drawn over the measured second-moment-normalised MSE and Spearman. The rank tables and their
reliability (``reports.ranking``) rank the methods themselves (s = 0) by every test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from empirical.results import DEFAULT_LEVELS, TEST_DIRECTIONS
from reports import figures, ranking
from reports.render import Figure, Note, Paragraph, Section, Table

__all__ = ["LEVELS", "NOISE_MARGINS", "TEST_DIRECTIONS", "rewards_section", "slope_verdicts",
           "verdict_summary"]

LEVELS = DEFAULT_LEVELS
#: the verdict table is shown whole up to this many rows, else as a test x method summary
SHOWN_ROWS = 24


#: the correction over the family of noise-injection verdicts (statsmodels.stats.multitest.multipletests)
NOISE_CORRECTION = "holm"
#: the family: every (network, test, method) verdict of one run
NOISE_FAMILY = "every test x base method x network of the run"


def _margin(per_unit: float, units: str, reason: str) -> dict:
    return {"margin": per_unit, "units": units, "reason": reason}


_SIMILARITY = _margin(0.05, "score per unit s", "SSIM and Spearman lie in [-1, 1]; 0.05 per unit s (0.1 over "
                      "s = 0..2) is 2.5% of that range per unit s")
#: smallest oriented slope (score per unit noise level s) that matters, per test, with its units and reason:
#: "indifferent" only when the slope's interval lies inside +-margin (TOST); every test: 2.5% of its range
NOISE_MARGINS = {
    **{f"MPRT {m} ({n})": _SIMILARITY for m in ("ssim", "spearman") for n in ("second-moment", "max-abs")},
    **{f"MPRT mse ({n})": _margin(0.1, "normalised MSE per unit s", "the normalised MSE lies in [0, 4] (seed "
                                  "eq. 12-19); 0.1 per unit s is 2.5% of that range")
       for n in ("second-moment", "max-abs")},
    "sMPRT (spearman)": _SIMILARITY,
    "eMPRT": _margin(0.025, "relative entropy rise per unit s",
                     "the relative rise in entropy (H_random - H_original) / H_original is a fraction of the "
                     "original entropy; 0.025 per unit s is 2.5% of it"),
    "MoRF area": _margin(0.025, "area per unit s",
                         "the area under a perturbation curve lies in [0, 1]; 0.025 per unit s is 2.5% of "
                         "that range"),
    "LeRF area": _margin(0.025, "area per unit s", "as MoRF area"),
    "gap LeRF-MoRF": _margin(0.05, "area per unit s", "the gap lies in [-1, 1]; 0.05 per unit s is 2.5% of "
                             "that range"),
}


def _slope_statistics(slopes: np.ndarray, margin: float, level: float) -> dict:
    """Mean slope, its t interval, the t test of 0 (two-sided) and TOST of |slope| < margin (statsmodels),
    and the images a decision would need at the same mean and sd (t quantile, before Holm's correction)."""
    n = len(slopes)
    mean = float(slopes.mean()) if n else np.nan
    sd = float(slopes.std(ddof=1)) if n > 1 else np.nan
    out = {"slope": mean, "ci_low": np.nan, "ci_high": np.nan, "images": n, "p_value": np.nan,
           "p_equivalence": np.nan, "images_needed": np.nan}
    if n < 2:
        return out
    if sd <= 1e-12 * max(1.0, abs(mean)):  # every image has the same slope: the data decide exactly
        exact = abs(mean) <= 1e-12
        return {**out, "ci_low": mean, "ci_high": mean, "p_value": 1.0 if exact else 0.0,
                "p_equivalence": 0.0 if abs(mean) < margin else 1.0, "images_needed": n}
    described = DescrStatsW(slopes)
    low, high = described.tconfint_mean(alpha=1.0 - level)
    p_value = float(described.ttest_mean(0.0)[1])
    p_equivalence = float(described.ttost_mean(-margin, margin)[0])
    # the interval decides once its half-width falls below the distance to 0 (a difference) or to the margin
    # (equivalence): t_{m-1} sd / sqrt(m) < d, at the same mean and sd (before the family's correction)
    targets = ((0.5 + level / 2, abs(mean)), (level, margin - abs(mean)))
    needed = [_images_to_decide(sd, d, q) for q, d in targets if d > 0]
    return {**out, "ci_low": float(low), "ci_high": float(high), "p_value": p_value,
            "p_equivalence": p_equivalence, "images_needed": min(needed) if needed else np.nan}


def _images_to_decide(sd: float, distance: float, quantile: float, search: int = 10_000) -> int:
    """The fewest images m >= 2 with t_{m-1}(quantile) sd / sqrt(m) < distance (scipy's t quantile): the
    normal approximation (z sd / d)^2 is the start, and m grows from there while the t quantile of m - 1
    degrees of freedom is still too wide (at n = 2 the normal form says 2 where the t needs far more)."""
    start = max(2, int(np.ceil((stats.norm.ppf(quantile) * sd / distance) ** 2)))
    m = np.arange(start, start + search)
    wide_enough = stats.t.ppf(quantile, m - 1) * sd / np.sqrt(m) < distance
    return int(m[np.argmax(wide_enough)]) if wide_enough.any() else start + search


def slope_verdicts(scores: pd.DataFrame, directions=TEST_DIRECTIONS, level: float = 0.95,
                   margins=None) -> pd.DataFrame:
    """Per ([model,] test, method): mean over images of the least-squares slope of the oriented score (+
    where the test's better direction) against s, its t interval, and the verdict.

    The rows given form one family: the t tests of slope 0 and the equivalence tests (TOST, slope inside
    +-``margins[test]["margin"]``) are each Holm-corrected over it (statsmodels ``multipletests``).
    Verdict: "rewards noise" / "penalises noise" where the corrected test of 0 rejects at 1 - ``level``,
    else "indifferent" where the corrected TOST does, else "cannot tell at n = <images>" (``images_needed``:
    about how many images would decide). ``verdict_uncorrected``: the earlier rule (the raw interval above
    0, below 0, else indifferent), kept for the before/after note. Seed section 6 (noise injection, eq. 12-19
    for the normalised MSE).
    """
    margins = NOISE_MARGINS if margins is None else margins
    out = []
    keys = ["model", "test", "method"] if "model" in scores.columns else ["test", "method"]
    for key, part in scores.groupby(keys, sort=False):
        test, method = key[-2:]
        if test not in margins:
            raise ValueError(f"margins has no smallest effect for test {test!r}")
        sign = 1.0 if directions[test] else -1.0
        wide = part.pivot(index="image", columns="level", values="value").dropna()
        s = wide.columns.to_numpy(float)
        centred = s - s.mean()
        values = wide.to_numpy()
        slopes = sign * ((values - values.mean(1, keepdims=True)) @ centred) / (centred @ centred)
        slopes = slopes[np.isfinite(slopes)]
        row = _slope_statistics(slopes, float(margins[test]["margin"]), level)
        low, high = row["ci_low"], row["ci_high"]
        uncorrected = ("rewards noise" if low > 0 else "penalises noise" if high < 0 else "indifferent")
        out.append({**dict(zip(keys, key, strict=True)), **row, "margin": float(margins[test]["margin"]),
                    "verdict_uncorrected": uncorrected})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    alpha = 1.0 - level
    for column in ("p_value", "p_equivalence"):
        table[f"{column}_holm"] = _holm(table[column].to_numpy(float))
    different = table["p_value_holm"] < alpha
    equivalent = table["p_equivalence_holm"] < alpha
    cannot = "cannot tell at n = " + table["images"].astype(str)
    table["verdict"] = np.where(different, np.where(table["slope"] > 0, "rewards noise", "penalises noise"),
                                np.where(equivalent, "indifferent", cannot))
    columns = [*keys, "slope", "ci_low", "ci_high", "images", "margin", "p_value", "p_value_holm",
               "p_equivalence", "p_equivalence_holm", "verdict", "images_needed", "verdict_uncorrected"]
    return table[columns]


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-corrected p-values (statsmodels) of the finite entries; NaN stays NaN."""
    corrected = np.full(p_values.shape, np.nan)
    finite = np.isfinite(p_values)
    if finite.any():
        corrected[finite] = multipletests(p_values[finite], method=NOISE_CORRECTION)[1]
    return corrected


def margin_table(tests) -> pd.DataFrame:
    """test, margin, units, reason of :data:`NOISE_MARGINS` for ``tests``."""
    return pd.DataFrame([{"test": test, **NOISE_MARGINS[test]} for test in tests])


def verdict_changes(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts the family's correction and the equivalence test changed, one row each with why."""
    changed = verdicts[verdicts["verdict"] != verdicts["verdict_uncorrected"]]
    rows = []
    size = len(verdicts)
    for row in changed.itertuples(index=False):
        where = " ".join(str(getattr(row, k)) for k in ("model", "test", "method") if hasattr(row, k))
        if row.verdict_uncorrected != "indifferent":
            why = (f"the raw 95% interval excludes 0 (p = {row.p_value:.2g}) but the Holm-corrected p over "
                   f"the {size} verdicts is {row.p_value_holm:.2g}")
        else:
            why = (f"the interval [{row.ci_low:.3g}, {row.ci_high:.3g}] spans 0 but not the margin "
                   f"+-{row.margin:g} (TOST Holm p = {row.p_equivalence_holm:.2g}): too few images, about "
                   f"{row.images_needed:.0f} would decide")
        rows.append({"where": where, "before": row.verdict_uncorrected, "after": row.verdict, "why": why})
    return pd.DataFrame(rows, columns=["where", "before", "after", "why"])


def verdict_changes_text(verdicts: pd.DataFrame) -> str:
    """The before/after note: the counts of decided verdicts and one line per changed verdict."""
    before = (verdicts["verdict_uncorrected"] != "indifferent").sum()
    after = verdicts["verdict"].isin(["rewards noise", "penalises noise"]).sum()
    changes = verdict_changes(verdicts)
    head = (f"Before and after the family's correction and the equivalence test: {before} of {len(verdicts)} "
            f"verdicts said 'rewards' or 'penalises noise' by their own 95% interval, {after} do after "
            f"{NOISE_CORRECTION.capitalize()}; {(verdicts['verdict_uncorrected'] == 'indifferent').sum()} "
            f"said 'indifferent', {(verdicts['verdict'] == 'indifferent').sum()} do with TOST. "
            f"{len(changes)} changed")
    lines = [f"{c.where}: {c.before} -> {c.after} ({c.why})" for c in changes.itertuples(index=False)]
    return head + (": " + "; ".join(lines) + "." if lines else ".")


def is_decided(verdict: str) -> bool:
    """Whether a noise-injection verdict is one of the three decided words (not "cannot tell ...")."""
    return verdict in ("rewards noise", "penalises noise", "indifferent")


def _plot(scores: pd.DataFrame, closed: pd.DataFrame, path) -> None:
    plt = figures.plt
    present = set(scores["test"])
    tests = [t for t in TEST_DIRECTIONS if t in present] + sorted(present - set(TEST_DIRECTIONS))
    columns = 4
    rows = -(-len(tests) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.5 * rows), squeeze=False)
    for axis, test in zip(axes.flat, tests, strict=False):
        for method, part in scores[scores["test"] == test].groupby("method"):
            mean = part.groupby("level")["value"].mean()
            line, = axis.plot(mean.index, mean.to_numpy(), marker="o", label=method)
            theory_part = closed if closed.empty else closed[(closed["test"] == test)
                                                             & (closed["method"] == method)]
            if not theory_part.empty:
                predicted = theory_part.groupby("level")["theory"].mean()
                axis.plot(predicted.index, predicted.to_numpy(), ls="--", color=line.get_color(),
                          label=f"{method} theory")
        axis.set_title(test, fontsize=8)
        axis.set_xlabel("noise level s", fontsize=7)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(tests):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    figures._save(fig, path)


def verdict_summary(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Tests x (model, method): the verdict word with its slope interval, for a table too long to show."""
    cell = verdicts.assign(cell=verdicts["verdict"].str.replace(" noise", "") + " ["
                           + verdicts["ci_low"].map("{:.3g}".format) + ", "
                           + verdicts["ci_high"].map("{:.3g}".format) + "]")
    columns = ["model", "method"] if "model" in verdicts.columns else ["method"]
    wide = cell.pivot_table(index="test", columns=columns, values="cell", aggfunc="first", sort=False)
    wide.columns = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in wide.columns]
    return wide.reindex([t for t in TEST_DIRECTIONS if t in wide.index]).reset_index()


def _settings(run) -> str:
    options = ((run.manifest.get("config") or {}).get("options") or {})
    models = {model: chosen.get("rewards") for model, chosen in options.items() if chosen.get("rewards")}
    if not models:
        return ""
    model, chosen = next(iter(models.items()))
    return (f" Settings ({model}): sMPRT {chosen.get('smprt_samples', 3)} noisy inputs of noise "
            f"{chosen.get('smprt_noise', 0.1)} (Quantus's default noise; its default 50 samples cut for run "
            f"time), Spearman; eMPRT {chosen.get('emprt_bins', 100)} equal-width bins; MoRF/LeRF at patch "
            f"{chosen.get('patch_size')}, {chosen.get('steps')} steps, box blur {chosen.get('blur_kernel')}; "
            "every choice per model in rewards.choices.json.")


def rewards_section(context) -> Section:
    """The section: settings, the score-vs-s figure, one verdict per test, rank tables and reliability."""
    section = Section("6. What each test rewards", "rewards")
    run = context.run
    table = None if run is None else run.table("rewards.csv")
    if table is None or table.empty:
        where = "no empirical run" if run is None else f"the run at {run.path} has no rewards.csv"
        section.blocks.append(Note(f"Not computed: {where}; `python -m empirical rewards --profile P --out "
                                   "DIR` (or `all`) makes it."))
        return section
    levels = sorted(table["level"].unique())
    section.blocks.append(Paragraph(
        f"Models {', '.join(sorted(table['model'].unique()))}; base methods "
        f"{', '.join(dict.fromkeys(table['method']))}; {table['image'].nunique()} images; noise levels s = "
        f"{', '.join(f'{s:g}' for s in levels)} (M + s RMS(M) Z, a fresh Z for every map). MPRT: original "
        "vs fully randomised model (the seed's top-down schedule, every step); sMPRT and eMPRT on the same "
        "two models." + _settings(run) + " Verdict per (network, test, method) on the slope of the score "
        "against s over images, oriented so that + is better by the test: a t test of slope 0 and an "
        "equivalence test (TOST) of |slope| < the test's smallest effect that matters (table below), each "
        f"corrected by {NOISE_CORRECTION.capitalize()} over the family ({NOISE_FAMILY}) at level 0.05: "
        "'rewards noise' or 'penalises noise' where the corrected t test rejects, 'indifferent' only where "
        "the corrected TOST does, else 'cannot tell at n = <images>' (images_needed: about how many images "
        "would decide at the same mean and sd, by the t quantile and before the correction, which needs "
        "more). Dashed: theory.noise_injection (case b) from each image's "
        "clean-pair moments."))
    verdicts = []
    for model, part in table.groupby("model", sort=False):
        scores = part[["test", "method", "level", "image", "value"]]
        closed = part.dropna(subset=["theory"])[["test", "method", "level", "image", "theory"]]
        path = f"figures/rewards_vs_noise_{model}.png"
        try:
            _plot(scores, closed, context.out / path)
            section.blocks.append(Figure(path, f"{model}: mean score against noise level s; dashed: closed "
                                               "form"))
        except ValueError as error:
            section.blocks.append(Note(f"Figure not drawn: {error}"))
    verdicts = slope_verdicts(table)  # one family: every network, test and method of the run
    order = {test: k for k, test in enumerate(TEST_DIRECTIONS)}
    methods = {method: k for k, method in enumerate(dict.fromkeys(table["method"]))}
    verdicts = verdicts.sort_values(["model", "method", "test"], kind="mergesort", key=lambda column: (
        column.map(methods) if column.name == "method" else column.map(order) if column.name == "test"
        else column)).reset_index(drop=True)
    verdicts.to_csv(context.out / "tables" / "rewards_verdicts.csv", index=False)
    context.rewards_verdicts = verdicts
    caption = ("One verdict per test and base method (slope of the oriented score per unit s, 95% t interval "
               f"over images); family: {NOISE_FAMILY}, {len(verdicts)} verdicts, correction: "
               f"{NOISE_CORRECTION.capitalize()} (statsmodels multipletests), margins: the table below")
    shown = verdicts if len(verdicts) <= SHOWN_ROWS else verdict_summary(verdicts)
    if shown is not verdicts:
        caption += "; each cell: the verdict [interval of the slope]"
    section.blocks.append(Table(shown, caption, "tables/rewards_verdicts.csv"))
    margins = margin_table(verdicts["test"].unique())
    margins.to_csv(context.out / "tables" / "rewards_margins.csv", index=False)
    section.blocks.append(Table(margins, "Smallest effect that matters per test (the TOST margin of "
                                "'indifferent')", "tables/rewards_margins.csv"))
    section.blocks.append(Note(verdict_changes_text(verdicts)))
    for model, part in table[table["level"] == 0].groupby("model", sort=False):
        _reliability(context, section, model, part)
    return section


def _reliability(context, section: Section, model: str, clean: pd.DataFrame) -> None:
    """Rank tables and their reliability of the methods themselves (s = 0) by every test."""
    if clean["method"].nunique() < 2:
        section.blocks.append(Note(f"{model}: one base method only, so there is no ranking to assess."))
        return
    try:
        order = {test: k for k, test in enumerate(TEST_DIRECTIONS)}
        clean = clean.sort_values("test", key=lambda column: column.map(order), kind="mergesort")
        tests = ranking.scores_from_long(clean, TEST_DIRECTIONS, score="value")
        reliability = ranking.ranking_reliability(tests, rng=context.rng(f"rewards-ranking-{model}"),
                                                  resamples=500)
    except ValueError as error:
        section.blocks.append(Note(f"{model}: no ranking reliability: {error}"))
        return
    for name, caption in (("ranks", "rank of each method by each test (1 = best)"),
                          ("concordance", "Kendall's W across images, per test"),
                          ("intervals", "bootstrap 95% intervals of each method's rank (500 resamples)"),
                          ("correlations", "Spearman correlation of the rank vectors of each pair of tests")):
        frame = reliability[name]
        frame = frame.reset_index() if name == "ranks" else frame
        relative = f"tables/rewards_{name}_{model}.csv"
        frame.to_csv(context.out / relative, index=False)
        section.blocks.append(Table(frame, f"{model}: {caption}", relative))
