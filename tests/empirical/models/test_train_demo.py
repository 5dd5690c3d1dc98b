"""The shipped demo weights: accuracy, checksum, and a deterministic training recipe."""

from __future__ import annotations

import json

import pytest
import torch

from empirical.models import DEMO_WEIGHTS_PATH, load_model, weights_checksum
from empirical.models.train_demo import accuracy, shift, train
from empirical.storage.data import digits_split, load_digits


def test_shipped_weights_reach_95_percent_on_held_out_digits():
    held_out = load_digits("test")
    model = load_model("demo")
    assert len(held_out) == 360
    assert accuracy(model, held_out.images, held_out.labels) >= 0.95


def test_record_beside_the_weights_matches_them():
    record = json.loads(DEMO_WEIGHTS_PATH.with_suffix(".json").read_text())
    assert record["sha256"] == weights_checksum(DEMO_WEIGHTS_PATH)
    assert record["held_out_accuracy"] >= 0.95
    assert DEMO_WEIGHTS_PATH.stat().st_size < 1_000_000
    held_out = load_digits("test")
    measured = accuracy(load_model("demo"), held_out.images, held_out.labels)
    assert abs(measured - record["held_out_accuracy"]) < 1e-6


def test_split_is_disjoint_stratified_and_fixed():
    train_idx, test_idx = digits_split()
    assert set(train_idx).isdisjoint(test_idx) and len(train_idx) + len(test_idx) == 1797
    again = digits_split()
    assert (again[0] == train_idx).all() and (again[1] == test_idx).all()
    counts = torch.bincount(load_digits("test").labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of about 180 a class


@pytest.mark.slow
def test_training_is_deterministic():
    """Oracle: the same seed twice gives bit-identical weights (a short run on 128 images)."""
    first, _ = train(seed=3, epochs=1, train_images=128, progress=False)
    second, _ = train(seed=3, epochs=1, train_images=128, progress=False)
    other, _ = train(seed=4, epochs=1, train_images=128, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))
    assert not torch.equal(first.fc.weight, other.fc.weight)


def test_shift_moves_content_without_changing_it():
    image = torch.zeros(1, 3, 8, 8)
    image[0, :, 3, 4] = 1.0
    generator = torch.Generator().manual_seed(0)
    moved = shift(image.expand(50, -1, -1, -1), 2, rng=generator)
    assert torch.equal(moved.sum(dim=(1, 2, 3)), torch.full((50,), 3.0))
    where = moved[:, 0].flatten(1).argmax(1)
    rows, cols = where.div(8, rounding_mode="floor"), where % 8
    assert rows.min() == 1 and rows.max() == 5 and cols.min() == 2 and cols.max() == 6


def test_training_prints_the_estimate_before_the_bar(capsys):
    """Oracle: 128 images in batches of 64 are 2 batches an epoch, 2 epochs 4 batches; the estimate's line
    comes before anything of the bar or the epoch lines."""
    train(seed=3, epochs=2, train_images=128, progress=True)
    err = capsys.readouterr().err
    line = err.lstrip("\r").splitlines()[0]
    assert line.startswith("train demo (2 epochs): estimated time ") and "for 4 batches" in line, err
