"""The Lite0 profiles: images preprocessed as Lite0 wants, the embedded photographs labelled and counted,
and top-1/top-5 of the run's network in the manifest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from empirical.run.profiles import get_profile, image_transform, load_images, open_images

pytest.importorskip("efficientnet_lite_pytorch")


def test_lite0_folder_profile_reads_a_flat_wnid_folder_with_the_tflite_scaling(tmp_path):
    """Oracle: a uniform grey image of value v is (255 v - 127) / 128 everywhere after the transform."""
    Image.fromarray(np.full((300, 260, 3), 200, np.uint8)).save(tmp_path / "n01440764_tench.png")
    Image.fromarray(np.full((300, 260, 3), 10, np.uint8)).save(tmp_path / "n15075141_tissue.png")
    profile = get_profile("lite0-folder")
    stream = open_images(profile, images=2, data=tmp_path, workers=0)
    images = stream.first(2)
    assert images.shape == (2, 3, 224, 224) and stream.labels.tolist() == [0, 999]
    assert torch.allclose(images[0], torch.full_like(images[0], (200 - 127) / 128), atol=1e-6)
    assert torch.allclose(images[1], torch.full_like(images[1], (10 - 127) / 128), atol=1e-6)


def test_other_profiles_keep_the_imagenet_transform():
    assert image_transform(get_profile("imagenet")).transforms[-1].mean == (0.485, 0.456, 0.406)


def test_lite0_profile_loads_the_photographs_labelled_and_says_how():
    image_set = load_images(get_profile("lite0"), images=3)
    assert len(image_set) == 3 and image_set.labels is not None
    assert "true ImageNet classes" in image_set.source
    assert "top-1 class of efficientnet-lite0" in image_set.source


def test_top_accuracies_over_a_stream_match_the_batch_free_count():
    from empirical.measures.accuracy import top_accuracies
    from empirical.storage.streaming import as_stream

    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 7)).eval()
    x, labels = torch.randn(9, 3, 2, 2, generator=gen), torch.randint(0, 7, (9,), generator=gen)
    with torch.no_grad():
        top = model(x).topk(5, 1).indices
    result = top_accuracies(model, as_stream(x, labels), 4)
    assert result["top1"] == pytest.approx(float((top[:, 0] == labels).float().mean()))
    assert result["top5"] == pytest.approx(float((top == labels[:, None]).any(1).float().mean()))


def test_top_accuracies_only_counts_the_masked_images():
    from empirical.measures.accuracy import top_accuracies
    from empirical.storage.streaming import as_stream

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity()).eval()
    x = torch.zeros(3, 3, 2, 2)
    x[0, 0, 0, 0] = x[1, 0, 0, 1] = x[2, 0, 0, 0] = 1.0  # top-1 classes 0, 1, 0
    result = top_accuracies(model, as_stream(x, torch.tensor([0, 1, 5])), 2, only=[False, True, True])
    assert result == {"top1": 0.5, "top5": 0.5, "images": 2}
    with pytest.raises(ValueError, match="only must be a mask"):
        top_accuracies(model, as_stream(x, torch.tensor([0, 1, 5])), 2, only=[True])


@pytest.mark.slow
def test_lite0_run_manifest_names_the_weights_checksum_photographs_and_top_k(tmp_path):
    from empirical.run.runner import run

    out = run(["activations"], profile="lite0", out=tmp_path / "run", images=4, progress=False, workers=0)
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"]["efficientnet-lite0"]["sha256"].startswith("5793442")
    assert manifest["dataset"]["name"] == "photographs" and manifest["dataset"]["images"] == 4
    assert manifest["accuracy_images"]["efficientnet-lite0"] == 3  # chelsea, coffee, rocket
    assert 0 <= manifest["top1"]["efficientnet-lite0"] <= manifest["top5"]["efficientnet-lite0"] <= 1
