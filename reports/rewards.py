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

from empirical.experiments.noisy import DEFAULT_LEVELS
from empirical.experiments.rewards import TEST_DIRECTIONS
from reports import figures, ranking
from reports.render import Figure, Note, Paragraph, Section, Table

__all__ = ["LEVELS", "TEST_DIRECTIONS", "rewards_section", "slope_verdicts", "verdict_summary"]

LEVELS = DEFAULT_LEVELS
#: the verdict table is shown whole up to this many rows, else as a test x method summary
SHOWN_ROWS = 24


def slope_verdicts(scores: pd.DataFrame, directions=TEST_DIRECTIONS, level: float = 0.95) -> pd.DataFrame:
    """Per ([model,] test, method): mean over images of the least-squares slope of the oriented score (+
    where the test's better direction) against s, its t interval, and the verdict (module docstring)."""
    out = []
    keys = ["model", "test", "method"] if "model" in scores.columns else ["test", "method"]
    for key, part in scores.groupby(keys, sort=False):
        test, method = key[-2:]
        sign = 1.0 if directions[test] else -1.0
        wide = part.pivot(index="image", columns="level", values="value").dropna()
        s = wide.columns.to_numpy(float)
        centred = s - s.mean()
        values = wide.to_numpy()
        slopes = sign * ((values - values.mean(1, keepdims=True)) @ centred) / (centred @ centred)
        slopes = slopes[np.isfinite(slopes)]
        mean, n = float(slopes.mean()), len(slopes)
        half = (float(stats.t.ppf(0.5 + level / 2, n - 1) * slopes.std(ddof=1) / np.sqrt(n)) if n > 1
                else np.inf)
        low, high = mean - half, mean + half
        verdict = "rewards noise" if low > 0 else "penalises noise" if high < 0 else "indifferent"
        out.append({**dict(zip(keys, key, strict=True)), "slope": mean, "ci_low": low, "ci_high": high,
                    "images": n, "verdict": verdict})
    return pd.DataFrame(out)


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
        "two models." + _settings(run) + " Verdict: 95% t interval over images of the slope of the score "
        "against s, oriented so that + is better by the test: above 0 rewards noise, below 0 penalises it, "
        "else indifferent. Dashed: theory.noise_injection (case b) from each image's clean-pair moments."))
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
        verdicts.append(slope_verdicts(part))
    verdicts = pd.concat(verdicts, ignore_index=True)
    order = {test: k for k, test in enumerate(TEST_DIRECTIONS)}
    methods = {method: k for k, method in enumerate(dict.fromkeys(table["method"]))}
    verdicts = verdicts.sort_values(["model", "method", "test"], kind="mergesort", key=lambda column: (
        column.map(methods) if column.name == "method" else column.map(order) if column.name == "test"
        else column)).reset_index(drop=True)
    verdicts.to_csv(context.out / "tables" / "rewards_verdicts.csv", index=False)
    context.rewards_verdicts = verdicts
    caption = ("One verdict per test and base method (slope of the oriented score per unit s, 95% t interval "
               "over images)")
    shown = verdicts if len(verdicts) <= SHOWN_ROWS else verdict_summary(verdicts)
    if shown is not verdicts:
        caption += "; each cell: the verdict [interval of the slope]"
    section.blocks.append(Table(shown, caption, "tables/rewards_verdicts.csv"))
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
