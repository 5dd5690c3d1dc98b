"""The embedded multi-label demo data (seed section A.3 at toy scale): canvases holding 2-3 of scikit-learn's
handwritten digits, written as PNG images plus COCO-format ``instances_{split}.json`` files, so that the same
reader (``annotations.read_coco_split``) and the same centre-crop labels serve the demo and real COCO.

Layout under ``root`` (COCO's own): ``annotations/instances_{train,val,test}.json`` and
``{train,val,test}/*.png``. Categories ``1..10`` are named ``"0".."9"`` (class index = digit). The three
splits draw from disjoint pools of digits (``canvas_digit_pools``): training canvases from the training split
of ``empirical.storage.data.digits_split`` (the one the shipped demo weights saw); validation and test
canvases each from one half of its held-out digits (a fixed stratified halving), so the test canvases share
no digit with the canvases that trained the network or picked its epoch.

Each digit (8x8, intensities 0..16) is upsampled bilinearly to a random side in ``digit_sizes``, scaled to
[0, 1] (the demo network's preprocessing, ``empirical.models.demo_net.digits_to_demo_input``) and placed at a
random position of a canvas of random width and height in ``canvas_sizes``, bright ink on black; overlapping
ink is combined by the maximum. A placement is redrawn while the digit's square overlaps an earlier square by
more than ``max_overlap`` of a square's area; after 200 failed draws the canvas keeps the digits it has (at
least one). The box of a digit is the tight box of its ink (values > ``INK_THRESHOLD``). Portrait and
landscape canvases both occur, so the centre crop cuts some digits at the sides or the top and bottom.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from empirical.storage.data import digits_split

__all__ = [
    "DEMO_CANVAS_SIZES",
    "DEMO_DIGIT_SIZES",
    "INK_THRESHOLD",
    "SPLITS",
    "canvas_digit_pools",
    "write_digit_canvases",
]

DEMO_CANVAS_SIZES = (36, 52)
DEMO_DIGIT_SIZES = (14, 20)
INK_THRESHOLD = 0.05
_PLACEMENT_TRIES = 200
#: the canvas splits, in the order their canvases are drawn from ``rng``
SPLITS = ("train", "val", "test")
#: the fixed seed of the halving of the held-out digits into the validation and the test pool
_HELD_OUT_HALVING_SEED = 0


def canvas_digit_pools() -> dict[str, np.ndarray]:
    """Indices into scikit-learn's digits that each canvas split draws from (module docstring): ``train`` the
    training split of ``digits_split``, ``val`` and ``test`` the two halves of its held-out split, stratified
    by digit with a fixed seed. Returns {split: sorted indices}; the three are disjoint."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    train, held_out = digits_split()
    target = load_digits().target
    val, test = train_test_split(held_out, test_size=0.5, random_state=_HELD_OUT_HALVING_SEED,
                                 stratify=target[held_out])
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _check_range(value, name: str) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of integers, got {value!r}") from None
    if low < 1 or high < low:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value!r}")
    return low, high


def _check_count(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _upsampled(digit: np.ndarray, side: int) -> np.ndarray:
    tensor = torch.from_numpy(digit.astype(np.float32) / 16.0)[None, None]
    tensor = functional.interpolate(tensor, size=(side, side), mode="bilinear", align_corners=False)
    return tensor[0, 0].clamp(0.0, 1.0).numpy()


def _overlap(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


def _canvas(digit_images, digit_labels, *, canvas_sizes, digit_sizes, digits_per_canvas, max_overlap, rng):
    """One canvas (H, W) float in [0, 1] and its boxes [(digit, [x, y, w, h])]."""
    width, height = (int(rng.integers(canvas_sizes[0], canvas_sizes[1] + 1)) for _ in range(2))
    canvas = np.zeros((height, width), dtype=np.float32)
    wanted = int(rng.integers(digits_per_canvas[0], digits_per_canvas[1] + 1))
    squares, boxes = [], []
    for _ in range(wanted):
        pick = int(rng.integers(len(digit_labels)))
        side = int(rng.integers(digit_sizes[0], min(digit_sizes[1], width, height) + 1))
        for _ in range(_PLACEMENT_TRIES):
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            square = (x, y, x + side, y + side)
            if all(_overlap(square, other) <= max_overlap * side * side for other in squares):
                break
        else:
            continue
        ink = _upsampled(digit_images[pick], side)
        canvas[y:y + side, x:x + side] = np.maximum(canvas[y:y + side, x:x + side], ink)
        rows, cols = np.nonzero(ink > INK_THRESHOLD)
        squares.append(square)
        x0, y0 = int(cols.min()), int(rows.min())
        box_width, box_height = int(cols.max()) + 1 - x0, int(rows.max()) + 1 - y0
        boxes.append((int(digit_labels[pick]), [x + x0, y + y0, box_width, box_height]))
    return canvas, boxes


def write_digit_canvases(root, *, train_canvases: int = 400, val_canvases: int = 150,
                         test_canvases: int = 150, canvas_sizes=DEMO_CANVAS_SIZES,
                         digit_sizes=DEMO_DIGIT_SIZES, digits_per_canvas=(2, 3),
                         max_overlap: float = 0.1, rng) -> dict[str, tuple[Path, Path]]:
    """Write the demo canvases under ``root`` (layout in the module docstring); ``rng``: an int seed or a
    ``numpy.random.Generator``, the only source of randomness.

    Returns {split: (annotation file, image folder)} for ``train``, ``val`` and ``test``.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    counts = {"train": _check_count(train_canvases, "train_canvases"),
              "val": _check_count(val_canvases, "val_canvases"),
              "test": _check_count(test_canvases, "test_canvases")}
    canvas_sizes = _check_range(canvas_sizes, "canvas_sizes")
    digit_sizes = _check_range(digit_sizes, "digit_sizes")
    digits_per_canvas = _check_range(digits_per_canvas, "digits_per_canvas")
    if digit_sizes[0] > canvas_sizes[0]:
        raise ValueError(f"digit_sizes {digit_sizes} must not start above the smallest canvas side "
                         f"{canvas_sizes[0]}")
    if isinstance(max_overlap, bool) or not isinstance(max_overlap, (int, float)) \
            or not 0 <= max_overlap <= 1:
        raise ValueError(f"max_overlap must be a number in [0, 1], got {max_overlap!r}")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(int(rng))
    elif not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be an integer seed or a numpy.random.Generator, got {rng!r}")
    digits = load_digits()
    indices = canvas_digit_pools()
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": digit + 1, "name": str(digit), "supercategory": "digit"} for digit in range(10)]
    written = {}
    for split, count in counts.items():
        image_dir = root / split
        image_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for number in range(count):
            canvas, boxes = _canvas(digits.images[indices[split]], digits.target[indices[split]],
                                    canvas_sizes=canvas_sizes, digit_sizes=digit_sizes,
                                    digits_per_canvas=digits_per_canvas, max_overlap=max_overlap, rng=rng)
            file_name = f"canvas_{number:05d}.png"
            Image.fromarray(np.round(canvas * 255).astype(np.uint8), mode="L").save(image_dir / file_name)
            images.append({"id": number + 1, "file_name": file_name, "width": canvas.shape[1],
                           "height": canvas.shape[0]})
            for digit, bbox in boxes:
                annotations.append({"id": len(annotations) + 1, "image_id": number + 1,
                                    "category_id": digit + 1, "bbox": bbox, "area": bbox[2] * bbox[3],
                                    "iscrowd": 0})
        annotation_file = root / "annotations" / f"instances_{split}.json"
        document = {"info": {"description": "sanity-audit multi-digit demo canvases (seed A.3 at toy scale)"},
                    "images": images, "annotations": annotations, "categories": categories}
        annotation_file.write_text(json.dumps(document) + "\n")
        written[split] = (annotation_file, image_dir)
    return written

