"""Faithfulness by region perturbation with a blurred copy (seed A.1, figures 1-3).

A blurred copy of each image is made with a constant (box) ``blur_kernel`` x ``blur_kernel`` kernel; the
``steps`` patches of size ``patch_size`` with the highest mean attribution are replaced one at a time from the
blurred copy, most relevant first, and the softmax probability of the explained class is recorded before and
after each step (``steps + 1`` values per image). The paper: kernel 15, patches 8 and 15, 30 steps at 224x224.
``score="sigmoid"`` records the sigmoid of the explained label's logit instead: the score of a multi-label
network trained with binary cross-entropy (seed A.3, COCO and VOC), whose labels are scored independently;
there the explained label is the highest predicted one (``labels=None``).

Border handling of the blur: reflection about the edge pixel (the edge pixel is not repeated: ``d c b | a b c
d``, torch's ``reflect``, scipy.ndimage's ``mirror``), so the blurred copy keeps the colour statistics at the
border. Patches lie on a non-overlapping grid from the top-left corner; a strip narrower than a patch at
the right and bottom border belongs to no patch. With ``stride`` < ``patch_size`` (sliding windows) the
windows are ranked by mean attribution and taken greedily, skipping any window that overlaps one already
taken. Ties go to the window first in row-major order.

Symmetric faithfulness (Blücher et al. 2024, Brocki and Chung 2022): ``order="lerf"`` replaces the
least relevant patches first (the ranking of ``-attribution``; the same grid, ties and blur). A faithful map
drops the score fast under MoRF and keeps it under LeRF, so the MoRF area is low and the LeRF area high;
:func:`order_gap` gives LeRF area - MoRF area per image (higher is better), which cancels what the
perturbation itself does to the score whatever the map. :func:`relative_to_control` divides each method's
area by the random-uniform control's on the same image. The default ``"morf"`` is seed A.1's test.

Batched: the perturbed images of all steps of a chunk of images are built on the device from a per-pixel
"replaced at step" map and go through the network in batches; no Python loop per image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional

from empirical._checks import positive_int
from empirical.experiments._common import (
    chunk_key,
    explain,
    explained_classes,
    input_fingerprints,
    method_fingerprint,
    progress_bar,
    resolve_methods,
)
from empirical.multilabel.targets import SCORE_FUNCTIONS
from empirical.storage.chunks import ChunkStore
from empirical.storage.distributed import Shard
from empirical.storage.streaming import ImageStream, as_stream
from empirical.storage.tables import FAITHFULNESS_AREA_COLUMNS, FAITHFULNESS_COLUMNS

__all__ = [
    "PAPER_BLUR_KERNEL",
    "PAPER_PATCH_SIZES",
    "PAPER_STEPS",
    "blur",
    "ORDERS",
    "curve_area",
    "faithfulness_area",
    "order_gap",
    "perturbation_curves",
    "relative_to_control",
    "replacement_steps",
    "run_faithfulness",
    "score_function",
]

PAPER_BLUR_KERNEL = 15
PAPER_PATCH_SIZES = (8, 15)
PAPER_STEPS = 30
#: most relevant first (seed A.1) and least relevant first
ORDERS = ("morf", "lerf")
_NEVER = torch.iinfo(torch.int32).max


def score_function(score):
    """The score a perturbation curve tracks: ``"softmax"`` (single-label, seed A.1), ``"sigmoid"`` (the
    explained label's own probability, multi-label, seed A.3) or a callable ``(logits (N, classes), targets
    (N,)) -> (N,)``. ValueError naming ``score`` otherwise."""
    if callable(score):
        return score
    if isinstance(score, str) and score in SCORE_FUNCTIONS:
        return SCORE_FUNCTIONS[score]
    raise ValueError(f"score must be one of {', '.join(SCORE_FUNCTIONS)} or a callable (logits, targets) -> "
                     f"scores, got {score!r}")


def blur(images: torch.Tensor, kernel_size: int = PAPER_BLUR_KERNEL) -> torch.Tensor:
    """Each channel averaged over a ``kernel_size`` x ``kernel_size`` window (constant kernel, seed A.1) with
    reflected borders; ``kernel_size`` odd and smaller than twice the image side. Returns (N, C, H, W)."""
    kernel_size = positive_int(kernel_size, "blur_kernel")
    if kernel_size % 2 == 0:
        raise ValueError(f"blur_kernel must be odd so that the window is centred, got {kernel_size}")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    half = kernel_size // 2
    if half >= min(images.shape[-2:]):
        raise ValueError(f"blur_kernel {kernel_size} is too large for images of size "
                         f"{tuple(images.shape[-2:])}")
    if half == 0:
        return images.clone()
    padded = functional.pad(images, (half, half, half, half), mode="reflect")
    # a box filter is separable: two 1-D means cost 2k instead of k^2 operations a pixel
    rows = functional.avg_pool2d(padded, kernel_size=(kernel_size, 1), stride=1)
    return functional.avg_pool2d(rows, kernel_size=(1, kernel_size), stride=1)


def _check_order(order) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    return order


def replacement_steps(attribution: torch.Tensor, patch_size: int, steps: int = PAPER_STEPS, *,
                      stride: int | None = None, order: str = "morf") -> torch.Tensor:
    """For each pixel, the step (1..``steps``) at which its patch is replaced; ``2**31 - 1`` where never.

    ``attribution``: (N, H, W). Patches are ranked by their mean attribution, most relevant first (see the
    module docstring for the grid, sliding windows and ties); ``order="lerf"``: least relevant first.
    Returns an int32 tensor (N, H, W).
    """
    if _check_order(order) == "lerf":
        attribution = -attribution
    patch_size = positive_int(patch_size, "patch_size")
    steps = positive_int(steps, "steps")
    stride = patch_size if stride is None else positive_int(stride, "stride")
    if stride > patch_size:
        raise ValueError(f"stride must not exceed patch_size ({patch_size}), got {stride}")
    if attribution.ndim != 3:
        raise ValueError(f"attribution must have shape (N, H, W), got {tuple(attribution.shape)}")
    n, height, width = attribution.shape
    if patch_size > min(height, width):
        raise ValueError(f"patch_size {patch_size} is larger than the image ({height}x{width})")
    if not torch.isfinite(attribution).all():
        raise ValueError("attribution maps contain NaN or infinite values: patches cannot be ranked")
    means = functional.avg_pool2d(attribution[:, None].double(), patch_size, stride=stride)[:, 0]
    grid_rows, grid_cols = means.shape[-2:]
    if stride == patch_size and grid_rows * grid_cols < steps:
        raise ValueError(f"steps ({steps}) exceeds the {grid_rows * grid_cols} patches of size {patch_size} "
                         f"in a {height}x{width} image")
    device = attribution.device
    scores = means.flatten(1)
    origin_rows = (torch.arange(grid_rows, device=device) * stride).repeat_interleave(grid_cols)
    origin_cols = (torch.arange(grid_cols, device=device) * stride).repeat(grid_rows)
    pixel_rows = torch.arange(height, device=device)[None, :, None]
    pixel_cols = torch.arange(width, device=device)[None, None, :]
    result = torch.full((n, height, width), _NEVER, dtype=torch.int32, device=device)
    available = torch.ones_like(scores, dtype=torch.bool)
    for step in range(1, steps + 1):
        # greedy over all images at once; one iteration a step, not a pixel or an image
        candidates = scores.masked_fill(~available, -torch.inf)
        chosen = candidates.argmax(dim=1)
        found = available.gather(1, chosen[:, None])[:, 0]
        row, col = origin_rows[chosen], origin_cols[chosen]
        available &= ~(((origin_rows[None] - row[:, None]).abs() < patch_size)
                       & ((origin_cols[None] - col[:, None]).abs() < patch_size))
        inside = ((pixel_rows >= row[:, None, None]) & (pixel_rows < row[:, None, None] + patch_size)
                  & (pixel_cols >= col[:, None, None]) & (pixel_cols < col[:, None, None] + patch_size))
        result.masked_fill_(inside & found[:, None, None], step)
    return result


def perturbation_curves(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
                        attribution: torch.Tensor, *, patch_size: int, steps: int = PAPER_STEPS,
                        blur_kernel: int = PAPER_BLUR_KERNEL, stride: int | None = None,
                        batch_size: int = 64, order: str = "morf", score="softmax") -> torch.Tensor:
    """Softmax probability (``score="sigmoid"``: sigmoid of the logit; see ``score_function``) of class
    ``targets`` for each image after 0..``steps`` patch replacements.

    ``images`` (N, C, H, W) and ``attribution`` (N, H, W) on the model's device; returns (N, steps + 1)
    float64 on the CPU. All (image, step) pairs go through the network in batches of ``batch_size``.
    """
    batch_size = positive_int(batch_size, "batch_size")
    score_of = score_function(score)
    if attribution.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"attribution must have shape {(images.shape[0], *images.shape[-2:])}, "
                         f"got {tuple(attribution.shape)}")
    blurred = blur(images, blur_kernel)
    replaced_at = replacement_steps(attribution, patch_size, steps, stride=stride, order=order)
    n = images.shape[0]
    image_index = torch.arange(n, device=images.device).repeat_interleave(steps + 1)
    step_index = torch.arange(steps + 1, device=images.device).repeat(n)
    scores = torch.empty(n * (steps + 1), dtype=torch.float64)
    with torch.inference_mode():
        for start in range(0, n * (steps + 1), batch_size):
            which = image_index[start:start + batch_size]
            mask = (replaced_at[which] <= step_index[start:start + batch_size, None, None].int())[:, None]
            perturbed = torch.where(mask, blurred[which], images[which])
            chosen = score_of(model(perturbed).float(), targets[which])
            scores[start:start + len(which)] = chosen.double().cpu()
    return scores.view(n, steps + 1)


def curve_area(scores) -> np.ndarray:
    """Area of perturbation curves along the last axis (steps 0..S): the trapezoid rule with unit spacing,
    divided by S, i.e. (sum of the scores - (first + last) / 2) / S."""
    scores = np.asarray(scores, dtype=float)
    return np.trapezoid(scores, dx=1.0, axis=-1) / max(scores.shape[-1] - 1, 1)


def faithfulness_area(table: pd.DataFrame) -> pd.DataFrame:
    """Area under each perturbation curve: trapezoid rule over steps 0..S with unit spacing, divided by S
    (S = 30 in the paper), i.e. (sum of the scores - (first + last) / 2) / S; lower is better.

    ``table``: rows of ``faithfulness.csv``; returns the rows of ``faithfulness_area.csv``.
    """
    missing = [c for c in FAITHFULNESS_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the faithfulness columns {missing}")
    keys = list(FAITHFULNESS_AREA_COLUMNS[:-1])
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAITHFULNESS_AREA_COLUMNS})
    ordered = table.sort_values([*keys, "step"], kind="mergesort")
    grouped = ordered.groupby(keys, sort=True)
    area = grouped["score"].apply(lambda s: float(curve_area(s.to_numpy())))
    return area.rename("area").reset_index()[list(FAITHFULNESS_AREA_COLUMNS)]


def order_gap(morf_area: pd.DataFrame, lerf_area: pd.DataFrame) -> pd.DataFrame:
    """LeRF area - MoRF area of each (model, method, patch_size, image) in both tables (rows of
    ``faithfulness_area``); column ``gap``. Positive: the map orders patches better than its reverse."""
    keys = list(FAITHFULNESS_AREA_COLUMNS[:-1])
    joined = morf_area.merge(lerf_area, on=keys, suffixes=("_morf", "_lerf"), validate="one_to_one")
    return joined.assign(gap=joined["area_lerf"] - joined["area_morf"])[[*keys, "gap"]]


def relative_to_control(area: pd.DataFrame, control: str = "random-uniform", column: str = "area"
                        ) -> pd.DataFrame:
    """``column`` of each method divided by the ``control`` method's on the same (model, patch_size, image);
    column ``relative`` (1: no better than random patches; for MoRF below 1 is better)."""
    keys = ["model", "patch_size", "image"]
    reference = area[area["method"] == control]
    if reference.empty:
        raise ValueError(f"control {control!r} has no rows in the table")
    joined = area.merge(reference[[*keys, column]].rename(columns={column: "control"}), on=keys)
    return joined.assign(relative=joined[column] / joined["control"]).drop(columns="control")


def run_faithfulness(model, images: torch.Tensor, labels: torch.Tensor | None, *, model_name: str,
                     store: ChunkStore, methods, batch_size: int = 32, seed: int = 0, device="cpu",
                     progress: bool = True, patch_sizes=PAPER_PATCH_SIZES,
                     blur_kernel: int = PAPER_BLUR_KERNEL, steps: int = PAPER_STEPS,
                     stride: int | None = None, forward_batch_size: int | None = None,
                     attribution_options=None, order: str = "morf", shard=None,
                     score="softmax") -> pd.DataFrame:
    """Perturbation curves (seed A.1) for every method, patch size and image; returns the ``faithfulness.csv``
    rows of ``model_name`` (columns ``FAITHFULNESS_COLUMNS``).

    One chunk per (method, batch of ``batch_size`` images) covering all patch sizes; finished chunks in
    ``store`` computed from the same inputs (images, labels, weights, method and settings: their
    fingerprint) are skipped, any other chunk of the same name is computed again, and only this call's
    chunks make the table. ``methods`` and ``attribution_options``: as for ``run_randomization`` (names of
    ``empirical.attribution``, callables ``(model, x, target) -> (N, H, W)`` or a mapping name -> either; the
    random control is seeded as there, by (seed, first image, 0)). ``forward_batch_size`` (default 4
    ``batch_size``) sets how many perturbed images go through the network at once. ``order="lerf"``: least
    relevant first; keep its chunks in a store of their own (e.g. experiment ``faithfulness_lerf``), as the
    table has no order column. ``images`` may also be an ``empirical.storage.streaming.ImageStream``
    (``labels`` None), decoded batch by batch; ``shard`` (``empirical.storage.distributed.Shard``) computes
    only this rank's chunks, then waits for the others.
    ``score``: ``"softmax"`` (default), ``"sigmoid"`` for a multi-label network (seed A.3) or a callable, as
    ``score_function``. ``labels=None`` explains each image's highest predicted class (the seed's choice for
    COCO and VOC).
    """
    order = _check_order(order)
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
    stream, shard = as_stream(images, labels), shard or Shard()
    resolved = resolve_methods(methods, attribution_options)
    score_function(score)  # a bad score fails before any work
    starts = range(0, stream.count, batch_size)
    count = stream.count
    key = lambda name, start: chunk_key(model_name, name, start=start,  # noqa: E731
                                        stop=min(start + batch_size, stream.count))
    # a chunk is reused only when computed from the same images, labels, weights and settings
    settings = {"experiment": "faithfulness", "model_name": model_name, "batch_size": batch_size,
                "seed": int(seed), "device": torch.device(device).type, "patch_sizes": list(patch_sizes),
                "blur_kernel": blur_kernel, "steps": steps, "stride": stride,
                "forward_batch_size": forward_batch_size, "order": order, "score": score}
    inputs = input_fingerprints(stream, [(start, min(start + batch_size, count)) for start in starts],
                                model=model, settings=settings)
    expected = {key(name, start): method_fingerprint(inputs[start], name, method)
                for name, method in resolved.items() for start in starts}
    pending = shard.assign([(name, start) for name in resolved for start in starts
                            if not store.has(key(name, start), expected[key(name, start)])])
    by_batch = {}
    for name, start in pending:
        by_batch.setdefault(start, []).append(name)
    with progress_bar(len(pending), description=f"faithfulness {model_name}", unit="chunk",
                      enabled=progress) as bar:
        # one decoded batch serves every method of that batch; the chunks do not depend on this order
        for batch, name in ((b, m) for b in stream.batches(batch_size, list(by_batch), device=device)
                            for m in by_batch[b.start]):
            x, start, stop = batch.images, batch.start, batch.stop
            targets = explained_classes(model, x, batch.labels)
            maps = explain(resolved[name], model, x, targets, (seed, start, 0))
            if maps.shape != (x.shape[0], *x.shape[-2:]):
                raise ValueError(f"method {name!r} returned maps of shape {tuple(maps.shape)}, "
                                 f"expected {(x.shape[0], *x.shape[-2:])}")
            pieces = []
            for patch_size in patch_sizes:
                curves = perturbation_curves(model, x, targets, maps.to(x.device), patch_size=patch_size,
                                             steps=steps, blur_kernel=blur_kernel, stride=stride,
                                             batch_size=forward_batch_size, order=order,
                                             score=score).numpy()
                count = curves.shape[0]
                pieces.append(pd.DataFrame({
                    "model": model_name, "method": name, "patch_size": patch_size,
                    "image": np.repeat(np.arange(start, stop), steps + 1),
                    "label": np.repeat(targets.cpu().numpy(), steps + 1),
                    "step": np.tile(np.arange(steps + 1), count), "score": curves.ravel()}))
            store.write(key(name, start), pd.concat(pieces, ignore_index=True), expected[key(name, start)])
            shard.chunk_written()
            bar.update(1)
    shard.barrier()
    table = store.collect(FAITHFULNESS_COLUMNS, fingerprints=expected)
    return table[table["model"] == model_name].reset_index(drop=True)
