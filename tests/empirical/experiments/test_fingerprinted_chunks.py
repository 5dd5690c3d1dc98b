"""Chunks kept with ``out=`` are reused only for the inputs they were computed from (the public API).

Oracle: a fresh call in an empty folder. A call in a folder that holds another call's chunks must return the
fresh call's table exactly; it recomputes exactly the chunks whose images, targets, weights, method or
settings changed (one pixel changes only its batch's chunks, one weight every chunk) and reuses the rest, so
an unchanged call writes no chunk at all.
"""

from __future__ import annotations

import pytest
import torch

import empirical
from empirical.storage.chunks import ChunkStore

# the smallest settings of each call on 16x16 images; batches of 2 images: one chunk per batch and method
_CALLS = {
    "faithfulness": lambda model, images, targets, out, **extra: empirical.faithfulness(
        model, images, targets, out=out, **{"methods": ["gradient"], "patch_sizes": (4,), "steps": 4,
                                            "blur_kernel": 3, "batch_size": 2, **extra}),
    "mprt": lambda model, images, targets, out, **extra: empirical.mprt(
        model, images, targets, out=out, **{"methods": ["gradient"], "batch_size": 2, **extra}),
}


@pytest.fixture
def writes(monkeypatch):
    """The keys of the chunks written since the test began (``ChunkStore.write`` calls)."""
    written = []
    original = ChunkStore.write

    def counting(self, key, table, fingerprint=None):
        written.append(key)
        return original(self, key, table, fingerprint)

    monkeypatch.setattr(ChunkStore, "write", counting)
    return written


def _fresh(call, model, images, targets, tmp_path, name, **extra):
    return _CALLS[call](model, images, targets, tmp_path / name, **extra)


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_unchanged_call_reuses_every_chunk(call, tiny_model, tiny_images, tmp_path, writes):
    first = _CALLS[call](tiny_model, tiny_images, None, tmp_path / "out")
    assert len(writes) == 3  # 6 images, batches of 2
    writes.clear()
    again = _CALLS[call](tiny_model, tiny_images, None, tmp_path / "out")
    assert writes == []
    assert again.equals(first)


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_one_changed_pixel_recomputes_its_batch_and_matches_a_fresh_call(call, tiny_model, tiny_images,
                                                                           tmp_path, writes):
    before = _CALLS[call](tiny_model, tiny_images, None, tmp_path / "out")
    changed = tiny_images.clone()
    changed[3, 1, 7, 9] = 1.0 - changed[3, 1, 7, 9]  # image 3: the second batch
    writes.clear()
    after = _CALLS[call](tiny_model, changed, None, tmp_path / "out")
    assert len(writes) == 1 and "0000002-0000004" in writes[0]
    assert after.equals(_fresh(call, tiny_model, changed, None, tmp_path, "fresh"))
    assert not after.equals(before)


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_one_changed_weight_recomputes_every_chunk_and_matches_a_fresh_call(call, tiny_model, tiny_images,
                                                                             tmp_path, writes):
    before = _CALLS[call](tiny_model, tiny_images, None, tmp_path / "out")
    with torch.no_grad():
        tiny_model.conv1.weight[0, 0, 1, 1] *= 1.5
    writes.clear()
    after = _CALLS[call](tiny_model, tiny_images, None, tmp_path / "out")
    assert len(writes) == 3
    assert after.equals(_fresh(call, tiny_model, tiny_images, None, tmp_path, "fresh"))
    assert not after.equals(before)


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_changed_targets_or_settings_are_recomputed(call, tiny_model, tiny_images, tmp_path, writes):
    _CALLS[call](tiny_model, tiny_images, None, tmp_path / "out")
    targets = torch.zeros(len(tiny_images), dtype=torch.long)
    targets[0] = 1
    writes.clear()
    by_targets = _CALLS[call](tiny_model, tiny_images, targets, tmp_path / "out")
    assert by_targets.equals(_fresh(call, tiny_model, tiny_images, targets, tmp_path, "fresh-targets"))
    writes.clear()
    extra = {"steps": 3} if call == "faithfulness" else {"seed": 1}
    by_setting = _CALLS[call](tiny_model, tiny_images, targets, tmp_path / "out", **extra)
    assert len(writes) == 3
    assert by_setting.equals(_fresh(call, tiny_model, tiny_images, targets, tmp_path, "fresh-setting",
                                    **extra))


def test_a_changed_method_of_the_same_name_is_recomputed(tiny_model, tiny_images, tmp_path, writes,
                                                        gradient_method):
    def saliency(model, x, target):
        return gradient_method(model, x, target)

    first = empirical.faithfulness(tiny_model, tiny_images, methods=[saliency], patch_sizes=(4,), steps=4,
                                   blur_kernel=3, batch_size=2, out=tmp_path / "out")

    def saliency(model, x, target):  # noqa: F811 (the same name, another map)
        return gradient_method(model, x, target) ** 2

    writes.clear()
    second = empirical.faithfulness(tiny_model, tiny_images, methods=[saliency], patch_sizes=(4,), steps=4,
                                    blur_kernel=3, batch_size=2, out=tmp_path / "out")
    assert len(writes) == 3 and not second.equals(first)


def test_activation_statistics_follow_a_changed_pixel_or_weight(tiny_model, tiny_images, tmp_path, writes):
    def call(images, out):
        return empirical.activation_statistics(tiny_model, images, batch_size=2, out=tmp_path / out)

    first = call(tiny_images, "out")
    writes.clear()
    assert call(tiny_images, "out").equals(first) and writes == []
    changed = tiny_images.clone()
    changed[3, 0, 2, 2] += 0.5
    after_pixel = call(changed, "out")
    assert after_pixel.equals(call(changed, "fresh-pixel")) and not after_pixel.equals(first)
    with torch.no_grad():
        tiny_model.conv1.weight[0, 0, 1, 1] *= 1.5  # the statistics are of what enters each layer
    after_weight = call(changed, "out")
    assert after_weight.equals(call(changed, "fresh-weight")) and not after_weight.equals(after_pixel)
