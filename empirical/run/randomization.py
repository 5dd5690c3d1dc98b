"""The top-down randomisation experiment (seed A.1, H) run chunk by chunk: the kernel
``empirical.experiments.randomization.randomization_batch`` over every (method, batch) chunk, resumably
(``empirical.run.chunked``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from empirical._checks import positive_int
from empirical.experiments._common import resolve_methods
from empirical.experiments.randomization import prepare_randomization, randomization_batch
from empirical.experiments.schedules import schedule_steps
from empirical.run.chunked import Chunk, chunk_key, input_fingerprints, method_fingerprint, run_chunked
from empirical.storage.streaming import ImageStream, as_stream
from empirical.storage.tables import RANDOMIZATION_COLUMNS

__all__ = ["run_randomization"]


def run_randomization(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, *, model_name: str,
                      store, methods: Sequence[str], batch_size: int, seed: int, device="cpu",
                      progress: bool = True, spec=None, schedule: str = "blocks",
                      init_mode: str = "fan_in", attribution_options: Mapping | None = None,
                      shard=None) -> pd.DataFrame:
    """The top-down randomisation experiment (seed A.1, H): one tidy table (docs/results-format.md).

    For each method and image batch (one chunk, all steps): the kernel
    ``empirical.experiments.randomization.randomization_batch`` (the original model's maps once, then one
    attribution pass of the cumulatively re-initialised copy a schedule step, scored by every measure after
    every normalisation, with noise floors). ``schedule``: ``"blocks"`` (the supplement's A.1 blocks, from
    ``spec``: a ``NetworkSpec``, a built-in name, or None for the model's own row) or ``"per-layer"``
    (Quantus MPRT's), see ``empirical.experiments.schedules``.
    Explains ``labels``, or the original model's top class where None. ``model`` is not modified.
    ``methods``: names of ``empirical.attribution``, callables ``(model, x, target) -> (N, H, W)`` (named by
    ``__name__``) or a mapping name -> callable; ``attribution_options``: method name -> keyword options
    (``{"integrated-gradients": {"steps": 16}}``). Returns the rows of ``model_name`` and ``methods``
    from ``store``: a finished chunk is reused only when computed from the same inputs (images, labels,
    weights, method and settings: their fingerprint), else computed again. The table has no schedule
    column: give a per-layer run its own store.
    ``images`` may also be an ``empirical.storage.streaming.ImageStream`` (``labels`` None), whose batches are
    decoded as they are needed; ``shard`` (``empirical.storage.distributed.Shard``) computes only this rank's
    chunks and waits for the other ranks before collecting.
    """
    if isinstance(images, ImageStream):
        _check_settings(batch_size, schedule)
    else:
        images, labels = _check_inputs(images, labels, batch_size, schedule)
    stream = as_stream(images, labels)
    resolved = resolve_methods(methods, attribution_options)
    steps = schedule_steps(model, schedule, spec)
    ranges = [(start, min(start + batch_size, stream.count)) for start in range(0, stream.count, batch_size)]
    # a chunk is reused only when computed from the same images, labels, weights and settings
    settings = {"experiment": "randomization", "model_name": model_name, "batch_size": batch_size,
                "seed": int(seed), "device": torch.device(device).type, "schedule": schedule,
                "steps": steps, "init_mode": init_mode}
    inputs = input_fingerprints(stream, ranges, model=model, settings=settings)
    chunks = [Chunk(chunk_key(model_name, schedule, method, start=start, stop=stop), start, stop,
                    method_fingerprint(inputs[start], method, resolved[method]), method)
              for method in resolved for start, stop in ranges]

    def prepare():
        prepared = prepare_randomization(model, steps, seed=seed, init_mode=init_mode, device=device)
        return lambda x, labels_of, chunk, advance: randomization_batch(
            prepared, x, labels_of, resolved[chunk.part], method_name=chunk.part, model_name=model_name,
            seed=seed, first_image=chunk.start, on_step=advance)

    collected = run_chunked(chunks, stream, prepare, store=store, shard=shard, columns=RANDOMIZATION_COLUMNS,
                            batch_size=batch_size, device=device, progress=progress,
                            description=f"randomization {model_name}", unit="step",
                            units_per_chunk=len(steps))
    keep = (collected["model"] == model_name) & collected["method"].isin(list(resolved))
    return collected[keep].reset_index(drop=True)


def _check_inputs(images, labels, batch_size, schedule):
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if len(images) == 0:
        raise ValueError("images must hold at least one image, got 0")
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.shape != (len(images),) or labels.is_floating_point():
            raise ValueError(f"labels must be an integer tensor of shape ({len(images)},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        labels = labels.long()
    _check_settings(batch_size, schedule)
    return images, labels


def _check_settings(batch_size, schedule) -> None:
    positive_int(batch_size, "batch_size")
    if schedule not in ("blocks", "per-layer"):
        raise ValueError(f"schedule must be 'blocks' or 'per-layer', got {schedule!r}")
