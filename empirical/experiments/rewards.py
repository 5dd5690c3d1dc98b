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
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

import theory
from empirical._checks import positive_int
from empirical.experiments._common import (
    chunk_key,
    conservation_unchecked,
    draw_generator,
    explain,
    explained_classes,
    input_fingerprints,
    method_fingerprint,
    progress_bar,
    resolve_methods,
)
from empirical.experiments.faithfulness import curve_area, perturbation_curves, score_function
from empirical.experiments.noisy import DEFAULT_LEVELS, noise_for_images
from empirical.experiments.randomization import randomised_copy
from empirical.experiments.schedules import schedule_steps
from empirical.measures import mprt_variants, similarity
from empirical.measures.similarity import MPRT_NORMALIZATIONS
from empirical.storage.distributed import Shard
from empirical.storage.streaming import as_stream
from empirical.storage.tables import REWARDS_COLUMNS

__all__ = ["TESTS", "TEST_DIRECTIONS", "run_rewards"]

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
        # the random control draws by model (step 0 or the last step), as in run_randomization
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


def _levels(levels) -> tuple[float, ...]:
    levels = tuple(levels)
    if not levels:
        raise ValueError("levels must hold at least one noise level")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
                or not np.isfinite(level) or level < 0:
            raise ValueError(f"levels must be finite numbers >= 0, got {level!r}")
    if len(set(levels)) != len(levels):
        raise ValueError(f"levels must be distinct, got {levels}")
    return tuple(float(level) for level in levels)


def run_rewards(model, images, labels, *, model_name: str, store, methods, batch_size: int, seed: int = 0,
                device="cpu", progress: bool = True, base_methods: Sequence[str] | None = None,
                levels: Sequence[float] = DEFAULT_LEVELS, max_images: int | None = None,
                smprt_samples: int = 3, smprt_noise: float = 0.1, emprt_bins: int = 100, patch_size: int = 15,
                steps: int = 30, blur_kernel: int = 15, score="softmax", spec=None,
                forward_batch_size: int = 256, attribution_options: Mapping | None = None,
                shard=None) -> pd.DataFrame:
    """Every test of the module docstring on M+noise(s), for each base method M, level s and image; returns
    the ``rewards.csv`` rows of ``model_name`` (columns ``REWARDS_COLUMNS``).

    ``base_methods``: the methods among ``methods`` to inject noise into (default: all of ``methods``);
    ``max_images``: only the first images of ``images`` (default all). ``smprt_samples`` noisy inputs of
    noise ``smprt_noise`` (Quantus SmoothMPRT's ``noise_magnitude`` default 0.1; its ``nr_samples`` default is
    50), ``emprt_bins`` histogram bins (Quantus EfficientMPRT's default 100). ``patch_size``, ``steps``,
    ``blur_kernel`` and ``score``: the faithfulness settings (``run_faithfulness``). One chunk per (method,
    batch of ``batch_size`` images) with every level; finished chunks in ``store`` computed from the same
    inputs (images, labels, weights, method and settings: their fingerprint) are skipped; ``shard``
    (``empirical.storage.distributed.Shard``) computes only this rank's chunks. ``model`` is not modified.
    """
    batch_size = positive_int(batch_size, "batch_size")
    levels = _levels(levels)
    options = {"smprt_samples": positive_int(smprt_samples, "smprt_samples"),
               "emprt_bins": positive_int(emprt_bins, "emprt_bins"),
               "patch_size": positive_int(patch_size, "patch_size"), "steps": positive_int(steps, "steps"),
               "blur_kernel": positive_int(blur_kernel, "blur_kernel"),
               "forward_batch_size": positive_int(forward_batch_size, "forward_batch_size"), "score": score}
    if isinstance(smprt_noise, bool) or not isinstance(smprt_noise, (int, float)) or not smprt_noise >= 0:
        raise ValueError(f"smprt_noise must be a number >= 0, got {smprt_noise!r}")
    options["smprt_noise"] = float(smprt_noise)
    score_function(score)
    methods = [methods] if isinstance(methods, str) else list(methods)
    if base_methods is not None:
        unknown = [m for m in base_methods if m not in methods]
        if unknown:
            raise ValueError(f"base_methods {unknown} are not among methods {methods}")
        methods = [m for m in methods if m in base_methods]
    resolved = resolve_methods(methods, {k: v for k, v in dict(attribution_options or {}).items()
                                         if k in methods})
    stream, shard = as_stream(images, labels), shard or Shard()
    count = stream.count if max_images is None else min(stream.count, positive_int(max_images, "max_images"))
    starts = range(0, count, batch_size)
    key = lambda name, start: chunk_key(model_name, name, start=start,  # noqa: E731
                                        stop=min(start + batch_size, count))
    # the blocks re-initialised (from ``spec``) are part of the settings a chunk is computed from
    schedule = schedule_steps(model, "blocks", spec)
    # a chunk is reused only when computed from the same images, labels, weights and settings
    settings = {"experiment": "rewards", "model_name": model_name, "batch_size": batch_size,
                "seed": int(seed), "device": torch.device(device).type, "levels": list(levels),
                "count": count, "schedule": schedule, **options}
    inputs = input_fingerprints(stream, [(start, min(start + batch_size, count)) for start in starts],
                                model=model, settings=settings)
    expected = {key(name, start): method_fingerprint(inputs[start], name, method)
                for name, method in resolved.items() for start in starts}
    pending = shard.assign([(name, start) for name in resolved for start in starts
                            if not store.has(key(name, start), expected[key(name, start)])])
    if pending:
        original = copy.deepcopy(model).to(device).eval()
        randomised = randomised_copy(original, schedule, len(schedule), seed=seed).eval()
        by_batch = {}
        for name, start in pending:
            by_batch.setdefault(start, []).append(name)
        with progress_bar(len(pending), description=f"rewards {model_name}", unit="chunk",
                          enabled=progress) as bar:
            for batch in stream.batches(batch_size, list(by_batch), device=device):
                x = batch.images[:count - batch.start]
                labels_of = None if batch.labels is None else batch.labels[:len(x)]
                targets = explained_classes(original, x, labels_of)
                for name in by_batch[batch.start]:
                    rows = _chunk_rows(original, randomised, x, targets, (name, resolved[name]),
                                       levels=levels, seed=seed, first_image=batch.start,
                                       last_step=len(schedule), options=options)
                    table = pd.DataFrame(rows).assign(model=model_name)[list(REWARDS_COLUMNS)]
                    store.write(key(name, batch.start), table, expected[key(name, batch.start)])
                    shard.chunk_written()
                    bar.update(1)
    shard.barrier()
    collected = store.collect(columns=list(REWARDS_COLUMNS), fingerprints=expected)
    keep = (collected["model"] == model_name) & collected["method"].isin(list(resolved))
    return collected[keep].reset_index(drop=True)
