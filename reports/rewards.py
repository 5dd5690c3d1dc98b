"""Report section "What each test rewards" (issue 15): every test's score against the noise level s.

On the demo network (packaged weights, held-out digits), each base method M is replaced by M+noise(s) =
M + s RMS(M) Z (``empirical.experiments.noisy``; Z iid N(0, 1) a pixel, a fresh Z for every model and
call) at s in ``LEVELS``, and every test scores it:

- MPRT (seed A.1, H): similarity of the original model's noisy map with the fully randomised model's (the
  seed's top-down schedule, every step), SSIM (Theorem 1), Spearman (Theorem 3) and MSE (Theorem 4), after
  each normalisation; lower similarity (higher MSE) passes.
- sMPRT and eMPRT (Hedström et al. 2023; ``empirical.measures.mprt_variants``) on the same two models.
- MoRF and LeRF areas (seed A.1; ``empirical.experiments.faithfulness``) and their gap LeRF - MoRF.

A test *rewards noise* when its score improves (in the test's own direction) as s grows: the 95% t interval
over images of the per-image least-squares slope of the oriented score against s lies above 0; it
*penalises noise* when it lies below 0, and is *indifferent* otherwise. The closed forms of
``theory.noise_injection`` (case (b): independent noises on both maps) are drawn over the measured
second-moment-normalised MSE and Spearman, from each image's clean-pair moments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats

import theory
from empirical.attribution import attribute
from empirical.experiments.faithfulness import perturbation_curves
from empirical.experiments.noisy import DEFAULT_LEVELS, noise_for_images
from empirical.experiments.randomization import randomised_copy, top_down_schedule
from empirical.measures import mprt_variants, similarity
from empirical.models import load_model
from empirical.run.profiles import get_profile, load_images
from reports import figures, ranking
from reports.render import Figure, Note, Paragraph, Section, Table

__all__ = ["BASE_METHODS", "IMAGES", "LEVELS", "TEST_DIRECTIONS", "measure_scores", "rewards_section",
           "slope_verdicts"]

LEVELS = DEFAULT_LEVELS
BASE_METHODS = ("gradient",)
IMAGES = 6
#: ``--quick``: fewer images and levels
QUICK_IMAGES, QUICK_LEVELS = 3, (0.0, 1.0, 2.0)
SMPRT_SAMPLES = 3
SMPRT_NOISE = 0.1  # Quantus SmoothMPRT's default noise_magnitude
EMPRT_BINS = 100  # Quantus EfficientMPRT's default n_bins
#: the demo profile's faithfulness settings at its patch size 4 (of 2 and 4): 30 steps, blur 11
PATCH_SIZE, STEPS, BLUR_KERNEL = 4, 30, 11
#: test -> True where a higher score passes (is the better explanation by that test)
TEST_DIRECTIONS = {
    **{f"MPRT {m} ({n})": m == "mse" for m in ("ssim", "spearman", "mse")
       for n in ("second-moment", "max-abs")},
    "sMPRT (spearman)": False, "eMPRT": True, "MoRF area": False, "LeRF area": True, "gap LeRF-MoRF": True,
}


class _FreshNoise:
    """M+noise(s) drawing a new Z at every call (stream = call count): the maps of two models, or of two
    noisy inputs, never share noise (theory.noise_injection's case (b)). ``clean``: a cache of M's clean
    maps by (model, input bytes) shared across levels, since only the noise changes with s."""

    def __init__(self, method: str, level: float, seed: int, clean: dict):
        self.method, self.level, self.seed, self.calls, self.clean = method, level, seed, 0, clean

    def clean_maps(self, model, x, targets):
        key = (id(model), hash(x.detach().cpu().numpy().tobytes()), hash(targets.cpu().numpy().tobytes()))
        if key not in self.clean:
            self.clean[key] = attribute(model, x, targets, self.method).detach()
        return self.clean[key]

    def __call__(self, model, x, targets):
        maps = self.clean_maps(model, x, targets)
        self.calls += 1
        if self.level == 0:
            return maps
        rms = maps.flatten(1).square().mean(1).sqrt().view(-1, 1, 1)
        noise = noise_for_images(maps.shape[1:], range(len(maps)), seed=self.seed, stream=self.calls,
                                 dtype=maps.dtype)
        return maps + self.level * rms * noise


def _mprt_rows(reference, randomised, clean_ref, clean_rand, level):
    rows = {}
    for normalization in ("second-moment", "max-abs"):
        rows[f"MPRT ssim ({normalization})"] = similarity.ssim(reference, randomised, normalize=normalization)
        rows[f"MPRT spearman ({normalization})"] = similarity.spearman(reference, randomised,
                                                                       normalize=normalization)
        rows[f"MPRT mse ({normalization})"] = similarity.mse(reference, randomised, normalize=normalization)
    a, b = clean_ref.flatten(1).double(), clean_rand.flatten(1).double()
    a, b = a / a.square().mean(1, keepdim=True).sqrt(), b / b.square().mean(1, keepdim=True).sqrt()
    mu_a, mu_b, var_a, var_b = a.mean(1), b.mean(1), a.var(1, correction=0), b.var(1, correction=0)
    cov = ((a - mu_a[:, None]) * (b - mu_b[:, None])).mean(1)
    args = [t.numpy() for t in (mu_a, mu_b, var_a, var_b, cov)]
    theory_rows = {
        "MPRT mse (second-moment)": theory.noise_injection.normalized_mse_noisy_pair(*args, level),
        "MPRT spearman (second-moment)": theory.noise_injection.spearman_noisy_pair(*args, level),
    }
    return rows, theory_rows


def measure_scores(*, rng_seed: int = 0, images: int = IMAGES, base_methods=BASE_METHODS,
                   levels=LEVELS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy scores (test, method, level, image, value) and closed forms (test, method, level, image, theory)
    of every test of the module docstring on the demo network."""
    model = load_model("demo")
    image_set = load_images(get_profile("demo"), images=images, seed=rng_seed)
    x, labels = image_set.images, image_set.labels
    with torch.no_grad():
        targets = model(x).argmax(1) if labels is None else labels
    schedule = top_down_schedule(model, "demo")
    randomised = randomised_copy(model, schedule, len(schedule), seed=rng_seed)
    rows, closed = [], []

    def add(table, test, method, level, values, column="value"):
        values = np.asarray(torch.as_tensor(values).double().cpu(), dtype=float)
        table.extend({"test": test, "method": method, "level": level, "image": i, column: v}
                     for i, v in enumerate(values))

    for method in base_methods:
        cache = {}
        clean_ref = _FreshNoise(method, 0.0, rng_seed, cache)(model, x, targets)
        clean_rand = _FreshNoise(method, 0.0, rng_seed, cache)(randomised, x, targets)
        for level in levels:
            explain = _FreshNoise(method, level, rng_seed, cache)
            reference, other = explain(model, x, targets), explain(randomised, x, targets)
            measured, predicted = _mprt_rows(reference, other, clean_ref, clean_rand, level)
            for test, values in measured.items():
                add(rows, test, method, level, values)
            for test, values in predicted.items():
                add(closed, test, method, level, values, "theory")
            smooth = mprt_variants.smooth_mprt(
                model, x, targets, explain, randomisation=lambda m: [("all", randomised)], layerwise=False,
                samples=SMPRT_SAMPLES, noise_magnitude=SMPRT_NOISE, similarity="spearman",
                rng=rng_seed + 1)
            add(rows, "sMPRT (spearman)", method, level, smooth.last)
            efficient = mprt_variants.efficient_mprt(model, x, targets, explain,
                                                     randomisation=lambda m: [("all", randomised)],
                                                     bins=EMPRT_BINS)
            add(rows, "eMPRT", method, level, efficient.score)
            areas = {}
            for order in ("morf", "lerf"):
                curves = perturbation_curves(model, x, targets, explain(model, x, targets),
                                             patch_size=PATCH_SIZE, steps=STEPS, blur_kernel=BLUR_KERNEL,
                                             order=order, batch_size=256).numpy()
                areas[order] = (curves.sum(1) - (curves[:, 0] + curves[:, -1]) / 2) / STEPS
            add(rows, "MoRF area", method, level, areas["morf"])
            add(rows, "LeRF area", method, level, areas["lerf"])
            add(rows, "gap LeRF-MoRF", method, level, areas["lerf"] - areas["morf"])
    return pd.DataFrame(rows), pd.DataFrame(closed)


def slope_verdicts(scores: pd.DataFrame, directions=TEST_DIRECTIONS, level: float = 0.95) -> pd.DataFrame:
    """Per (test, method): mean over images of the least-squares slope of the oriented score (+ where the
    test's better direction) against s, its t interval, and the verdict (module docstring)."""
    out = []
    for (test, method), part in scores.groupby(["test", "method"], sort=False):
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
        out.append({"test": test, "method": method, "slope": mean, "ci_low": low, "ci_high": high,
                    "images": n, "verdict": verdict})
    return pd.DataFrame(out)


def _plot(scores: pd.DataFrame, closed: pd.DataFrame, path) -> None:
    plt = figures.plt
    tests = list(dict.fromkeys(scores["test"]))
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


def rewards_section(context) -> Section:
    """The section: settings, the score-vs-s figure, one verdict per test, rank tables and reliability."""
    section = Section("6. What each test rewards", "rewards")
    try:
        images, levels = (QUICK_IMAGES, QUICK_LEVELS) if context.quick else (IMAGES, LEVELS)
        scores, closed = measure_scores(rng_seed=context.seed, images=images, levels=levels)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        section.blocks.append(Note(f"Not computed: {error}"))
        return section
    context.computed.append("rewards: demo network, noisy variants")
    scores.to_csv(context.out / "tables" / "rewards_scores.csv", index=False)
    closed.to_csv(context.out / "tables" / "rewards_theory.csv", index=False)
    section.blocks.append(Paragraph(
        f"Demo network, {images} held-out digits, base methods {', '.join(BASE_METHODS)}, noise levels s = "
        f"{', '.join(f'{s:g}' for s in levels)} (M + s RMS(M) Z, a fresh Z for every map). MPRT: original vs "
        f"fully randomised model (the seed's top-down schedule, every step). sMPRT: {SMPRT_SAMPLES} noisy "
        f"inputs (noise {SMPRT_NOISE}, Quantus's default; the issue's small sample), Spearman. eMPRT: "
        f"{EMPRT_BINS} bins. MoRF/LeRF: patch {PATCH_SIZE}, {STEPS} steps, box blur {BLUR_KERNEL}. Verdict: "
        "95% t interval over images of the slope of the score against s, oriented so that + is better by the "
        "test: above 0 rewards noise, below 0 penalises it, else indifferent. Dashed: theory.noise_injection "
        "(case b) from each image's clean-pair moments."))
    path = "figures/rewards_vs_noise.png"
    try:
        _plot(scores, closed, context.out / path)
        section.blocks.append(Figure(path, "Mean score against noise level s; dashed: closed form"))
    except ValueError as error:
        section.blocks.append(Note(f"Figure not drawn: {error}"))
    verdicts = slope_verdicts(scores)
    verdicts.to_csv(context.out / "tables" / "rewards_verdicts.csv", index=False)
    context.rewards_verdicts = verdicts
    section.blocks.append(Table(verdicts, "One verdict per test and base method (slope of the oriented score "
                                "per unit s, 95% t interval over images)", "tables/rewards_verdicts.csv"))
    wide = scores.assign(method=scores["method"] + "+noise(" + scores["level"].map("{:g}".format) + ")")
    tests = ranking.scores_from_long(wide, TEST_DIRECTIONS, score="value")
    reliability = ranking.ranking_reliability(tests, rng=context.rng("rewards-ranking"), resamples=500)
    for name, caption in (("ranks", "Rank of each noisy variant by each test (1 = best)"),
                          ("concordance", "Kendall's W across images, per test"),
                          ("intervals", "Bootstrap 95% intervals of each variant's rank (500 resamples)"),
                          ("correlations", "Spearman correlation of the rank vectors of each pair of tests")):
        frame = reliability[name]
        frame = frame.reset_index() if name == "ranks" else frame
        frame.to_csv(context.out / "tables" / f"rewards_{name}.csv", index=False)
        section.blocks.append(Table(frame, caption, f"tables/rewards_{name}.csv"))
    return section
