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

The kernel :func:`faithfulness_batch` returns one batch's rows and reads or writes no file;
``empirical.run.faithfulness`` runs it chunk by chunk, resumably.

Batched: the perturbed images of all steps of a chunk of images are built on the device from a per-pixel
"replaced at step" map and go through the network in batches; no Python loop per image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.nn import functional

from empirical._checks import positive_int
from empirical.experiments._common import explain, explained_classes
from empirical.multilabel.targets import SCORE_FUNCTIONS
from empirical.storage.tables import FAITHFULNESS_AREA_COLUMNS, FAITHFULNESS_COLUMNS

__all__ = [
    "PAPER_BLUR_KERNEL",
    "PAPER_PATCH_SIZES",
    "PAPER_STEPS",
    "blur",
    "ORDERS",
    "curve_area",
    "faithfulness_area",
    "faithfulness_batch",
    "order_gap",
    "perturbation_curves",
    "relative_to_control",
    "replacement_steps",
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


def faithfulness_batch(model, images: torch.Tensor, labels: torch.Tensor | None, method, *, method_name: str,
                       model_name: str, seed: int, first_image: int, patch_sizes=PAPER_PATCH_SIZES,
                       blur_kernel: int = PAPER_BLUR_KERNEL, steps: int = PAPER_STEPS,
                       stride: int | None = None, forward_batch_size: int = 128, order: str = "morf",
                       score="softmax") -> pd.DataFrame:
    """The kernel of the faithfulness experiment (seed A.1): the ``FAITHFULNESS_COLUMNS`` rows of one batch
    of ``images`` (on the model's device) and one resolved ``method``
    (``empirical.experiments._common.resolve_methods``), every patch size of ``patch_sizes``.

    Explains ``labels``, or the model's top class where None; the random control is seeded by (``seed``,
    ``first_image``: the index of the batch's first image in the run, 0). ``forward_batch_size`` perturbed
    images go through the network at once; the other settings as :func:`perturbation_curves`."""
    targets = explained_classes(model, images, labels)
    maps = explain(method, model, images, targets, (seed, first_image, 0))
    if maps.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"method {method_name!r} returned maps of shape {tuple(maps.shape)}, "
                         f"expected {(images.shape[0], *images.shape[-2:])}")
    pieces = []
    for patch_size in patch_sizes:
        curves = perturbation_curves(model, images, targets, maps.to(images.device), patch_size=patch_size,
                                     steps=steps, blur_kernel=blur_kernel, stride=stride,
                                     batch_size=forward_batch_size, order=order, score=score).numpy()
        count = curves.shape[0]
        pieces.append(pd.DataFrame({
            "model": model_name, "method": method_name, "patch_size": patch_size,
            "image": np.repeat(np.arange(first_image, first_image + count), steps + 1),
            "label": np.repeat(targets.cpu().numpy(), steps + 1),
            "step": np.tile(np.arange(steps + 1), count), "score": curves.ravel()}))
    return pd.concat(pieces, ignore_index=True)
