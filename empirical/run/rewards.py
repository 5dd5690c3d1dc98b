"""The rewards experiment (what each test rewards: every sanity check and faithfulness test on M+noise(s))
run chunk by chunk: the kernel ``empirical.experiments.rewards.rewards_batch`` over every (method, batch)
chunk, resumably (``empirical.run.chunked``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from empirical._checks import positive_int
from empirical.experiments._common import resolve_methods
from empirical.experiments.faithfulness import score_function
from empirical.experiments.noisy import DEFAULT_LEVELS
from empirical.experiments.randomization import randomised_copy
from empirical.experiments.rewards import rewards_batch
from empirical.experiments.schedules import schedule_steps
from empirical.run.chunked import Chunk, chunk_key, input_fingerprints, method_fingerprint, run_chunked
from empirical.storage.streaming import as_stream
from empirical.storage.tables import REWARDS_COLUMNS

__all__ = ["run_rewards"]


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
    Each chunk is the kernel ``empirical.experiments.rewards.rewards_batch``.
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
    stream = as_stream(images, labels)
    count = stream.count if max_images is None else min(stream.count, positive_int(max_images, "max_images"))
    ranges = [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
    # the blocks re-initialised (from ``spec``) are part of the settings a chunk is computed from
    schedule = schedule_steps(model, "blocks", spec)
    # a chunk is reused only when computed from the same images, labels, weights and settings
    settings = {"experiment": "rewards", "model_name": model_name, "batch_size": batch_size,
                "seed": int(seed), "device": torch.device(device).type, "levels": list(levels),
                "count": count, "schedule": schedule, **options}
    inputs = input_fingerprints(stream, ranges, model=model, settings=settings)
    chunks = [Chunk(chunk_key(model_name, name, start=start, stop=stop), start, stop,
                    method_fingerprint(inputs[start], name, method), name)
              for name, method in resolved.items() for start, stop in ranges]

    def prepare():
        original = copy.deepcopy(model).to(device).eval()
        randomised = randomised_copy(original, schedule, len(schedule), seed=seed).eval()
        return lambda x, labels_of, chunk, advance: rewards_batch(
            original, randomised, x, labels_of, resolved[chunk.part], method_name=chunk.part,
            model_name=model_name, levels=levels, seed=seed, first_image=chunk.start,
            last_step=len(schedule), **options)

    collected = run_chunked(chunks, stream, prepare, store=store, shard=shard, columns=REWARDS_COLUMNS,
                            batch_size=batch_size, device=device, progress=progress,
                            description=f"rewards {model_name}")
    keep = (collected["model"] == model_name) & collected["method"].isin(list(resolved))
    return collected[keep].reset_index(drop=True)


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
