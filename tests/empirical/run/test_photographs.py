"""The embedded photographs, the flat WordNet-id layout of image folders, and Lite0 on the shared ImageNet
sample (top-1 at least 0.80 there with its TF-Lite scaling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from empirical.run.photographs import TRUE_CLASSES, embedded_photographs
from empirical.storage.data import imagenet_class_index, load_image_folder

SHARED_SAMPLE = Path(__file__).resolve().parents[4] / "shared" / "data" / "imagenet-sample"


def test_embedded_photographs_include_sklearns_and_carry_true_classes_where_known():
    photos = embedded_photographs()
    assert {"china", "flower"} <= set(photos.names)
    for name, label in zip(photos.names, photos.true_labels, strict=True):
        assert label == TRUE_CLASSES.get(name, (-1,))[0]
    assert all(a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 for a in photos.arrays)


def test_flat_wnid_prefixed_files_get_their_imagenet_index_over_a_label_file(tmp_path):
    """Oracle: the position of the WordNet id in the sorted list of the 1000 (imagenet_class_index)."""
    for wnid in ("n01440764", "n15075141", "n01518878"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"{wnid}_thing.png")
    (tmp_path / "labels.csv").write_text("file,wnid,class_index\nnot,used,3\n")
    images = load_image_folder(tmp_path, transform=lambda image: torch.zeros(3, 4, 4), workers=1)
    assert images.labels.tolist() == [0, 9, 999] == [imagenet_class_index(w) for w in
                                                     ("n01440764", "n01518878", "n15075141")]


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_SAMPLE.is_dir(),
                    reason=f"the shared ImageNet sample is absent ({SHARED_SAMPLE})")
def test_lite0_top1_on_the_shared_imagenet_sample_is_at_least_080():
    pytest.importorskip("efficientnet_lite_pytorch")
    from empirical.measures.accuracy import classify, top_k_accuracy
    from empirical.models import NETWORKS, load_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    sample = load_image_folder(SHARED_SAMPLE, workers=2,
                               transform=NETWORKS["efficientnet-lite0"].preprocessing.transform())
    logits = classify(load_model("efficientnet-lite0"), sample.images, batch_size=32)
    # measured: 0.863 top-1, 0.983 top-5 over the 241 (ImageNet mean/std instead: 0.768)
    assert len(sample) == 241 and top_k_accuracy(logits, sample.labels, 1) >= 0.80
