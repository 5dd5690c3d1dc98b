"""The declared choices of each table: ``<experiment>.choices.json`` beside ``<experiment>.csv``.

Two tables of the same test differ in choices that are not in their columns: how the network is
randomised, how maps are normalised, which window SSIM uses, which blur and patch grid the perturbation
uses, which output is scored, how much noise a method carries. The JSON names them, per model, so a reader
compares two tables without reading code. Every value comes from the options the run passed to the
experiment (the profile's) or, where the run passed none, from the experiment's own default.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from empirical.experiments.noisy import parse_noisy_name
from empirical.measures.similarity import MEASURES, MPRT_NORMALIZATIONS
from empirical.run import activations, faithfulness, randomization, rewards

__all__ = ["EXPERIMENT_FUNCTIONS", "choices_path", "experiment_choices", "write_choices"]

#: the chunked run of each experiment (``EXPERIMENTS``): the runner calls it, its defaults fill the choices
EXPERIMENT_FUNCTIONS = {"randomization": randomization.run_randomization,
                        "faithfulness": faithfulness.run_faithfulness,
                        "faithfulness_lerf": faithfulness.run_faithfulness,
                        "activations": activations.run_activations, "rewards": rewards.run_rewards}
_OUTPUTS = {"softmax": "softmax probability of the explained class",
            "sigmoid": "sigmoid of the explained (highest predicted) label's logit"}


def _defaults(experiment: str) -> dict:
    signature = inspect.signature(EXPERIMENT_FUNCTIONS[experiment])
    return {name: p.default for name, p in signature.parameters.items() if p.default is not inspect._empty}


def _noise_levels(methods) -> dict:
    """{method: noise level s} (0 for a method without noise; M+noise(s))."""
    return {m: (parse_noisy_name(m) or (m, 0.0))[1] for m in methods}


def experiment_choices(experiment: str, options: dict, methods=()) -> dict:
    """The choices of one experiment's table for one model: ``options`` (the run's keyword options of
    ``run_<experiment>``) over the function's defaults, in the vocabulary of the declared choices."""
    if experiment not in EXPERIMENT_FUNCTIONS:
        raise ValueError(f"experiment must be one of {tuple(EXPERIMENT_FUNCTIONS)}, got {experiment!r}")
    settings = {**_defaults(experiment), **dict(options)}
    noise = {"noise": "M+noise(s): s * RMS(map) * iid N(0, 1) a pixel, seeded by (seed, step, image)",
             "noise_level": _noise_levels(methods)}
    if experiment == "randomization":
        return {
            "granularity": "block" if settings["schedule"] == "blocks" else "layer",
            "schedule": settings["schedule"], "order": "top-down (output first), cumulative",
            "reinitialisation": f"kaiming-normal ({settings['init_mode']}), batch-norm reset to identity",
            "normalisation": list(MPRT_NORMALIZATIONS), "similarity": list(MEASURES),
            "ssim_window": "uniform7 (7x7 uniform, sample covariance)",
            "spearman": "all pixels, ties averaged",
            "output": "the explained class's logit (the attribution methods' target)", **noise}
    output = _OUTPUTS.get(settings.get("score"), str(settings.get("score")))
    if experiment in ("faithfulness", "faithfulness_lerf"):
        patches = settings["patch_sizes"]
        return {
            "order": settings["order"],
            "blur_kernel": f"{settings['blur_kernel']}x{settings['blur_kernel']} box",
            "blur_source": "the image itself, reflected borders",
            "patch_grid": {"patch_sizes": list(patches) if not isinstance(patches, int) else [patches],
                           "stride": settings["stride"] or "patch size (non-overlapping from the top-left)"},
            "steps": settings["steps"], "output": output,
            "area": "trapezoid over steps / steps", **noise}
    if experiment == "rewards":
        return {
            "noise": "M+noise(s): s * RMS(map) * iid N(0, 1) a pixel, a fresh draw for every map",
            "noise_level": list(settings["levels"]),
            "base_methods": list(settings["base_methods"] or methods),
            "images": settings["max_images"] or "all",
            "mprt": {"granularity": "block", "order": "top-down, every step at once (original vs fully "
                     "randomised)",
                     "reinitialisation": "kaiming-normal (fan_in), batch-norm reset to identity",
                     "normalisation": ["second-moment", "max-abs"], "similarity": ["ssim", "spearman", "mse"],
                     "ssim_window": "uniform7 (7x7 uniform, sample covariance)"},
            "smprt": {"samples": settings["smprt_samples"], "noise_magnitude": settings["smprt_noise"],
                      "similarity": "spearman", "normalisation": "second-moment, then absolute value",
                      "model_states": "original and fully randomised (every block step)"},
            "emprt": {"bins": settings["emprt_bins"], "bin_rule": "equal width between the map's min and max",
                      "normalisation": None,
                      "model_states": "original and fully randomised (every block step)"},
            "faithfulness": {"orders": ["morf", "lerf"], "patch_size": settings["patch_size"],
                             "blur_kernel": f"{settings['blur_kernel']}x{settings['blur_kernel']} box",
                             "steps": settings["steps"], "output": output},
            "theory": "theory.noise_injection case (b), from each image's clean-pair moments"}
    return {"statistics": "per level: zero and non-positive fractions, quantiles",
            "sample_size": settings["sample_size"], "output": "activations after each level"}


def choices_path(out, experiment: str) -> Path:
    return Path(out) / f"{experiment}.choices.json"


def write_choices(out, experiment: str, options_by_model: dict, methods=()) -> Path:
    """Write ``<experiment>.choices.json``: ``{"experiment": ..., "models": {model: choices}}``."""
    payload = {"experiment": experiment,
               "models": {model: experiment_choices(experiment, options, methods)
                          for model, options in options_by_model.items()}}
    path = choices_path(out, experiment)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path
