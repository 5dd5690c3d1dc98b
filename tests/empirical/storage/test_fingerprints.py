"""Fingerprints of what a chunk was computed from, and the chunk store's use of them.

Oracles: sha256 is a function of the bytes hashed, so equal content gives equal digests and one changed
pixel, weight, label, setting or line of a method's code gives another; a store asked for one fingerprint
answers only for a chunk written with it.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from empirical.storage.chunks import ChunkStore
from empirical.storage.fingerprints import (
    callable_description,
    fingerprint,
    labels_digest,
    tensor_digest,
    weights_digest,
)
from empirical.storage.streaming import FolderStream, TensorStream

A, B = "a" * 64, "b" * 64


def test_one_pixel_changes_the_tensor_digest_and_equal_content_does_not():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    changed = images.clone()
    changed[1, 2, 5, 3] += 1e-3
    assert tensor_digest(images) == tensor_digest(images.clone())
    assert tensor_digest(images) != tensor_digest(changed)
    assert tensor_digest(images) != tensor_digest(images.double())  # the dtype is part of it


def test_one_weight_changes_the_weights_digest_wherever_the_weights_came_from(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    reloaded = copy.deepcopy(model)
    reloaded.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    assert weights_digest(reloaded) == weights_digest(model)
    with torch.no_grad():
        reloaded[0].weight[0, 0, 0, 0] *= 1.5
    assert weights_digest(reloaded) != weights_digest(model)
    with torch.no_grad():  # a buffer (batch-norm statistics) counts as well
        other = copy.deepcopy(model)
        other[1].running_mean[0] += 1.0
    assert weights_digest(other) != weights_digest(model)


def test_labels_and_settings_digests():
    assert labels_digest(None) is None
    assert labels_digest([1, 2]) == labels_digest(torch.tensor([1, 2]))
    assert labels_digest([1, 2]) != labels_digest([1, 3])
    assert fingerprint(a=1, b={"x": [1.0, 2.0], "y": "z"}) == fingerprint(b={"y": "z", "x": [1.0, 2.0]}, a=1)
    assert fingerprint(a=1, b={"x": [1.0, 2.0]}) != fingerprint(a=1, b={"x": [1.0, 2.5]})
    assert len(fingerprint(a=None)) == 64


def _sum_map(model, x, target):
    return x.sum(1)


def _mean_map(model, x, target):
    return x.mean(1)


def test_a_callable_is_known_by_its_code_defaults_and_closure():
    def scaled(factor):
        return lambda model, x, target: x.sum(1) * factor

    assert callable_description(_sum_map) == callable_description(_sum_map)
    assert fingerprint(m=_sum_map) != fingerprint(m=_mean_map)
    assert fingerprint(m=scaled(2.0)) == fingerprint(m=scaled(2.0))
    assert fingerprint(m=scaled(2.0)) != fingerprint(m=scaled(3.0))


def _png(path, seed, *, invert=False):
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    if invert:
        pixels[:1, :1] = 255 - pixels[:1, :1]
    Image.fromarray(pixels).save(path)


def test_folder_stream_digest_follows_file_content_not_names(tmp_path):
    for k in range(2):
        _png(tmp_path / f"{k}.png", k)
    files = [tmp_path / "0.png", tmp_path / "1.png"]
    stream = FolderStream(count=2, labels=None, names=("0", "1"), source=str(tmp_path), files=tuple(files))
    before, first = stream.content_digest(), stream.content_digest(0, 1)
    _png(tmp_path / "1.png", 1, invert=True)  # one pixel of the second image
    assert stream.content_digest() != before
    assert stream.content_digest(0, 1) == first


def test_tensor_stream_digest_covers_only_its_range():
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    changed = images.clone()
    changed[3, 0, 0, 0] += 0.5
    stream, other = (TensorStream(count=4, labels=None, names=(), source="", tensor=t)
                     for t in (images, changed))
    assert stream.content_digest(0, 2) == other.content_digest(0, 2)
    assert stream.content_digest(2, 4) != other.content_digest(2, 4)


def test_store_answers_only_for_the_fingerprint_a_chunk_was_written_with(tmp_path):
    store = ChunkStore(tmp_path, "faithfulness")
    table = pd.DataFrame({"x": [1.5, 2.5]})
    store.write("k", table, A)
    assert store.has("k") and store.has("k", A) and not store.has("k", B)
    assert store.fingerprint("k") == A
    assert store.collect(fingerprints={"k": A})["x"].tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match="other inputs"):
        store.collect(fingerprints={"k": B})
    with pytest.raises(ValueError, match="missing"):
        store.collect(fingerprints={"k": A, "absent": A})
    store.write("stale", pd.DataFrame({"x": [9.0]}), B)  # another run's chunk in the same folder
    assert store.collect(fingerprints={"k": A})["x"].tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.write("k", table, "not-a-sha")


class _Wrapper:
    """A callable object whose attributes lead back to itself (as wrappers of bound methods do)."""

    def __init__(self, scale):
        self.scale = scale
        self.options = {"me": self}

    def __call__(self, model, x, target):
        return x.sum(1) * self.scale


def test_a_callable_object_is_known_by_its_attributes_even_through_a_cycle():
    assert fingerprint(m=_Wrapper(2.0)) == fingerprint(m=_Wrapper(2.0))
    assert fingerprint(m=_Wrapper(2.0)) != fingerprint(m=_Wrapper(3.0))
