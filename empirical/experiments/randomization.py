"""Top-down model randomisation (seed sections A.1 and H).

Three layers, kept apart: *schedules* say which modules are re-initialised at each step
(``block_rule_schedule`` follows the seed's rule per architecture, ``per_layer_schedule`` the
one-module-a-step order of Quantus's MPRT); *re-initialisation* draws new weights on a copy, from a
``torch.Generator`` seeded by (seed, step), so step k's weights never depend on how the images were
chunked; the kernel ``randomization_batch`` wires both to the attribution methods and the similarity
measures and returns one batch's rows of the tidy table of docs/results-format.md (no file read or written:
``empirical.run.randomization`` runs it chunk by chunk, resumably).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from empirical.experiments._common import conservation_unchecked, explain, explained_classes
from empirical.experiments.schedules import (
    SCHEDULES,
    block_rule_schedule,
    boundary_count,
    per_layer_schedule,
)
from empirical.measures import similarity
from empirical.measures.noise_floor import closed_form_floor
from empirical.measures.similarity import MEASURES, MPRT_NORMALIZATIONS
from empirical.storage.tables import RANDOMIZATION_COLUMNS

__all__ = [
    "SCHEDULES",
    "RandomisedSteps",
    "block_rule_schedule",
    "boundary_count",
    "per_layer_schedule",
    "prepare_randomization",
    "randomised_copy",
    "randomization_batch",
    "reinitialise_",
    "score_steps",
    "step_state",
]

# map pairs scored in one call: 1024 224x224 pairs hold ~2 GB of float64 intermediates in SSIM
_PAIRS_PER_CALL = 1024

def _step_generator(seed: int, step: int) -> torch.Generator:
    # SeedSequence mixes (seed, step) into independent streams; a CPU generator keeps weights off the device
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(1, dtype=np.uint32)[0]
    return torch.Generator(device="cpu").manual_seed(int(state))


def _fresh_tensors(module: nn.Module, generator: torch.Generator, mode: str) -> dict[str, torch.Tensor]:
    """New values (on the CPU) for the parameters and buffers of one module, keyed by local name."""
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
        weight = torch.empty(module.weight.shape, dtype=module.weight.dtype)
        # He et al.: Kaiming normal for a ReLU network; `mode` picks fan-in or fan-out
        nn.init.kaiming_normal_(weight, mode=mode, nonlinearity="relu", generator=generator)
        fresh = {"weight": weight}
        if module.bias is not None:
            fresh["bias"] = torch.zeros(module.bias.shape, dtype=module.bias.dtype)
        return fresh
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        # a normalisation layer's reset is deterministic: unit scale, zero shift, fresh running statistics
        template = copy.deepcopy(module).cpu()
        if isinstance(template, nn.modules.batchnorm._NormBase):
            template.reset_running_stats()
        template.reset_parameters()
        return {key: value.detach().clone() for key, value in template.state_dict().items()}
    raise ValueError(f"cannot re-initialise a module of type {type(module).__name__}; "
                     "supported: convolution, linear and normalisation layers")


def step_state(model: nn.Module, layers: Sequence[str], *, seed: int, step: int,
               mode: str = "fan_in") -> dict[str, torch.Tensor]:
    """The re-initialised entries of ``model``'s state dict for one schedule step (on the CPU).

    Modules are drawn in the order of ``layers`` from one generator seeded by (``seed``, ``step``), so the
    result depends only on these and on the shapes, never on earlier steps or on the device.
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    modules = dict(model.named_modules())
    generator = _step_generator(seed, step)
    state = {}
    for name in layers:
        if name not in modules:
            raise ValueError(f"layers names {name!r}, which is not a module of the model")
        for key, value in _fresh_tensors(modules[name], generator, mode).items():
            state[f"{name}.{key}"] = value
    return state


def reinitialise_(model: nn.Module, schedule: Sequence[Sequence[str]], steps: int, *, seed: int,
                  mode: str = "fan_in") -> nn.Module:
    """Re-initialise, in place, the modules of schedule steps 1..``steps`` of ``model``; returns it."""
    if not 0 <= steps <= len(schedule):
        raise ValueError(f"steps must be in 0..{len(schedule)}, got {steps!r}")
    for step in range(1, steps + 1):
        _load_partial(model, step_state(model, schedule[step - 1], seed=seed, step=step, mode=mode))
    return model


def randomised_copy(model: nn.Module, schedule: Sequence[Sequence[str]], steps: int, *, seed: int,
                    mode: str = "fan_in") -> nn.Module:
    """A copy of ``model`` with schedule steps 1..``steps`` re-initialised cumulatively; ``model`` is kept."""
    return reinitialise_(copy.deepcopy(model), schedule, steps, seed=seed, mode=mode)


def _load_partial(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    with torch.no_grad():
        current = model.state_dict(keep_vars=True)
        for key, value in state.items():
            current[key].copy_(value)


@dataclasses.dataclass(frozen=True)
class RandomisedSteps:
    """What every batch of one randomisation run shares: ``original``, a copy of the model on the device in
    eval mode; ``randomised``, a second copy that each batch re-initialises step by step; the original
    state; ``steps``, the schedule (module names re-initialised at each step); ``fresh``, every step's new
    weights (on the device), drawn once by (seed, step) and loaded by every batch."""

    original: nn.Module
    randomised: nn.Module
    original_state: dict
    steps: tuple
    fresh: tuple


def prepare_randomization(model: nn.Module, steps: Sequence[Sequence[str]], *, seed: int,
                          init_mode: str = "fan_in", device="cpu") -> RandomisedSteps:
    """The :class:`RandomisedSteps` of ``model`` under schedule ``steps``; ``model`` is not modified."""
    original = copy.deepcopy(model).to(device).eval()
    randomised = copy.deepcopy(original)
    original_state = {key: value.detach().clone() for key, value in original.state_dict().items()}
    # every step's fresh weights are drawn once and reused by every batch: same numbers, no redraws
    fresh = tuple({key: value.to(device) for key, value in
                   step_state(original, layers, seed=seed, step=step, mode=init_mode).items()}
                  for step, layers in enumerate(steps, start=1))
    return RandomisedSteps(original, randomised, original_state, tuple(steps), fresh)


def randomization_batch(prepared: RandomisedSteps, images: torch.Tensor, labels: torch.Tensor | None, method,
                        *, method_name: str, model_name: str, seed: int, first_image: int,
                        on_step=None) -> pd.DataFrame:
    """The kernel of the top-down randomisation experiment (seed A.1, H): the ``RANDOMIZATION_COLUMNS``
    rows of one batch of ``images`` (on the device of ``prepared``, from :func:`prepare_randomization`)
    and one resolved ``method`` (``empirical.experiments._common.resolve_methods``).

    The original model's maps once, then for each schedule step one attribution pass of the cumulatively
    re-initialised copy over the batch, scored against the original maps by every measure of ``MEASURES``
    after each normalisation of ``MPRT_NORMALIZATIONS``, with the noise floor of each score. Explains
    ``labels``, or the original model's top class where None. Random draws are keyed by (``seed``,
    ``first_image``: the index of the batch's first image in the run, step). ``on_step(1)`` is called after
    each step (a progress bar's ``update``)."""
    original, randomised = prepared.original, prepared.randomised
    target = explained_classes(original, images, labels)
    reference = _finite_or_zero(explain(method, original, images, target, (seed, first_image, 0)),
                                method_name, "original model")
    _load_partial(randomised, prepared.original_state)
    maps = []
    for step, state in enumerate(prepared.fresh, start=1):
        _load_partial(randomised, state)
        with conservation_unchecked():
            randomised_map = explain(method, randomised, images, target, (seed, first_image, step))
        maps.append(_finite_or_zero(randomised_map, method_name, f"step {step}"))
        if on_step is not None:
            on_step(1)
    scores, floors = score_steps(reference, maps)
    return _chunk_table(scores, floors, model_name=model_name, method=method_name, steps=prepared.steps,
                        first_image=first_image)


def _finite_or_zero(maps, method, where):
    """``maps`` with every map holding NaN or infinity set to zero (so its scores come out NaN, as for any
    constant map) and a warning: one diverging map must not stop a run over thousands of images."""
    broken = ~torch.isfinite(maps).flatten(1).all(dim=1)
    if bool(broken.any()):
        warnings.warn(f"method {method!r} gave NaN or infinite values in {int(broken.sum())} map(s) of the "
                      f"{where}; their scores are reported as NaN", RuntimeWarning, stacklevel=3)
        maps = torch.where(broken.view(-1, *([1] * (maps.ndim - 1))), torch.zeros_like(maps), maps)
    return maps


def score_steps(reference, maps_per_step):
    """Scores of every step's maps against ``reference`` by every measure of ``MEASURES`` after every
    normalisation of ``MPRT_NORMALIZATIONS``, and their closed-form noise floors: two tensors of shape (steps,
    normalisations, measures, N), as ``randomization_batch`` tabulates them. The steps' maps are scored in
    a few large stacks (at most ``_PAIRS_PER_CALL`` pairs), not one small call per step, so that the device
    runs long kernels instead of waiting on many launches and synchronisations."""
    n = len(reference)
    per_call = max(1, _PAIRS_PER_CALL // n)
    scores, floors = [], []
    for first in range(0, len(maps_per_step), per_call):
        group = maps_per_step[first:first + per_call]
        value, floor = _scores(reference.repeat(len(group), 1, 1), torch.cat(group))
        # (normalisations, measures, steps * N) -> (steps, normalisations, measures, N)
        scores.append(value.unflatten(2, (len(group), n)).permute(2, 0, 1, 3))
        floors.append(floor.unflatten(2, (len(group), n)).permute(2, 0, 1, 3))
    return torch.cat(scores), torch.cat(floors)


def _scores(reference, maps):
    """Every measure after every normalisation, (len(MPRT_NORMALIZATIONS), len(MEASURES), N), and noise
    floors."""
    values, floors, rank_based = [], [], {}
    for normalization in MPRT_NORMALIZATIONS:
        for measure in MEASURES:
            if measure.startswith("spearman") and measure in rank_based:
                # ranks do not change under a positive rescaling: one computation serves every normalisation
                score, floor = rank_based[measure]
            else:
                options = {"absolute": True} if measure == "spearman-abs" else {}
                function = getattr(similarity, "spearman" if measure.startswith("spearman") else measure)
                score = function(reference, maps, normalize=normalization, **options)
                floor = closed_form_floor(reference, maps, measure, normalize=normalization)
                rank_based[measure] = score, floor
            values.append(score)
            floors.append(floor)
    shape = (len(MPRT_NORMALIZATIONS), len(MEASURES), len(reference))
    return torch.stack(values).reshape(shape), torch.stack(floors).reshape(shape)


def _chunk_table(scores, floors, *, model_name, method, steps, first_image) -> pd.DataFrame:
    """Tidy rows from scores and floors of shape (steps, normalisations, measures, images)."""
    n_steps, n_norms, n_measures, n_images = scores.shape
    step, norm, measure, image = (axis.ravel() for axis in np.meshgrid(
        np.arange(n_steps), np.arange(n_norms), np.arange(n_measures), np.arange(n_images), indexing="ij"))
    layers = np.array([";".join(names) for names in steps], dtype=object)
    return pd.DataFrame({
        "model": model_name,
        "method": method,
        "step": (step + 1).astype(np.int64),
        "layers": layers[step],
        "image": (image + first_image).astype(np.int64),
        "measure": np.array(MEASURES, dtype=object)[measure],
        "normalization": np.array(MPRT_NORMALIZATIONS, dtype=object)[norm],
        "value": scores.cpu().numpy().astype(np.float64).ravel(),
        "noise_floor": floors.cpu().numpy().astype(np.float64).ravel(),
    }, columns=list(RANDOMIZATION_COLUMNS))
