"""Image loaders: ordering, labels, skipped files and clear errors (folders built in tmp_path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from empirical.storage.data import ImageSet, load_digits, load_image_folder, random_images


def small(tensor_image):
    """A transform without resizing: the image as a float tensor (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(tensor_image, dtype=np.float32) / 255).permute(2, 0, 1)


def save(path, value: int, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


@pytest.fixture
def class_folder(tmp_path):
    # ImageNet style: n0... class folders, file names ordered across classes as in the flat layout
    save(tmp_path / "n02" / "val_0001.png", 10)
    save(tmp_path / "n01" / "val_0002.png", 20)
    save(tmp_path / "n02" / "val_0003.png", 30)
    save(tmp_path / "n01" / "val_0004.png", 40)
    return tmp_path


def test_class_folders_give_sorted_labels_and_file_name_order(class_folder):
    images = load_image_folder(class_folder, 3, transform=small)
    assert images.names == ("n02/val_0001.png", "n01/val_0002.png", "n02/val_0003.png")
    assert images.labels.tolist() == [1, 0, 1]
    assert images.images.shape == (3, 3, 5, 6)
    np.testing.assert_allclose(images.images[:, 0, 0, 0].numpy(), np.array([10, 20, 30]) / 255, rtol=1e-6)


def test_unreadable_files_are_skipped_counted_and_replaced(class_folder):
    (class_folder / "n01" / "val_0002.png").write_bytes(b"not an image")
    images = load_image_folder(class_folder, 3, transform=small)
    assert images.names == ("n02/val_0001.png", "n02/val_0003.png", "n01/val_0004.png")
    assert images.skipped == ("n01/val_0002.png",)
    assert images.describe()["skipped"] == 1 and images.describe()["images"] == 3


def test_flat_files_with_name_label_file(tmp_path):
    for k, value in enumerate((5, 6, 7)):
        save(tmp_path / f"ILSVRC2012_val_{k + 1:08d}.JPEG", value)
    (tmp_path / "labels.txt").write_text("ILSVRC2012_val_00000003 9\nILSVRC2012_val_00000001 65\n"
                                         "ILSVRC2012_val_00000002.JPEG 0\n")
    images = load_image_folder(tmp_path, None, transform=small)
    assert images.labels.tolist() == [65, 0, 9] and len(images) == 3


def test_flat_files_with_label_list_or_without_labels(tmp_path):
    for name in ("b.png", "a.png", "c.png"):
        save(tmp_path / name, 1)
    assert load_image_folder(tmp_path, 2, transform=small).labels is None
    (tmp_path / "labels.csv").write_text("label\n3\n4\n5\n")
    images = load_image_folder(tmp_path, 2, transform=small)
    assert images.names == ("a.png", "b.png") and images.labels.tolist() == [3, 4]


def test_default_transform_is_the_papers_preprocessing(tmp_path):
    from empirical.models import imagenet_transform

    save(tmp_path / "x.png", 128, size=(300, 260))
    images = load_image_folder(tmp_path, 1)
    expected = imagenet_transform()(Image.open(tmp_path / "x.png").convert("RGB"))
    assert images.images.shape == (1, 3, 224, 224)
    assert torch.equal(images.images[0], expected)


@pytest.mark.parametrize(("setup", "error", "message"), [
    (lambda p: p / "missing", FileNotFoundError, "data folder not found"),
    (lambda p: p, ValueError, "holds no image files"),
    (lambda p: (p / "f.png").write_bytes(b"x") and p / "f.png", ValueError, "must be a folder"),
])
def test_missing_empty_or_file_paths_are_clear_errors(tmp_path, setup, error, message):
    with pytest.raises(error, match=message):
        load_image_folder(setup(tmp_path), 1, transform=small)


def test_all_unreadable_and_bad_counts_are_clear_errors(tmp_path):
    (tmp_path / "a.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match="none of the 1 image files"):
        load_image_folder(tmp_path, 1, transform=small)
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            load_image_folder(tmp_path, n, transform=small)


@pytest.mark.parametrize(("content", "message"), [
    ("a.png x\n", "label must be a class index"),
    ("a.png 1 2\n", "expected 'name label'"),
    ("zzz.png 1\nzzz2.png 1\n", "no label for 1 images"),
    ("1\n", "1 labels for 2 images"),
])
def test_bad_label_files_name_the_problem(tmp_path, content, message):
    save(tmp_path / "a.png", 1)
    save(tmp_path / "b.png", 1)
    (tmp_path / "labels.txt").write_text(content if "zzz" not in content else "a.png 1\n")
    with pytest.raises(ValueError, match=message):
        load_image_folder(tmp_path, None, transform=small)


def test_digits_match_the_demo_preprocessing():
    from sklearn.datasets import load_digits as sklearn_digits

    from empirical.models import digits_to_demo_input
    from empirical.storage.data import digits_split

    images = load_digits("test", 5)
    indices = digits_split()[1][:5]
    assert torch.equal(images.images, digits_to_demo_input(sklearn_digits().images[indices]))
    assert images.images.shape == (5, 3, 32, 32)
    assert 0.0 <= float(images.images.min()) and float(images.images.max()) <= 1.0
    with pytest.raises(ValueError, match="split must be"):
        load_digits("validation")
    with pytest.raises(ValueError, match="n \\(361\\) exceeds the 360 digits of the test split"):
        load_digits("test", 361)


def test_random_images_follow_the_seed():
    assert torch.equal(random_images(2, 16, rng=3).images, random_images(2, 16, rng=3).images)
    assert not torch.equal(random_images(2, 16, rng=3).images, random_images(2, 16, rng=4).images)
    with pytest.raises(ValueError, match="size must be"):
        random_images(2, 4)


def test_image_set_checks_shapes():
    with pytest.raises(ValueError, match="images must have shape"):
        ImageSet(torch.zeros(2, 1, 4, 4), None, ("a", "b"), "x")
    with pytest.raises(ValueError, match="labels must have shape"):
        ImageSet(torch.zeros(2, 3, 4, 4), torch.zeros(3, dtype=torch.long), ("a", "b"), "x")


def test_wordnet_ids_are_the_1000_imagenet_classes_in_canonical_order():
    """Oracle: the published anchors of the ILSVRC-2012 class index (torchvision's pretrained heads)."""
    import re
    import tomllib
    from pathlib import Path

    from empirical.storage.data import WNID_FILE, imagenet_class_index, imagenet_wnids

    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert all(re.fullmatch(r"n\d{8}", wnid) for wnid in wnids)
    assert (imagenet_class_index("n01440764"), imagenet_class_index("n01443537"),
            imagenet_class_index("n15075141")) == (0, 1, 999)
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    # shipped in the wheel
    assert WNID_FILE in pyproject["tool"]["setuptools"]["package-data"]["empirical.storage"]


def test_wordnet_folders_get_their_imagenet_index_whichever_classes_are_present(tmp_path, recwarn):
    """Before: labels were positions among the folders present, so n15075141 (class 999) became 1."""
    save(tmp_path / "n15075141" / "val_0001.png", 10)
    save(tmp_path / "n01443537" / "val_0002.png", 20)
    images = load_image_folder(tmp_path, None, transform=small)
    assert images.labels.tolist() == [999, 1]
    assert not [w for w in recwarn if "position" in str(w.message)]


def test_a_wordnet_like_folder_outside_imagenet_1k_is_named(tmp_path):
    save(tmp_path / "n01443537" / "a.png", 10)
    save(tmp_path / "n09999999" / "astronaut.png", 20)
    with pytest.raises(ValueError, match="'n09999999' is named like a WordNet id but is not one of the 1000"):
        load_image_folder(tmp_path, None, transform=small)


def test_other_folder_names_are_positions_with_a_warning(class_folder):
    with pytest.warns(UserWarning, match="not all WordNet ids.*positions 0..1 in sorted order"):
        images = load_image_folder(class_folder, 2, transform=small)
    assert images.labels.tolist() == [1, 0]


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xd8\xff\xe0 binary \x00\x81", "is not text"),
    ("a.png ²\nb.png 1\n".encode(), "label must be a class index >= 0, got '²'"),
])
def test_binary_or_odd_label_files_are_named(tmp_path, content, message):
    save(tmp_path / "a.png", 1)
    save(tmp_path / "b.png", 1)
    (tmp_path / "labels.txt").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_image_folder(tmp_path, None, transform=small)
