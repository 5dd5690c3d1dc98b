"""Centre-crop labels (seed section A.3): "we assigned a centercrop a positive label if it contained at least
40% of the area of a bounding box of a class".

The crop is the one the seed's augmentation takes, torchvision's ``Resize(resize)`` then
``CenterCrop(crop_size)``, expressed in original-image coordinates:

- ``Resize(resize)`` (torchvision ``_compute_resized_output_size``): the shorter side becomes ``resize``, the
  longer ``int(resize * long / short)`` (truncated); a square image stays square;
- ``CenterCrop(crop_size)``: offsets ``int(round((resized - crop_size) / 2.0))`` per axis (Python's ``round``,
  halves to even);
- the resize maps the pixel grid ``[0, W] x [0, H]`` linearly onto ``[0, W'] x [0, H']`` (PIL's resize and
  torch's interpolation with ``align_corners=False`` both do), so the crop
  ``[left, left + c) x [top, top + c)`` of the resized image is
  ``[left W/W', (left + c) W/W') x [top H/H', (top + c) H/H')`` of the original.

A box's fraction in the crop is area(box & crop) / area(box), the same in either frame since the resize only
scales each axis. ``crop_size`` larger than ``resize`` (torchvision would pad) is refused.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PAPER_CROP_SIZE",
    "PAPER_MIN_FRACTION",
    "PAPER_RESIZE",
    "box_fractions_in_crop",
    "crop_labels",
    "crop_window",
    "resized_size",
]

PAPER_RESIZE = 224
PAPER_CROP_SIZE = 224
PAPER_MIN_FRACTION = 0.4
_ROUNDING = 1e-9


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _image_size(image_size) -> tuple[int, int]:
    try:
        width, height = image_size
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {image_size!r}") from None
    return _positive_int(width, "image_size width"), _positive_int(height, "image_size height")


def resized_size(image_size, resize: int = PAPER_RESIZE) -> tuple[int, int]:
    """(width, height) after torchvision's ``Resize(resize)`` of an image of size ``image_size``."""
    width, height = _image_size(image_size)
    resize = _positive_int(resize, "resize")
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize, int(resize * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def crop_window(image_size, *, crop_size: int = PAPER_CROP_SIZE,
                resize: int = PAPER_RESIZE) -> tuple[float, float, float, float]:
    """The ``Resize(resize)`` + ``CenterCrop(crop_size)`` crop as ``(x0, y0, x1, y1)`` in the coordinates of
    the original image of ``image_size`` = (width, height); see the module docstring for the rounding."""
    width, height = _image_size(image_size)
    crop_size = _positive_int(crop_size, "crop_size")
    new_width, new_height = resized_size((width, height), resize)
    if crop_size > min(new_width, new_height):
        raise ValueError(f"crop_size {crop_size} exceeds the resized image {new_width}x{new_height} "
                         f"(resize {resize}): torchvision would pad, which this crop geometry does not model")
    top = int(round((new_height - crop_size) / 2.0))
    left = int(round((new_width - crop_size) / 2.0))
    scale_x, scale_y = width / new_width, height / new_height
    return (left * scale_x, top * scale_y, (left + crop_size) * scale_x, (top + crop_size) * scale_y)


def _as_boxes(boxes) -> tuple[np.ndarray, np.ndarray]:
    """(class indices (K,), boxes (K, 4)) from a sequence of ``(class index, (x0, y0, x1, y1))``."""
    pairs = list(boxes)
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
    try:
        classes = np.array([pair[0] for pair in pairs])
        coordinates = np.array([pair[1] for pair in pairs], dtype=np.float64)
    except (TypeError, ValueError, IndexError):
        raise ValueError("boxes must be a sequence of (class index, (x0, y0, x1, y1)) pairs, got "
                         f"{pairs[:2]!r}...") from None
    if coordinates.shape != (len(pairs), 4) or not np.isfinite(coordinates).all():
        raise ValueError(f"boxes must hold 4 finite coordinates each, got shape {coordinates.shape}")
    if classes.dtype.kind not in "iu":
        raise ValueError(f"class indices must be integers, got {classes[:4]!r}")
    if (coordinates[:, 2] <= coordinates[:, 0]).any() or (coordinates[:, 3] <= coordinates[:, 1]).any():
        bad = int(np.flatnonzero((coordinates[:, 2] <= coordinates[:, 0])
                                 | (coordinates[:, 3] <= coordinates[:, 1]))[0])
        raise ValueError(f"boxes[{bad}] = {tuple(coordinates[bad].tolist())} has no area (need x0 < x1 and "
                         "y0 < y1)")
    return classes.astype(np.int64), coordinates


def box_fractions_in_crop(boxes, image_size, *, crop_size: int = PAPER_CROP_SIZE,
                          resize: int = PAPER_RESIZE) -> np.ndarray:
    """For each ``(class index, (x0, y0, x1, y1))`` of ``boxes``: area(box & crop) / area(box); float64 (K,)
    in original-image coordinates of ``image_size`` = (width, height)."""
    _, coordinates = _as_boxes(boxes)
    cx0, cy0, cx1, cy1 = crop_window(image_size, crop_size=crop_size, resize=resize)
    overlap_x = np.clip(np.minimum(coordinates[:, 2], cx1) - np.maximum(coordinates[:, 0], cx0), 0.0, None)
    overlap_y = np.clip(np.minimum(coordinates[:, 3], cy1) - np.maximum(coordinates[:, 1], cy0), 0.0, None)
    areas = (coordinates[:, 2] - coordinates[:, 0]) * (coordinates[:, 3] - coordinates[:, 1])
    return overlap_x * overlap_y / areas


def crop_labels(boxes, image_size, *, num_classes: int, crop_size: int = PAPER_CROP_SIZE,
                resize: int = PAPER_RESIZE, min_fraction: float = PAPER_MIN_FRACTION) -> np.ndarray:
    """The seed's multi-hot label of the centre crop (A.3): class k is positive when the crop holds at least
    ``min_fraction`` of the area of one of its boxes.

    ``boxes``: ``(class index, (x0, y0, x1, y1))`` pairs in original-image coordinates
    (``AnnotatedImage.boxes``);
    ``image_size``: (width, height). Returns float32 (num_classes,) of 0.0 and 1.0.
    """
    num_classes = _positive_int(num_classes, "num_classes")
    if isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float)) \
            or not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be a number in (0, 1], got {min_fraction!r}")
    classes, _ = _as_boxes(boxes)
    if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}, "
                         f"got {sorted(set(classes.tolist()))}")
    labels = np.zeros(num_classes, dtype=np.float32)
    if classes.size:
        fractions = box_fractions_in_crop(boxes, image_size, crop_size=crop_size, resize=resize)
        # "at least": a fraction equal to the threshold up to floating-point rounding counts
        labels[classes[fractions >= min_fraction - _ROUNDING]] = 1.0
    return labels
