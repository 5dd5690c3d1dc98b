"""Faithfulness curves against a slow reference written straight from the seed's definition (A.1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from empirical.experiments.faithfulness import (
    blur,
    faithfulness_area,
    perturbation_curves,
    replacement_steps,
)


def reference_curve(model, image, target, attribution, patch_size, steps, blur_kernel, stride=None):
    """One image, one patch at a time: blur by scipy (mirror border), rank patches by mean attribution with
    plain loops (ties: first in row-major order; overlapping windows skipped), replace, forward one image."""
    stride = patch_size if stride is None else stride
    image_np = image.numpy().astype(np.float64)
    blurred = np.stack([ndimage.uniform_filter(channel, size=blur_kernel, mode="mirror")
                        for channel in image_np])
    attribution = attribution.numpy().astype(np.float64)
    height, width = attribution.shape
    windows = []
    for row in range(0, height - patch_size + 1, stride):
        for col in range(0, width - patch_size + 1, stride):
            mean = attribution[row:row + patch_size, col:col + patch_size].mean()
            windows.append((-mean, len(windows), row, col))
    taken = []
    for _, _, row, col in sorted(windows):
        if all(abs(row - r) >= patch_size or abs(col - c) >= patch_size for r, c in taken):
            taken.append((row, col))
    current = image_np.copy()
    scores = []
    for step in range(steps + 1):
        if 0 < step <= len(taken):
            row, col = taken[step - 1]
            current[:, row:row + patch_size, col:col + patch_size] = \
                blurred[:, row:row + patch_size, col:col + patch_size]
        with torch.no_grad():
            logits = model(torch.from_numpy(current).float()[None])
        scores.append(float(torch.softmax(logits, dim=1)[0, target]))
    return np.array(scores)


def test_blur_against_scipy_uniform_filter_mirror():
    images = torch.rand(2, 3, 20, 17, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for kernel in (1, 3, 15):
        expected = ndimage.uniform_filter(images.numpy(), size=(1, 1, kernel, kernel), mode="mirror")
        np.testing.assert_allclose(blur(images, kernel).numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("patch_size", "steps", "stride"), [(2, 30, None), (3, 25, None), (4, 6, 2)])
def test_curve_against_slow_reference(tiny_model, tiny_images, gradient_method, patch_size, steps, stride):
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    maps = gradient_method(tiny_model, tiny_images, targets)
    curves = perturbation_curves(tiny_model, tiny_images, targets, maps, patch_size=patch_size, steps=steps,
                                 blur_kernel=3, stride=stride, batch_size=7)
    assert curves.shape == (6, steps + 1)
    for n in range(6):
        expected = reference_curve(tiny_model, tiny_images[n], int(targets[n]), maps[n], patch_size, steps, 3,
                                   stride)
        np.testing.assert_allclose(curves[n].numpy(), expected, rtol=1e-5, atol=1e-7)


def test_ties_go_to_the_first_patch_in_row_major_order():
    order = replacement_steps(torch.zeros(1, 4, 4), 2, 4)[0]
    assert order.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_border_strip_outside_the_grid_is_never_replaced():
    order = replacement_steps(torch.rand(1, 5, 5, generator=torch.Generator().manual_seed(0)), 2, 4)[0]
    never = torch.iinfo(torch.int32).max
    assert (order[4, :] == never).all() and (order[:, 4] == never).all()
    assert sorted(order[:4, :4].unique().tolist()) == [1, 2, 3, 4]


def test_area_is_the_normalised_trapezoid():
    steps = np.arange(31)
    table = pd.DataFrame({"model": "m", "method": "g", "patch_size": 8, "image": 0, "label": 1, "step": steps,
                          "score": 1 - steps / 30})
    area = faithfulness_area(table.sample(frac=1, random_state=0))
    assert area.columns.tolist() == ["model", "method", "patch_size", "image", "area"]
    assert area["area"].iloc[0] == pytest.approx(0.5, abs=1e-12)
    scores = np.random.default_rng(0).random(31)
    table["score"] = scores
    expected = (scores.sum() - (scores[0] + scores[-1]) / 2) / 30
    assert faithfulness_area(table)["area"].iloc[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"blur_kernel": 4}, "blur_kernel must be odd"),
    ({"blur_kernel": 33}, "too large"),
    ({"patch_size": 17}, "larger than the image"),
    ({"patch_size": 4, "steps": 17}, "exceeds the 16 patches"),
    ({"patch_size": 0}, "patch_size must be a positive integer"),
    ({"stride": 5}, "stride must not exceed"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
])
def test_bad_arguments_name_themselves(tiny_model, tiny_images, kwargs, message):
    options = {"patch_size": 2, "steps": 3, "blur_kernel": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        perturbation_curves(tiny_model, tiny_images, torch.zeros(6, dtype=torch.long), torch.rand(6, 16, 16),
                            **options)


def test_nan_attribution_and_wrong_shapes_are_rejected(tiny_model, tiny_images):
    targets = torch.zeros(6, dtype=torch.long)
    with pytest.raises(ValueError, match="NaN"):
        perturbation_curves(tiny_model, tiny_images, targets, torch.full((6, 16, 16), float("nan")),
                            patch_size=2, steps=3, blur_kernel=3)
    with pytest.raises(ValueError, match="attribution must have shape"):
        perturbation_curves(tiny_model, tiny_images, targets, torch.rand(6, 8, 8), patch_size=2, steps=3,
                            blur_kernel=3)


def test_lerf_replaces_the_least_relevant_patch_first():
    from empirical.experiments.faithfulness import replacement_steps

    attribution = torch.zeros(1, 4, 4, dtype=torch.float64)
    attribution[0, :2, :2], attribution[0, :2, 2:] = 4, 1
    attribution[0, 2:, :2], attribution[0, 2:, 2:] = 3, 2
    lerf = replacement_steps(attribution, 2, 4, order="lerf")
    # oracle: patch means 4, 1, 3, 2 -> least relevant first: top-right, bottom-right, bottom-left, top-left
    assert [int(lerf[0, 0, 2]), int(lerf[0, 2, 2]), int(lerf[0, 2, 0]), int(lerf[0, 0, 0])] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="order"):
        replacement_steps(attribution, 2, 4, order="random")


def test_order_gap_and_area_relative_to_the_control():
    import pandas as pd

    from empirical.experiments.faithfulness import order_gap, relative_to_control

    morf = pd.DataFrame({"model": "m", "method": ["a", "random-uniform"], "patch_size": 2, "image": 0,
                         "area": [0.2, 0.4]})
    lerf = morf.assign(area=[0.7, 0.45])
    gap = order_gap(morf, lerf)
    assert gap["gap"].tolist() == pytest.approx([0.5, 0.05])
    relative = relative_to_control(morf)
    expected = {"a": 0.5, "random-uniform": 1.0}
    assert relative.set_index("method")["relative"].to_dict() == pytest.approx(expected)
