"""Centre-crop labels (seed A.3): the crop of torchvision's Resize + CenterCrop, and the 40% rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical.multilabel.crop_labels import box_fractions_in_crop, crop_labels, crop_window, resized_size


def torchvision_crop(image_size, *, crop_size, resize):
    """(left, top, resized width, resized height) from torchvision's own transforms on a tensor image."""
    from torchvision import transforms

    width, height = image_size
    resized = transforms.Resize(resize, antialias=True)(torch.zeros(1, height, width))
    new_height, new_width = resized.shape[-2:]
    index = torch.arange(new_height * new_width, dtype=torch.float64).view(1, new_height, new_width)
    first = int(transforms.CenterCrop(crop_size)(index)[0, 0, 0])
    return first % new_width, first // new_width, new_width, new_height


def reference_fraction(box, image_size, *, crop_size, resize, supersampling=16):
    """Fraction of the box's sample points that land in the crop: the resized image sampled at
    ``supersampling`` points a pixel, each point mapped back to the original image and tested against the
    box."""
    left, top, new_width, new_height = torchvision_crop(image_size, crop_size=crop_size, resize=resize)
    width, height = image_size
    counts = []
    for start, size, new_size, low, high in ((left, width, new_width, box[0], box[2]),
                                              (top, height, new_height, box[1], box[3])):
        samples = (np.arange(new_size * supersampling) + 0.5) / supersampling  # resized-image positions
        in_box = (samples * size / new_size >= low) & (samples * size / new_size < high)
        in_crop = (samples >= start) & (samples < start + crop_size)
        counts.append(((in_box & in_crop).sum(), in_box.sum()))
    (x_in, x_all), (y_in, y_all) = counts
    return (x_in * y_in) / (x_all * y_all)


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (225, 224), (224, 227), (500, 333), (224, 224),
                                  (1000, 10), (33, 40)])
@pytest.mark.parametrize(("crop_size", "resize"), [(224, 224), (224, 256), (32, 32)])
def test_geometry_is_torchvisions_resize_and_center_crop(size, crop_size, resize):
    left, top, new_width, new_height = torchvision_crop(size, crop_size=crop_size, resize=resize)
    assert resized_size(size, resize) == (new_width, new_height)
    x0, y0, x1, y1 = crop_window(size, crop_size=crop_size, resize=resize)
    assert x0 == pytest.approx(left * size[0] / new_width) and y0 == pytest.approx(top * size[1] / new_height)
    assert x1 - x0 == pytest.approx(crop_size * size[0] / new_width)
    assert y1 - y0 == pytest.approx(crop_size * size[1] / new_height)


def test_crop_window_by_hand_landscape_and_portrait():
    # 640x480: short side 480 -> 224, long int(224 * 640 / 480) = int(298.67) = 298; left round(37.0) = 37
    assert resized_size((640, 480)) == (298, 224)
    assert crop_window((640, 480)) == pytest.approx((37 * 640 / 298, 0.0, 261 * 640 / 298, 480.0))
    assert crop_window((480, 640)) == pytest.approx((0.0, 37 * 640 / 298, 480.0, 261 * 640 / 298))
    # halves round to even, as Python's round in torchvision: (225 - 224) / 2 = 0.5 -> 0, 1.5 -> 2
    assert crop_window((225, 224))[0] == 0.0
    assert crop_window((227, 224))[0] == pytest.approx(2.0)
    assert crop_window((448, 224)) == (112.0, 0.0, 336.0, 224.0)


# 448x224 landscape: the crop is x in [112, 336); 224x448 portrait: y in [112, 336) (resize leaves both alone)
EDGE_CASES = [
    ("inside", (448, 224), (150, 50, 250, 150), 1.0, 1.0),
    ("outside left", (448, 224), (0, 0, 100, 100), 0.0, 0.0),
    ("touching the crop", (448, 224), (12, 0, 112, 100), 0.0, 0.0),
    ("left edge at 39%", (448, 224), (51, 10, 151, 60), 0.39, 0.0),
    ("left edge at 41%", (448, 224), (53, 10, 153, 60), 0.41, 1.0),
    ("right edge at 39%", (448, 224), (297, 10, 397, 60), 0.39, 0.0),
    ("right edge at 41%", (448, 224), (295, 10, 395, 60), 0.41, 1.0),
    ("exactly 40%", (448, 224), (52, 10, 152, 60), 0.40, 1.0),
    ("portrait top at 39%", (224, 448), (10, 51, 60, 151), 0.39, 0.0),
    ("portrait bottom at 41%", (224, 448), (10, 295, 60, 395), 0.41, 1.0),
    ("portrait, 60% inside", (224, 448), (0, 72, 100, 172), 0.6, 1.0),
    ("box larger than the crop", (448, 224), (0, 0, 448, 224), 0.5, 1.0),
]


@pytest.mark.parametrize(("size", "box", "fraction", "label"), [case[1:] for case in EDGE_CASES],
                         ids=[case[0] for case in EDGE_CASES])
def test_forty_percent_rule_at_its_edges(size, box, fraction, label):
    assert box_fractions_in_crop([(0, box)], size)[0] == pytest.approx(fraction)
    assert crop_labels([(0, box)], size, num_classes=2).tolist() == [label, 0.0]


def test_one_box_of_a_class_suffices_and_threshold_and_crop_are_parameters():
    boxes = [(1, (0, 0, 100, 100)), (1, (150, 50, 250, 150)), (0, (51, 10, 151, 60))]  # class 0 at 39%
    assert crop_labels(boxes, (448, 224), num_classes=3).tolist() == [0.0, 1.0, 0.0]
    assert crop_labels(boxes, (448, 224), num_classes=3, min_fraction=0.35).tolist() == [1.0, 1.0, 0.0]
    # at crop 112 of a 224-resized 448x224 image the crop is x in [168, 280): class 1's box holds 82%
    assert crop_labels(boxes, (448, 224), num_classes=3, crop_size=112).tolist() == [0.0, 1.0, 0.0]
    # ... and a box at its corner, 60% x 60% = 36% inside: negative
    assert crop_labels([(2, (128, 16, 228, 116))], (448, 224), num_classes=3, crop_size=112).tolist() == \
        [0.0, 0.0, 0.0]
    assert crop_labels([], (448, 224), num_classes=3).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: crop_labels([(0, (0, 0, 5, 5))], (10, 10), num_classes=0), "num_classes must be a positive"),
    (lambda: crop_labels([(3, (0, 0, 5, 5))], (10, 10), num_classes=3), "class indices must lie in 0..2"),
    (lambda: crop_labels([(0, (5, 0, 5, 5))], (10, 10), num_classes=1), "boxes[0] = (5.0, 0.0, 5.0, 5.0)"),
    (lambda: crop_labels([(0, (0, 0, 5))], (10, 10), num_classes=1), "4 finite coordinates"),
    (lambda: crop_labels([(0, (0, 0, 5, 5))], (10, 10), num_classes=1, min_fraction=0), "min_fraction must"),
    (lambda: crop_window((10, 0)), "image_size height must be a positive integer, got 0"),
    (lambda: crop_window(100), "image_size must be (width, height), got 100"),
    (lambda: crop_window((300, 300), crop_size=256, resize=224), "crop_size 256 exceeds the resized image"),
    (lambda: resized_size((10, 10), resize=-1), "resize must be a positive integer, got -1"),
])
def test_bad_arguments_name_themselves(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert message in str(caught.value)


@st.composite
def image_and_box(draw):
    width, height = draw(st.integers(8, 700)), draw(st.integers(8, 700))
    crop_size, resize = draw(st.sampled_from([(224, 224), (224, 256), (32, 32), (32, 40)]))
    x0 = draw(st.floats(0, width - 4))
    y0 = draw(st.floats(0, height - 4))
    x1 = draw(st.floats(x0 + 4, width))
    y1 = draw(st.floats(y0 + 4, height))
    return (width, height), (x0, y0, x1, y1), crop_size, resize


@settings(max_examples=60, deadline=None)
@given(image_and_box())
def test_labels_agree_with_a_pixel_counting_reference(case):
    size, box, crop_size, resize = case
    supersampling = 16
    exact = box_fractions_in_crop([(0, box)], size, crop_size=crop_size, resize=resize)[0]
    counted = reference_fraction(box, size, crop_size=crop_size, resize=resize, supersampling=supersampling)
    new_width, new_height = resized_size(size, resize)
    # each axis' count is off by at most one sample at each end of the box and of the crop
    sides = ((box[2] - box[0]) * new_width / size[0], (box[3] - box[1]) * new_height / size[1])
    tolerance = sum(4.0 / (supersampling * side) for side in sides)
    assert abs(exact - counted) <= tolerance
    if abs(counted - 0.4) > tolerance:
        assert crop_labels([(0, box)], size, num_classes=1, crop_size=crop_size, resize=resize)[0] == \
            float(counted >= 0.4)


@st.composite
def image_and_integer_box(draw):
    width, height = draw(st.integers(16, 400)), draw(st.integers(16, 400))
    crop_size, resize = draw(st.sampled_from([(224, 224), (32, 32), (32, 40)]))
    x0, y0 = draw(st.integers(0, width - 8)), draw(st.integers(0, height - 8))
    return (width, height), (x0, y0, draw(st.integers(x0 + 8, width)), draw(st.integers(y0 + 8, height))), \
        crop_size, resize


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(image_and_integer_box())
def test_fractions_agree_with_a_box_mask_sent_through_torchvisions_transforms(case):
    """The box drawn as a mask on the original image, resized (nearest) and centre-cropped by torchvision:
    the mask pixels left in the crop over those of the whole resized mask."""
    from torchvision import transforms

    size, (x0, y0, x1, y1), crop_size, resize = case
    mask = torch.zeros(1, size[1], size[0])
    mask[0, y0:y1, x0:x1] = 1.0
    resized = transforms.Resize(resize, interpolation=transforms.InterpolationMode.NEAREST)(mask)
    cropped = transforms.CenterCrop(crop_size)(resized)
    new_width, new_height = resized_size(size, resize)
    sides = ((x1 - x0) * new_width / size[0], (y1 - y0) * new_height / size[1])
    if min(sides) < 4:  # too few resized pixels for a count to mean anything
        return
    counted = float(cropped.sum() / resized.sum())
    exact = box_fractions_in_crop([(0, (x0, y0, x1, y1))], size, crop_size=crop_size, resize=resize)[0]
    # nearest sampling moves each edge by at most a pixel of the resized image
    assert abs(exact - counted) <= sum(3.0 / side for side in sides)
