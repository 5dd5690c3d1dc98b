"""The embedded multi-digit demo data (seed A.3 at toy scale), read back by the COCO reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from empirical.multilabel.annotations import read_coco_split
from empirical.multilabel.digit_canvases import write_digit_canvases


def test_canvases_read_back_as_coco_with_boxes_inside_their_images(tiny_canvases):
    from PIL import Image

    for split, count in (("train", 12), ("val", 8), ("test", 6)):
        data = read_coco_split(tiny_canvases, split)
        assert len(data) == count and data.class_names == tuple(str(d) for d in range(10))
        assert data.skipped == {}
        for image in data.images:
            assert 1 <= len(image.boxes) <= 3
            with Image.open(image.path) as opened:
                assert opened.size == image.size
                pixels = np.asarray(opened)
            for _, (x0, y0, x1, y1) in image.boxes:
                assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
                assert pixels[int(y0):int(y1), int(x0):int(x1)].max() > 0  # ink inside every box
    shapes = {image.size for image in read_coco_split(tiny_canvases, "train").images}
    assert any(w > h for w, h in shapes) and any(w < h for w, h in shapes)  # landscape and portrait


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    sizes = {"train_canvases": 3, "val_canvases": 2, "test_canvases": 2}
    first = write_digit_canvases(tmp_path / "a", **sizes, rng=5)
    second = write_digit_canvases(tmp_path / "b", **sizes, rng=np.random.default_rng(5))
    third = write_digit_canvases(tmp_path / "c", **sizes, rng=6)
    assert first["train"][0].read_text() == second["train"][0].read_text()
    png = "canvas_00001.png"
    assert (first["val"][1] / png).read_bytes() == (second["val"][1] / png).read_bytes()
    assert first["train"][0].read_text() != third["train"][0].read_text()


def test_digit_pools_against_sklearns_digits_split_disjoint_and_covering_every_digit():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from empirical.multilabel.digit_canvases import canvas_digit_pools

    target = load_digits().target
    # the oracle: the demo weights' 80/20 split (docs: stratified, seed 0), recomputed here with sklearn
    trained_on = train_test_split(np.arange(target.size), test_size=0.2, random_state=0, stratify=target)[0]
    pools = canvas_digit_pools()
    assert set(pools["train"]) == set(trained_on)
    assert not set(pools["train"]) & set(pools["val"]) and not set(pools["train"]) & set(pools["test"])
    assert not set(pools["val"]) & set(pools["test"])
    assert np.array_equal(np.sort(np.concatenate(list(pools.values()))), np.arange(target.size))
    # the held-out fifth halved, stratified: every digit in both halves, class counts differing by <= 1
    val_counts, test_counts = (np.bincount(target[pools[s]], minlength=10) for s in ("val", "test"))
    assert (val_counts > 0).all() and (np.abs(val_counts - test_counts) <= 1).all()


def test_each_split_draws_only_from_its_own_digit_pool(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits

    from empirical.multilabel import digit_canvases

    target = load_digits().target
    # pools recognisable by their classes: training digits 0-3, validation 4-6, test 7-9
    pools = {"train": np.flatnonzero(target < 4), "val": np.flatnonzero((target >= 4) & (target < 7)),
             "test": np.flatnonzero(target >= 7)}
    monkeypatch.setattr(digit_canvases, "canvas_digit_pools", lambda: pools)
    written = write_digit_canvases(tmp_path, train_canvases=6, val_canvases=6, test_canvases=6, rng=0)
    categories = {split: {a["category_id"] - 1 for a in json.loads(path.read_text())["annotations"]}
                  for split, (path, _) in written.items()}
    assert categories["train"] <= set(range(4)) and categories["val"] <= set(range(4, 7))
    assert categories["test"] <= set(range(7, 10))


@pytest.mark.parametrize(("options", "message"), [
    ({"train_canvases": 0}, "train_canvases must be an integer >= 1, got 0"),
    ({"test_canvases": 1.5}, "test_canvases must be an integer >= 1, got 1.5"),
    ({"canvas_sizes": (30, 20)}, "canvas_sizes must satisfy 1 <= low <= high"),
    ({"digit_sizes": (40, 50)}, "must not start above the smallest canvas side"),
    ({"max_overlap": 2}, "max_overlap must be a number in [0, 1], got 2"),
    ({"rng": None}, "rng must be an integer seed or a numpy.random.Generator, got None"),
    ({"digits_per_canvas": 3}, "digits_per_canvas must be a pair"),
])
def test_bad_arguments_name_themselves(tmp_path, options, message):
    with pytest.raises(ValueError) as caught:
        write_digit_canvases(tmp_path, **{"rng": 0, **options})
    assert message in str(caught.value)
