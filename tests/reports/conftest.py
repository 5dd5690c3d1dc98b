"""Small, fixed result tables in the formats of docs/results-format.md, for building reports in tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

METHODS = ("gradient", "gradient-x-input", "lrp-epsilon")
LEVELS = tuple(np.round(np.arange(0.95, 0.09, -0.05), 2))
HIGH = (0.95, 0.90, 0.85)
LOW = (0.50, 0.45, 0.40, 0.35, 0.30, 0.25, 0.20, 0.15, 0.10)
SIMULATION_QUANTITIES = {
    "similarity_processes": ("ssim noise floor", "spearman expected", "mse maximum"),
    "cauchy_overtake": ("overtake probability", "tail P(Z>=K)"),
    "quantile_variance": ("quantile variance", "max-abs normaliser spread"),
    "adaptive_beta": ("beta",),
    "monotonicity": ("monotone fraction",),
    "positive_dominance": ("relevance sum",),
    "noise_injection": ("ssim", "normalized-mse"),
}


def _tail(k: np.ndarray, gamma: float) -> np.ndarray:
    # eq. 23, written out here so the fixtures do not depend on the code under test
    return 0.5 - np.arctan(k / gamma) / np.pi


#: the fixture's rewards tests and the slope of each score per unit noise level s
REWARD_SLOPES = {"MPRT ssim (second-moment)": -0.05, "MPRT spearman (second-moment)": -0.05,
                 "MPRT mse (second-moment)": 0.3, "MPRT ssim (max-abs)": 0.0,
                 "MPRT spearman (max-abs)": -0.05,
                 "MPRT mse (max-abs)": 0.05, "sMPRT (spearman)": -0.05, "eMPRT": 0.0, "MoRF area": 0.0,
                 "LeRF area": 0.0, "gap LeRF-MoRF": 0.0}


def _rewards_table(models, methods, images) -> pd.DataFrame:
    rows = [dict(model=model, method=method, level=level, test=test, image=image,
                 # an offset per image and method, none per level: every image's slope is exactly the test's
                 value=0.5 + slope * level + 0.01 * image * (k + 1) + 0.003 * k,
                 theory=0.5 + slope * level if test == "MPRT mse (second-moment)" else np.nan)
            for model in models for k, method in enumerate(methods) for level in (0.0, 1.0, 2.0)
            for test, slope in REWARD_SLOPES.items() for image in range(images)]
    return pd.DataFrame(rows)


def write_empirical_run(
    folder: Path,
    *,
    models=("demo",),
    methods=METHODS,
    images: int = 4,
    steps: int = 3,
    levels: int = 4,
    seed: int = 0,
    profile: str = "demo",
) -> Path:
    """Write manifest.json and every table of an empirical run under ``folder``; return the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    randomization, curves, areas, activations, samples = [], [], [], [], {}
    for model in models:
        for method_index, method in enumerate(methods):
            for image in range(images):
                for step in range(1, steps + 1):
                    for measure in ("ssim", "mse", "spearman", "spearman-abs"):
                        for normalization in ("second-moment", "max-abs"):
                            floor = {"ssim": 0.05, "mse": 1.9, "spearman": 0.0, "spearman-abs": 0.0}[measure]
                            value = floor + (1 - step / steps) * 0.5 + rng.normal(0, 0.02)
                            randomization.append(
                                dict(
                                    model=model,
                                    method=method,
                                    step=step,
                                    layers=f"layer{step}",
                                    image=image,
                                    measure=measure,
                                    normalization=normalization,
                                    value=value,
                                    noise_floor=floor,
                                )
                            )
                for patch_size in (8, 15):
                    decay = 0.05 + 0.04 * method_index
                    scores = np.clip(0.9 * np.exp(-decay * np.arange(31)) + rng.normal(0, 0.01, 31), 0, 1)
                    curves += [
                        dict(
                            model=model,
                            method=method,
                            patch_size=patch_size,
                            image=image,
                            label=3,
                            step=step,
                            score=score,
                        )
                        for step, score in enumerate(scores)
                    ]
                    areas.append(
                        dict(
                            model=model, method=method, patch_size=patch_size, image=image, area=scores.mean()
                        )
                    )
        for level in range(levels):
            values = np.maximum(rng.normal(-0.2 * level, 1.0, 4096), 0)
            samples[f"{model}/{level}"] = values
            quantile = {q: float(np.quantile(values, q)) for q in LEVELS}
            activations += [
                dict(model=model, level=level, layer=f"conv{level}", statistic="quantile", q=q, value=v)
                for q, v in quantile.items()
            ]
            activations.append(
                dict(
                    model=model,
                    level=level,
                    layer=f"conv{level}",
                    statistic="nonpositive_fraction",
                    value=float(np.mean(values <= 0)),
                )
            )
            for q_high in HIGH:
                for q_low in LOW:
                    k = np.inf if quantile[q_low] == 0 else quantile[q_high] / quantile[q_low]
                    gamma = np.sqrt(q_low / (1 - q_high))
                    p = 0.0 if np.isinf(k) else float(_tail(np.float64(k), gamma))
                    for statistic, value in (("K", k), ("gamma", gamma), ("P", p)):
                        activations.append(
                            dict(
                                model=model,
                                level=level,
                                layer=f"conv{level}",
                                statistic=statistic,
                                q_high=q_high,
                                q_low=q_low,
                                value=value,
                            )
                        )
    pd.DataFrame(randomization).to_csv(folder / "randomization.csv", index=False)
    pd.DataFrame(curves).to_csv(folder / "faithfulness.csv", index=False)
    pd.DataFrame(areas).to_csv(folder / "faithfulness_area.csv", index=False)
    # least relevant first: the same curves reversed in quality (a slower drop), so the gap is positive
    lerf = pd.DataFrame(curves).assign(score=lambda t: np.clip(1.0 - 0.1 * (1 - t["score"]), 0, 1))
    lerf.to_csv(folder / "faithfulness_lerf.csv", index=False)
    lerf.groupby(["model", "method", "patch_size", "image"], as_index=False)["score"].mean().rename(
        columns={"score": "area"}).to_csv(folder / "faithfulness_lerf_area.csv", index=False)
    _rewards_table(models, methods, images).to_csv(folder / "rewards.csv", index=False)
    pd.DataFrame(activations).to_csv(folder / "activations.csv", index=False)
    np.savez(folder / "activation_samples.npz", **samples)
    manifest = dict(
        profile=profile,
        experiments=["randomization", "faithfulness", "faithfulness_lerf", "activations", "rewards"],
        config=dict(images=images),
        seed=seed,
        versions=dict(python="3.11", torch="2.14.1"),
        device="cpu",
        weights={model: dict(path=f"weights/{model}.pt", sha256="0" * 64) for model in models},
        dataset=dict(source="fixture", images=images, skipped=0),
        bench=profile == "bench",
        started="2026-01-01T00:00:00",
        finished="2026-01-01T00:01:00",
        elapsed_s=60.0,
    )
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def write_simulations(folder: Path, *, seed: int = 0, failing: str | None = None) -> Path:
    """Write NAME.csv and NAME.json for every simulation; ``failing`` names one whose rows disagree."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, quantities in SIMULATION_QUANTITIES.items():
        rows = []
        for quantity in quantities:
            for setting in range(2):
                theory = float(rng.uniform(0.1, 1.0))
                se = 0.01
                estimate = theory + (0.2 if name == failing else rng.normal(0, se))
                rows.append(
                    dict(
                        setting=setting,
                        quantity=quantity,
                        estimate=estimate,
                        se=se,
                        ci_low=estimate - 2.58 * se,
                        ci_high=estimate + 2.58 * se,
                        theory=theory,
                        agree=abs(estimate - theory) <= 2.58 * se,
                        level=0.99,
                        relation="equal",
                    )
                )
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.json").write_text(
            json.dumps(dict(config=dict(draws=100), seed=seed, draws=100, versions={}, elapsed_s=0.1))
        )
    return folder


@pytest.fixture(scope="session")
def results_writers():
    """The two fixture writers: (write_empirical_run, write_simulations)."""
    return write_empirical_run, write_simulations


# measures the page once it has loaded and posts the figures to the frame around it (headless Chromium's
# window is at least 500 px wide, so the narrow width is a frame of that width, as a phone's viewport)
_PROBE = """<script>
window.addEventListener("load", () => {
  const w = window.innerWidth, doc = document.documentElement, box = id => document.getElementById(id);
  const images = [...document.images].map(img => {
    const r = img.getBoundingClientRect();
    return {left: r.left, right: r.right, width: r.width, height: r.height,
            natural: [img.naturalWidth, img.naturalHeight]};
  });
  const wide = [...document.body.querySelectorAll("*")].filter(e => !e.closest(".scroll"))
      .filter(e => e.getBoundingClientRect().right > w + 1).map(e => e.tagName + "." + e.className);
  window.parent.postMessage(JSON.stringify({viewport: w, scrollWidth: doc.scrollWidth,
      height: doc.scrollHeight, summaryBottom: box("summary").getBoundingClientRect().bottom,
      claimsTop: box("claims").getBoundingClientRect().top, images, wide}), "*");
});
</script>"""


def _layout(chromium: str, report: Path, width: int, folder: Path) -> dict:
    import html as html_module
    import json
    import re
    import subprocess

    page = (report / "report.html").read_text()
    (folder / "page.html").write_text(page.replace("</body>", _PROBE + "</body>"))
    (folder / "frame.html").write_text(
        '<!DOCTYPE html><html><body style="margin:0"><pre id="result"></pre>'
        f'<iframe src="page.html" style="width:{width}px;height:900px;border:0"></iframe><script>'
        'addEventListener("message", e => { document.getElementById("result").textContent = e.data; });'
        "</script></body></html>")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={max(width, 1280) + 40},1000", "--virtual-time-budget=15000", "--dump-dom",
               (folder / "frame.html").as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="result">([^<]+)</pre>', dom)
    assert found, "headless Chromium gave no measurement"
    return json.loads(html_module.unescape(found.group(1)))


@pytest.fixture
def page_layout():
    """``measure(chromium, report, width, folder)``: the layout of ``report``'s HTML page in a frame of
    ``width`` px, as headless Chromium lays it out."""
    return _layout
