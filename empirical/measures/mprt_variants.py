"""The repaired randomisation tests of Hedström et al. 2023, "Sanity Checks Revisited": sMPRT and eMPRT.

Batched in torch on the maps' device; the model, inputs and the explanation function ``(model, x, target)
-> (N, H, W)`` are the caller's, so any method of ``empirical.attribution`` (or a noisy variant from
``empirical.experiments.noisy``) plugs in. Both follow the definitions of the paper as Quantus 0.6.0
implements them (``quantus.SmoothMPRT``, ``quantus.EfficientMPRT``); every default below names its source.

**sMPRT** (:func:`smooth_mprt`): MPRT on explanations "denoised" by averaging over noisy inputs. For each
model state the explanation is the mean of ``samples`` maps, ``samples - 1`` of them at x + eps with eps
i.i.d. normal of standard deviation ``noise_magnitude * (max(x_i) - min(x_i))`` per image i and one at x
itself; then normalised and made absolute; then compared, by ``similarity``, with the smoothed map of the
original model, after each step of the cascading randomisation.

* ``samples=50``, ``noise_magnitude=0.1``: Quantus ``SmoothMPRT(nr_samples=50, noise_magnitude=0.1)``,
  which says both were set on the paper's ImageNet experiment; the scale by each input's max - min range
  and the one clean sample (the last of the 50) are Quantus's ``explain_smooth_batch`` rule.
* ``normalise="second-moment"``, ``absolute=True``: Quantus's defaults (``normalise=True`` with
  ``normalise_by_average_second_moment_estimate``, ``abs=True``), normalisation first. Quantus divides the
  whole batch by one root mean square; here each map by its own (eq. 11). Neither changes a Spearman
  coefficient (a positive rescaling keeps ranks), so with the default similarity the two agree.
* ``similarity="spearman"``: Quantus's ``correlation_spearman`` (over all pixels; ties averaged).
* ``randomisation=None``: one parametrised module a step from the input up ("bottom-up"), Quantus's
  ``layer_order="bottom_up"`` default (its docstring says "independent"; the code says bottom-up).
  Weights are re-drawn by
  ``empirical.experiments.randomization.step_state`` (Kaiming normal, batch-norm reset);
  Quantus calls each module's ``reset_parameters`` after ``torch.manual_seed(seed + 1)``. Pass Quantus's
  layer generator as ``randomisation`` to reproduce its weights.
* Quantus 0.6.0's smoothing calls ``quantus.explain(**explain_func_kwargs)``, not the ``explain_func`` it
  is given, and draws its noise from the global ``np.random`` (unseeded): here ``explain`` is used and the
  noise comes from ``rng``.
* Also reported, as Quantus does under the key ``"original"``: the similarity of two independent
  smoothings of the original model, i.e. how reproducible the smoothed map is.

**eMPRT** (:func:`efficient_mprt`): the relative rise in explanation complexity from the original to the
fully randomised model, (H(e_random) - H(e_original)) / H(e_original) per image; higher is better.

* H is the discrete entropy (natural log, scipy.stats.entropy of the counts) of a histogram of the map's
  values with ``bins=100`` equal-width bins between the map's own min and max (numpy.histogram's rule):
  Quantus's ``discrete_entropy`` with ``n_bins`` = its default 100, since its ``find_n_bins`` falls back
  to 100 when no ``rule`` is given. (Its rules, Freedman-Diaconis etc., use ``a_batch[0].ndim`` as the
  sample size, so are left out here.)
* ``normalise=None``, ``absolute=False``: Quantus ``EfficientMPRT(abs=False, normalise=False)``.
* Only two model states (``skip_layers=True`` in Quantus): the original and the fully randomised one,
  bottom-up order as above (the paper advises against top-down for eMPRT).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from empirical._checks import positive_int
from empirical.experiments.randomization import step_state
from empirical.experiments.schedules import SCHEDULES, bottom_up_schedule, schedule_steps
from empirical.measures import similarity as _similarity
from empirical.measures.similarity import MPRT_NORMALIZATIONS
from empirical.rng import torch_generator

__all__ = ["EfficientMPRTResult", "SmoothMPRTResult", "bottom_up_schedule", "cascading_randomisation",
           "discrete_entropy", "efficient_mprt", "smooth_explanation", "smooth_mprt"]

SIMILARITIES = ("spearman", "ssim", "mse")
#: map normalisations sMPRT and eMPRT accept: the MPRT ones, or None (Quantus's default for both)
VARIANT_NORMALIZATIONS = (*MPRT_NORMALIZATIONS, None)


def cascading_randomisation(model: nn.Module, schedule: Sequence[Sequence[str]], *, seed: int,
                            mode: str = "fan_in") -> Iterable[tuple[str, nn.Module]]:
    """Yield (step name, model) after each schedule step, randomised cumulatively on one copy of ``model``.

    Step k's weights are
    ``empirical.experiments.randomization.step_state(model, schedule[k-1], seed=seed, step=k)``, so
    the copy after the last step equals ``randomised_copy(model, schedule, len(schedule), seed=seed)``. The
    same copy is yielded each time (as Quantus's layer generator does): use it before advancing.
    """
    randomised = copy.deepcopy(model)
    for step, layers in enumerate(schedule, start=1):
        state = step_state(randomised, layers, seed=seed, step=step, mode=mode)
        randomised.load_state_dict(state, strict=False)
        yield ";".join(layers), randomised


def _model_states(model, randomisation, seed, spec=None):
    """The (name, model) iterator of a randomisation argument (see ``smooth_mprt``)."""
    if randomisation is None:
        randomisation = "bottom-up"
    if randomisation in SCHEDULES:
        return cascading_randomisation(model, schedule_steps(model, randomisation, spec), seed=seed)
    if callable(randomisation):
        return iter(randomisation(model))
    if isinstance(randomisation, Sequence) and not isinstance(randomisation, str) and randomisation \
            and all(isinstance(step, Sequence) and not isinstance(step, str) for step in randomisation):
        return cascading_randomisation(model, randomisation, seed=seed)
    raise ValueError("randomisation must be None, 'bottom-up', 'per-layer', 'blocks', a schedule (list "
                     "of lists of module names) or a callable model -> iterable of (name, model); got "
                     f"{randomisation!r}")


def _last_state(states) -> tuple[str, nn.Module]:
    """The final (name, model) of a randomisation (the fully randomised model)."""
    last = deque(states, maxlen=1)
    if not last:
        raise ValueError("randomisation gave no randomised model")
    return last[0]


def _check_inputs(model, x, targets):
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point() or len(x) == 0:
        raise ValueError(f"x must be a non-empty float tensor (N, ...), got {getattr(x, 'shape', type(x))}")
    if model.training:
        raise ValueError("model is in training mode: call model.eval() first")
    targets = torch.as_tensor(targets, device=x.device)
    if targets.ndim == 0:
        targets = targets.expand(len(x))
    if targets.shape != (len(x),) or targets.is_floating_point():
        raise ValueError(f"targets must be an int or integer tensor of shape ({len(x)},), got {targets!r}")
    return targets.long()


def _maps(explain, model, x, targets) -> torch.Tensor:
    maps = explain(model, x, targets)
    if not isinstance(maps, torch.Tensor):
        raise ValueError(f"explain must return a tensor, got {type(maps).__name__}")
    if maps.ndim == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.ndim != 3 or len(maps) != len(x):
        raise ValueError(f"explain must return maps (N, H, W) for N = {len(x)}, got {tuple(maps.shape)}")
    return maps.detach()


def _explain_batched(explain, model, x, targets, batch_size):
    return torch.cat([_maps(explain, model, x[i:i + batch_size], targets[i:i + batch_size])
                      for i in range(0, len(x), batch_size)])


def _post(maps, normalise, absolute):
    maps = _similarity.normalize_maps(maps, normalise)
    return maps.abs() if absolute else maps


def smooth_explanation(model, x, targets, explain, *, samples: int = 50, noise_magnitude: float = 0.1,
                       generator: torch.Generator, pass_size: int = 256) -> torch.Tensor:
    """Mean map over ``samples`` inputs: ``samples - 1`` noisy ones, x + eps, eps ~ N(0, sd_i^2) with
    sd_i = noise_magnitude (max x_i - min x_i), and x itself (sMPRT's denoising; module docstring).

    The noise of sample k (k = 0 .. samples-2) is one ``torch.randn(x.shape, generator=generator)`` call, in
    that order, whatever ``pass_size`` (the most images one ``explain`` call gets; noisy copies of the
    batch are stacked up to it). Returns (N, H, W) before normalisation.
    """
    samples, pass_size = positive_int(samples, "samples"), positive_int(pass_size, "pass_size")
    if not isinstance(noise_magnitude, (int, float)) or not noise_magnitude >= 0:
        raise ValueError(f"noise_magnitude must be a number >= 0, got {noise_magnitude!r}")
    targets = _check_inputs(model, x, targets)
    flat = x.flatten(1)
    sd = (noise_magnitude * (flat.amax(1) - flat.amin(1))).view(-1, *([1] * (x.ndim - 1)))
    per_pass = max(1, pass_size // len(x))
    total = None
    for first in range(0, samples, per_pass):
        ks = range(first, min(first + per_pass, samples))
        inputs = [x if k == samples - 1 else
                  x + sd * torch.randn(x.shape, generator=generator, dtype=x.dtype,
                                       device=generator.device).to(x.device) for k in ks]
        maps = _explain_batched(explain, model, torch.cat(inputs), targets.repeat(len(inputs)), pass_size)
        part = maps.unflatten(0, (len(inputs), len(x))).sum(0)
        total = part if total is None else total + part
    return total / samples


def _similarity_function(similarity) -> Callable:
    if callable(similarity):
        return similarity
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES} or a callable (a, b) -> (N,), got "
                         f"{similarity!r}")
    return getattr(_similarity, similarity)


@dataclass(frozen=True)
class SmoothMPRTResult:
    """``layers``: step names in order; ``scores``: (steps, N) similarity to the original smoothed map after
    each step; ``original``: (N,) similarity of two independent smoothings of the original model."""

    layers: list[str]
    scores: torch.Tensor
    original: torch.Tensor

    @property
    def last(self) -> torch.Tensor:
        """(N,) similarity for the fully randomised model (Quantus ``return_last_correlation=True``)."""
        return self.scores[-1]

    @property
    def average(self) -> torch.Tensor:
        """(N,) mean over the steps (Quantus ``return_average_correlation=True`` averages these)."""
        return self.scores.mean(0)


def smooth_mprt(model: nn.Module, x: torch.Tensor, targets, explain: Callable, *, randomisation=None,
                seed: int = 0, samples: int = 50, noise_magnitude: float = 0.1, similarity="spearman",
                normalise: str | None = "second-moment", absolute: bool = True, layerwise: bool = True,
                rng: torch.Generator | int, pass_size: int = 256, spec=None) -> SmoothMPRTResult:
    """sMPRT (Hedström et al. 2023; module docstring for every default and its source).

    ``randomisation``: None or ``"bottom-up"`` (default), ``"per-layer"`` (output first), ``"blocks"``
    (the supplement's A.1 blocks of ``spec``, see ``empirical.experiments.schedules``), a schedule (list
    of lists of module names; weights from
    ``step_state`` with ``seed``), or a callable ``model -> iterable of (name, model)`` such as Quantus's
    layer generator. ``layerwise=False`` scores only the last state (Quantus ``skip_layers=True``).
    ``rng``: the noise's ``torch.Generator`` (or seed); its draws, in the order original, original again,
    then every scored state, are the only randomness. ``model`` is left as it was.
    """
    generator = torch_generator(rng)
    targets = _check_inputs(model, x, targets)
    if normalise not in VARIANT_NORMALIZATIONS:
        raise ValueError(f"normalise must be one of {VARIANT_NORMALIZATIONS}, got {normalise!r}")
    compare = _similarity_function(similarity)

    def smoothed(m):
        maps = smooth_explanation(m, x, targets, explain, samples=samples, noise_magnitude=noise_magnitude,
                                  generator=generator, pass_size=pass_size)
        return _post(maps, normalise, absolute)

    reference = smoothed(model)
    original = compare(reference, smoothed(model))
    states = _model_states(model, randomisation, seed, spec)
    names, scores = [], []
    # lazily: a layer generator may yield one model object, randomised further at every step
    for name, state in (states if layerwise else [_last_state(states)]):
        names.append(name)
        scores.append(compare(reference, smoothed(state)))
    return SmoothMPRTResult(names, torch.stack(scores), original)


def discrete_entropy(maps: torch.Tensor, bins: int = 100) -> torch.Tensor:
    """Entropy (natural log) of each map's histogram of ``bins`` equal-width bins over [min, max], (N,).

    The bin of each value follows numpy.histogram exactly (edges by its linspace, the right edge in the last
    bin, its one-ulp corrections; a constant map gets one bin: entropy 0), computed in float64.
    """
    bins = positive_int(bins, "bins")
    flat = maps.flatten(1).to(torch.float64)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    constant = low == high
    low, high = torch.where(constant, low - 0.5, low), torch.where(constant, high + 0.5, high)
    steps = torch.arange(bins + 1, device=flat.device, dtype=torch.float64)
    edges = steps * ((high - low) / bins) + low
    edges[:, -1:] = high
    index = ((flat - low) / (high - low) * bins).long()
    index = torch.where(index == bins, index - 1, index)
    index = torch.where(flat < edges.gather(1, index), index - 1, index)
    up = (flat >= edges.gather(1, index + 1)) & (index != bins - 1)
    index = torch.where(up, index + 1, index)
    counts = torch.zeros(flat.shape[0], bins, device=flat.device, dtype=torch.float64)
    counts.scatter_add_(1, index, torch.ones_like(flat))
    p = counts / counts.sum(1, keepdim=True)
    return -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(1)


@dataclass(frozen=True)
class EfficientMPRTResult:
    """``score``: (N,) relative entropy rise; ``entropy_original``, ``entropy_randomised``: (N,);
    ``layer``: name of the last randomisation step."""

    score: torch.Tensor
    entropy_original: torch.Tensor
    entropy_randomised: torch.Tensor
    layer: str


def efficient_mprt(model: nn.Module, x: torch.Tensor, targets, explain: Callable, *, randomisation=None,
                   seed: int = 0, bins: int = 100, normalise: str | None = None, absolute: bool = False,
                   batch_size: int = 256, spec=None) -> EfficientMPRTResult:
    """eMPRT (Hedström et al. 2023; module docstring for every default and its source).

    (H(e') - H(e)) / H(e) per image, e the original model's map, e' the fully randomised model's (the last
    state of ``randomisation``, as in :func:`smooth_mprt`), H the histogram entropy of
    :func:`discrete_entropy`. A map of entropy 0 (constant) gives inf or NaN, as in Quantus. Deterministic
    given ``seed`` (the weights); ``model`` is left as it was.
    """
    targets = _check_inputs(model, x, targets)
    batch_size = positive_int(batch_size, "batch_size")
    if normalise not in VARIANT_NORMALIZATIONS:
        raise ValueError(f"normalise must be one of {VARIANT_NORMALIZATIONS}, got {normalise!r}")
    original = discrete_entropy(_post(_explain_batched(explain, model, x, targets, batch_size), normalise,
                                      absolute), bins)
    last = _last_state(_model_states(model, randomisation, seed, spec))
    randomised_maps = _explain_batched(explain, last[1], x, targets, batch_size)
    randomised = discrete_entropy(_post(randomised_maps, normalise, absolute), bins)
    return EfficientMPRTResult((randomised - original) / original, original, randomised, last[0])
