"""What each test rewards: every sanity check and faithfulness test scored on ``M+noise(s)``.

For every base method M and noise level s, the map M + s RMS(M) Z (``empirical.experiments.noisy``; Z i.i.d.
N(0, 1) a pixel, a fresh Z for every map) is scored by

- MPRT (seed A.1, H): the original model's noisy map against the fully randomised model's (the seed's
  block schedule, every step), by SSIM (Theorem 1), Spearman (Theorem 3) and MSE (Theorem 4), after the
  second-moment and the max-abs normalisation (eq. 11); lower similarity (higher MSE) passes;
- sMPRT and eMPRT (Hedström et al. 2023; ``empirical.measures.mprt_variants``) on the same two models;
- MoRF and LeRF areas (seed A.1; ``empirical.experiments.faithfulness``) and their gap LeRF - MoRF.

Beside each MPRT MSE and Spearman score (second-moment normalisation) the table holds its closed form
(``theory.noise_injection``, case (b): independent noises on both maps) from the image's clean-pair
moments. Image i's noise at call k of a chunk is drawn from (seed, k, i): the same at every level (level s
and s' differ by the scale of one Z), fresh for each model and noisy input, and the same in any batch.

The kernel :func:`rewards_batch` returns one batch's rows and reads or writes no file;
``empirical.run.rewards`` runs it chunk by chunk, resumably.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

import theory
from empirical.experiments._common import conservation_unchecked, draw_generator, explain, explained_classes
from empirical.experiments.faithfulness import curve_area, perturbation_curves
from empirical.experiments.noisy import noise_for_images
from empirical.measures import mprt_variants, similarity
from empirical.measures.similarity import MPRT_NORMALIZATIONS
from empirical.storage.tables import REWARDS_COLUMNS

__all__ = ["TESTS", "TEST_DIRECTIONS", "rewards_batch"]

#: test -> True where a higher score passes (is the better explanation by that test)
TEST_DIRECTIONS = {
    **{f"MPRT {m} ({n})": m == "mse" for m in ("ssim", "spearman", "mse") for n in MPRT_NORMALIZATIONS},
    "sMPRT (spearman)": False, "eMPRT": True, "MoRF area": False, "LeRF area": True, "gap LeRF-MoRF": True,
}
TESTS = tuple(TEST_DIRECTIONS)


def _memory(tensor: torch.Tensor) -> tuple:
    return tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype, tensor.device


class _FreshNoise:
    """M+noise(s) drawing a new Z at every call (the call count is the noise stream): the maps of two models,
    or of two noisy inputs, never share noise (theory.noise_injection's case (b)). ``clean``: M's clean maps
    of the chunk's ``batch`` (images, targets) by model, shared across levels, since only the noise changes
    with s. Only inputs that view the batch's own memory are looked up (the batch outlives the chunk's
    calls, so its memory is never reused); any other input, such as sMPRT's noisy copies, is explained
    afresh, without copying it to the host to compare."""

    def __init__(self, method, level: float, *, seed: int, draw_keys: Mapping, first_image: int, clean: dict,
                 batch: tuple[torch.Tensor, torch.Tensor]):
        self.method, self.level, self.seed, self.draw_keys = method, level, seed, draw_keys
        self.first_image, self.clean, self.calls = first_image, clean, 0
        self.batch = tuple(_memory(t) for t in batch)

    def clean_maps(self, model, x, targets):
        # the random control draws by model (step 0 or the last step), as in randomization_batch
        if (_memory(x), _memory(targets)) != self.batch:
            return explain(self.method, model, x, targets, self.draw_keys[id(model)])
        if id(model) not in self.clean:
            self.clean[id(model)] = explain(self.method, model, x, targets, self.draw_keys[id(model)])
        return self.clean[id(model)]

    def __call__(self, model, x, targets):
        maps = self.clean_maps(model, x, targets)
        self.calls += 1
        if self.level == 0:
            return maps
        rms = maps.flatten(1).square().mean(1).sqrt().view(-1, 1, 1)
        noise = noise_for_images(maps.shape[1:], range(self.first_image, self.first_image + len(maps)),
                                 seed=self.seed, stream=self.calls, dtype=maps.dtype, device=maps.device)
        return maps + self.level * rms * noise


def _clean_pair_moments(reference: torch.Tensor, randomised: torch.Tensor) -> list[np.ndarray]:
    """Per image: means, variances and covariance of the two second-moment-normalised clean maps."""
    a, b = reference.flatten(1).double().cpu(), randomised.flatten(1).double().cpu()
    a = a / a.square().mean(1, keepdim=True).sqrt().clamp_min(1e-300)
    b = b / b.square().mean(1, keepdim=True).sqrt().clamp_min(1e-300)
    mu_a, mu_b = a.mean(1), b.mean(1)
    cov = ((a - mu_a[:, None]) * (b - mu_b[:, None])).mean(1)
    return [t.numpy() for t in (mu_a, mu_b, a.var(1, correction=0), b.var(1, correction=0), cov)]


def _areas(model, x, targets, maps, *, patch_size, steps, blur_kernel, score, forward_batch_size):
    areas = {}
    for order in ("morf", "lerf"):
        curves = perturbation_curves(model, x, targets, maps, patch_size=patch_size, steps=steps,
                                     blur_kernel=blur_kernel, order=order, batch_size=forward_batch_size,
                                     score=score).numpy()
        areas[order] = curve_area(curves)
    return areas


def _chunk_rows(model, randomised, x, targets, method, *, levels, seed, first_image, last_step, options):
    """The rows (dicts of REWARDS_COLUMNS but ``model``) of one method on one batch, every level."""
    rows, clean = [], {}
    count = len(x)

    def add(test, level, values, predicted=None):
        values = np.asarray(torch.as_tensor(values).double().cpu(), dtype=float).reshape(count)
        predicted = np.full(count, np.nan) if predicted is None else np.asarray(predicted, float)
        rows.extend({"method": method_name, "level": float(level), "test": test, "image": first_image + i,
                     "value": float(v), "theory": float(t)}
                    for i, (v, t) in enumerate(zip(values, predicted, strict=True)))

    method_name, method_of = method
    draw_keys = {id(model): (seed, first_image, 0), id(randomised): (seed, first_image, last_step)}
    noisy = {level: _FreshNoise(method_of, level, seed=seed, draw_keys=draw_keys, first_image=first_image,
                                clean=clean, batch=(x, targets)) for level in levels}
    clean_original = noisy[levels[0]].clean_maps(model, x, targets)  # checked; reused at every level
    with conservation_unchecked():
        moments = _clean_pair_moments(clean_original, noisy[levels[0]].clean_maps(randomised, x, targets))
    both = lambda m: [("all", randomised)]  # noqa: E731 (the two model states of sMPRT and eMPRT)
    for level in levels:
        explain_noisy = noisy[level]
        with conservation_unchecked():
            reference, other = explain_noisy(model, x, targets), explain_noisy(randomised, x, targets)
        for normalization in MPRT_NORMALIZATIONS:
            second = normalization == "second-moment"
            add(f"MPRT ssim ({normalization})", level,
                similarity.ssim(reference, other, normalize=normalization))
            add(f"MPRT spearman ({normalization})", level,
                similarity.spearman(reference, other, normalize=normalization),
                theory.noise_injection.spearman_noisy_pair(*moments, level) if second else None)
            add(f"MPRT mse ({normalization})", level,
                similarity.mse(reference, other, normalize=normalization),
                theory.noise_injection.normalized_mse_noisy_pair(*moments, level) if second else None)
        with conservation_unchecked():  # sMPRT's noisy inputs and eMPRT explain the randomised model too
            smooth = mprt_variants.smooth_mprt(model, x, targets, explain_noisy, randomisation=both,
                                               layerwise=False, samples=options["smprt_samples"],
                                               noise_magnitude=options["smprt_noise"], similarity="spearman",
                                               rng=draw_generator((seed, first_image, last_step + 1)))
        add("sMPRT (spearman)", level, smooth.last)
        with conservation_unchecked():
            emprt = mprt_variants.efficient_mprt(model, x, targets, explain_noisy, randomisation=both,
                                                 bins=options["emprt_bins"]).score
        add("eMPRT", level, emprt)
        areas = _areas(model, x, targets, explain_noisy(model, x, targets), patch_size=options["patch_size"],
                       steps=options["steps"], blur_kernel=options["blur_kernel"], score=options["score"],
                       forward_batch_size=options["forward_batch_size"])
        add("MoRF area", level, areas["morf"])
        add("LeRF area", level, areas["lerf"])
        add("gap LeRF-MoRF", level, areas["lerf"] - areas["morf"])
    return rows


def rewards_batch(model, randomised, images: torch.Tensor, labels: torch.Tensor | None, method, *,
                  method_name: str, model_name: str, levels: Sequence[float], seed: int, first_image: int,
                  last_step: int, smprt_samples: int = 3, smprt_noise: float = 0.1, emprt_bins: int = 100,
                  patch_size: int = 15, steps: int = 30, blur_kernel: int = 15, score="softmax",
                  forward_batch_size: int = 256) -> pd.DataFrame:
    """The kernel of the rewards experiment: the ``REWARDS_COLUMNS`` rows of one batch of ``images`` (on the
    device of ``model``, the original network in eval mode) and one resolved ``method``
    (``empirical.experiments._common.resolve_methods``) at every noise level of ``levels``.

    ``randomised``: ``model`` with every block step re-initialised (``randomised_copy``, schedule steps
    1..``last_step``). Explains ``labels``, or the model's top class where None. Random draws are keyed by
    (``seed``, ``first_image``: the index of the batch's first image in the run, step): the random control
    by step 0 on ``model`` and ``last_step`` on ``randomised``, sMPRT's noisy inputs by ``last_step + 1``.
    The other settings: as ``empirical.run.rewards.run_rewards``."""
    options = {"smprt_samples": smprt_samples, "smprt_noise": smprt_noise, "emprt_bins": emprt_bins,
               "patch_size": patch_size, "steps": steps, "blur_kernel": blur_kernel, "score": score,
               "forward_batch_size": forward_batch_size}
    targets = explained_classes(model, images, labels)
    rows = _chunk_rows(model, randomised, images, targets, (method_name, method), levels=tuple(levels),
                       seed=seed, first_image=first_image, last_step=last_step, options=options)
    return pd.DataFrame(rows).assign(model=model_name)[list(REWARDS_COLUMNS)]
