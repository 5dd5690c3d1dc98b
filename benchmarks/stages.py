"""The suite's own stages, each a callable over one batch, with the floor it is held against.

A stage whose code has not landed (an import or a name missing) is reported "not available"; one that
fails while running is reported with its error. Neither stops the harness.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.config import BenchConfig
from benchmarks.floors import input_gradient_pass
from benchmarks.workload import Workload
from empirical import attribution, models
from empirical.experiments import faithfulness, randomization
from empirical.measures import activations, similarity

_GRADIENT_METHODS = ("gradient", "gradient-mean", "gradient-x-input", "guided-backprop")
#: rules that need both signed parts of every layer (alpha1beta0 too: its conserving fallback, eq. 52, hands
#: relevance to the negative part where a neuron has no positive one)
_SIGNED_PART_METHODS = ("lrp-alpha2beta1", "lrp-alpha1beta0", "lrp-adaptive-beta")
RANDOMISATION_METHOD = "gradient"


class StageUnavailable(Exception):
    """A stage cannot run here (e.g. a method that ``empirical.attribution`` does not offer)."""


@dataclass(frozen=True)
class Stage:
    """One timed unit of work: ``build(workload, config, reference)`` returns the callable to time.

    ``floor`` names an entry of :data:`benchmarks.floors.FLOORS`; a stage needs ``floor_passes`` of that
    floor per image (31 forward passes for a 30-step perturbation curve, ``steps`` input gradients for
    integrated gradients), so its floor rate is the floor's images/s divided by ``floor_passes``.
    """

    name: str
    floor: str
    floor_passes: int
    build: Callable[[Workload, BenchConfig, torch.Tensor], Callable[[], object]]
    detail: str = ""


def attribution_methods() -> tuple[str, ...]:
    """The methods ``empirical.attribution`` offers."""
    return tuple(attribution.available_methods())


def method_options(method: str, ig_steps: int) -> dict:
    """Keyword options of ``attribute`` for ``method``: the interpolation steps of integrated gradients."""
    return {"steps": ig_steps} if method == "integrated-gradients" else {}


def _attribution_stage(method: str) -> Stage:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        if method not in attribution.available_methods():
            raise StageUnavailable(f"{method!r} is not in empirical.attribution.available_methods()")
        options = method_options(method, config.ig_steps)
        if method == "random-uniform":  # seeded once, as the experiments seed it and as the floor does
            options["rng"] = torch.Generator(device=workload.device).manual_seed(config.seed)
        model, images, targets = workload.model, workload.images, workload.targets
        if method in _GRADIENT_METHODS or method in ("random-uniform", "integrated-gradients"):
            return lambda: attribution.attribute(model, images, targets, method, **options)

        def unchecked():  # random weights time the rules; whether they conserve is tested, not timed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", attribution.ConservationWarning)
                return attribution.attribute(model, images, targets, method, **options)
        return unchecked

    if method == "integrated-gradients":
        return Stage(f"attribution {method}", "forward+input-gradient", 0, build)  # passes set per config
    if method == "random-uniform":
        return Stage(f"attribution {method}", "random-fill", 1, build)
    if method in _GRADIENT_METHODS:
        return Stage(f"attribution {method}", "forward+input-gradient", 1, build)
    if method in _SIGNED_PART_METHODS:
        return Stage(f"attribution {method}", "zennit-epsilon-alpha2-beta1-flat", 1, build)
    return Stage(f"attribution {method}", "zennit-epsilon-plus-flat", 1, build)


def _faithfulness_stage(patch_size: int) -> Stage:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        model, images, targets = workload.model, workload.images, workload.targets
        return lambda: faithfulness.perturbation_curves(
            model, images, targets, reference, patch_size=patch_size, steps=config.faithfulness_steps,
            blur_kernel=config.blur_kernel, batch_size=workload.batch_size)

    return Stage(f"faithfulness patch {patch_size}", "forward", 0, build)  # passes set per config


def _randomisation_stage(all_measures: bool) -> Stage:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import copy

        model, images, targets = workload.model, workload.images, workload.targets
        schedule = randomization.block_rule_schedule(model, models.architecture_of(model))
        step = min(2, len(schedule))  # the first step past the classifier: a block of convolutions
        randomised = copy.deepcopy(model)
        fresh = {key: value.to(workload.device) for key, value in
                 randomization.step_state(model, schedule[step - 1], seed=config.seed, step=step).items()}
        original = attribution.attribute(model, images, targets, RANDOMISATION_METHOD).detach()

        def run():
            randomised.load_state_dict(fresh, strict=False)
            maps = attribution.attribute(randomised, images, targets, RANDOMISATION_METHOD).detach()
            if not all_measures:  # the work of Quantus's MPRT with SSIM and with Spearman
                return [similarity.ssim(original, maps), similarity.spearman(original, maps)]
            return randomization.score_steps(original, [maps])  # exactly run_randomization's scoring
        return run

    if not all_measures:
        return Stage("randomisation step ssim+spearman", "forward+input-gradient", 1, build,
                     detail=f"{RANDOMISATION_METHOD} map of the re-initialised model; SSIM and Spearman")
    return Stage("randomisation step", "forward+input-gradient", 1, build,
                 detail=f"{RANDOMISATION_METHOD} map of the re-initialised model; SSIM, Spearman (plain, "
                        "abs), MSE at two normalisations, noise floors (as run_randomization)")


def _activation_stage() -> Stage:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        model, images = workload.model, workload.images
        return lambda: activations.activation_statistics(model, images)

    return Stage("activation statistics", "forward+sorted-inputs", 1, build,
                 detail="inputs of every convolution and linear layer: 18 quantiles, non-positive fraction")


def all_stages(config: BenchConfig) -> list[Stage]:
    """Every stage of the harness, in table order, with per-config floor pass counts filled in."""
    stages = []
    for method in attribution_methods():
        stage = _attribution_stage(method)
        if method == "integrated-gradients":
            stage = Stage(stage.name, stage.floor, config.ig_steps, stage.build,
                          detail=f"{config.ig_steps} steps")
        stages.append(stage)
    for patch_size in config.patch_sizes:
        stage = _faithfulness_stage(patch_size)
        detail = f"{config.faithfulness_steps} blurred patches, softmax after each"
        stages.append(Stage(stage.name, stage.floor, config.faithfulness_steps + 1, stage.build, detail))
    stages.append(_randomisation_stage(all_measures=True))
    stages.append(_randomisation_stage(all_measures=False))
    stages.append(_activation_stage())
    return stages


def reference_maps(workload: Workload) -> torch.Tensor:
    """Plain-torch gradient maps (l2 over colour channels), (N, H, W): the maps the faithfulness stages
    perturb by. Any map ranks the patches; computing it here keeps those stages independent of attribution."""
    return input_gradient_pass(workload)().detach().norm(dim=1)
