"""The faithfulness experiment (seed A.1, figures 1-3) run chunk by chunk: the kernel
``empirical.experiments.faithfulness.faithfulness_batch`` over every (method, batch) chunk, resumably
(``empirical.run.chunked``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from empirical._checks import positive_int
from empirical.experiments._common import resolve_methods
from empirical.experiments.faithfulness import (
    ORDERS,
    PAPER_BLUR_KERNEL,
    PAPER_PATCH_SIZES,
    PAPER_STEPS,
    faithfulness_batch,
    score_function,
)
from empirical.run.chunked import Chunk, chunk_key, input_fingerprints, method_fingerprint, run_chunked
from empirical.storage.chunks import ChunkStore
from empirical.storage.streaming import ImageStream, as_stream
from empirical.storage.tables import FAITHFULNESS_COLUMNS

__all__ = ["run_faithfulness"]


def run_faithfulness(model, images: torch.Tensor, labels: torch.Tensor | None, *, model_name: str,
                     store: ChunkStore, methods, batch_size: int = 32, seed: int = 0, device="cpu",
                     progress: bool = True, patch_sizes=PAPER_PATCH_SIZES,
                     blur_kernel: int = PAPER_BLUR_KERNEL, steps: int = PAPER_STEPS,
                     stride: int | None = None, forward_batch_size: int | None = None,
                     attribution_options=None, order: str = "morf", shard=None,
                     score="softmax") -> pd.DataFrame:
    """Perturbation curves (seed A.1) for every method, patch size and image; returns the ``faithfulness.csv``
    rows of ``model_name`` (columns ``FAITHFULNESS_COLUMNS``).

    One chunk per (method, batch of ``batch_size`` images) covering all patch sizes (the kernel
    ``empirical.experiments.faithfulness.faithfulness_batch``); finished chunks in ``store`` computed from the
    same inputs (images, labels, weights, method and settings: their fingerprint) are skipped, any other
    chunk of the same name is computed again, and only this call's chunks make the table. ``methods`` and
    ``attribution_options``: as for ``run_randomization`` (names of ``empirical.attribution``, callables
    ``(model, x, target) -> (N, H, W)`` or a mapping name -> either; the random control is seeded as there,
    by (seed, first image, 0)). ``forward_batch_size`` (default 4 ``batch_size``) sets how many perturbed
    images go through the network at once. ``order="lerf"``: least relevant first; keep its chunks in a
    store of their own (e.g. experiment ``faithfulness_lerf``), as the table has no order column. ``images``
    may also be an ``empirical.storage.streaming.ImageStream`` (``labels`` None), decoded batch by batch;
    ``shard`` (``empirical.storage.distributed.Shard``) computes only this rank's chunks, then waits for the
    others.
    ``score``: ``"softmax"`` (default), ``"sigmoid"`` for a multi-label network (seed A.3) or a callable, as
    ``score_function``. ``labels=None`` explains each image's highest predicted class (the seed's choice for
    COCO and VOC).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    batch_size = positive_int(batch_size, "batch_size")
    # inference needs no activations kept for a backward pass: larger batches fit and run faster
    forward_batch_size = 4 * batch_size if forward_batch_size is None else positive_int(forward_batch_size,
                                                                                          "forward_batch_size")
    if isinstance(patch_sizes, (int, np.integer)):
        patch_sizes = (patch_sizes,)
    patch_sizes = tuple(positive_int(p, "patch_sizes") for p in patch_sizes)
    if not patch_sizes:
        raise ValueError("patch_sizes must hold at least one size")
    if not isinstance(images, ImageStream):
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        if labels is not None and labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    stream = as_stream(images, labels)
    resolved = resolve_methods(methods, attribution_options)
    score_function(score)  # a bad score fails before any work
    ranges = [(start, min(start + batch_size, stream.count)) for start in range(0, stream.count, batch_size)]
    # a chunk is reused only when computed from the same images, labels, weights and settings
    settings = {"experiment": "faithfulness", "model_name": model_name, "batch_size": batch_size,
                "seed": int(seed), "device": torch.device(device).type, "patch_sizes": list(patch_sizes),
                "blur_kernel": blur_kernel, "steps": steps, "stride": stride,
                "forward_batch_size": forward_batch_size, "order": order, "score": score}
    inputs = input_fingerprints(stream, ranges, model=model, settings=settings)
    chunks = [Chunk(chunk_key(model_name, name, start=start, stop=stop), start, stop,
                    method_fingerprint(inputs[start], name, method), name)
              for name, method in resolved.items() for start, stop in ranges]

    def compute(x, labels_of, chunk, advance):
        return faithfulness_batch(model, x, labels_of, resolved[chunk.part], method_name=chunk.part,
                                  model_name=model_name, seed=seed, first_image=chunk.start,
                                  patch_sizes=patch_sizes, blur_kernel=blur_kernel, steps=steps,
                                  stride=stride, forward_batch_size=forward_batch_size, order=order,
                                  score=score)

    table = run_chunked(chunks, stream, lambda: compute, store=store, shard=shard,
                        columns=FAITHFULNESS_COLUMNS, batch_size=batch_size, device=device, progress=progress,
                        description=f"faithfulness {model_name}")
    return table[table["model"] == model_name].reset_index(drop=True)
