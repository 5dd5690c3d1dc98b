"""Image sets for the experiments (seed A.1): an ImageNet validation folder, the
scikit-learn handwritten digits of the ``demo`` profile, and random inputs for the ``bench`` profile.

Every loader returns an :class:`ImageSet`: preprocessed images (N, 3, H, W) on the CPU, labels (or None),
and a description for the run manifest (source, images used, files skipped).
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from empirical.models import digits_to_demo_input, imagenet_transform
from empirical.rng import torch_generator

__all__ = [
    "DIGITS_SPLIT_SEED",
    "DIGITS_TEST_FRACTION",
    "IMAGE_SUFFIXES",
    "ImageSet",
    "digits_split",
    "imagenet_class_index",
    "imagenet_wnids",
    "load_digits",
    "list_image_folder",
    "load_image_folder",
    "random_images",
]

#: the held-out split of the digits is fixed (it is not the run's --seed): the shipped demo weights were
#: trained on the other part, and no run may evaluate on training images.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
#: label files looked for beside flat image files when none is named
LABEL_FILE_NAMES = ("labels.txt", "labels.csv")
#: a class folder named by WordNet id, as in the ImageNet validation set (n01440764, ...)
WNID = re.compile(r"^n\d{8}$")
#: a flat image file named by WordNet id, ``n01440764_tench.JPEG`` or ``n01440764.JPEG``
WNID_PREFIX = re.compile(r"^(n\d{8})(?=[_.\-])")
#: package data: the 1000 ILSVRC-2012 synset ids in sorted order, which is the ImageNet-1k class index of
#: every pretrained torchvision and efficientnet-pytorch network (copied from timm's imagenet_synsets.txt)
WNID_FILE = "imagenet_wnids.txt"


@dataclass(frozen=True)
class ImageSet:
    """Preprocessed images (N, 3, H, W) float32 on the CPU, labels (N,) int64 or None, and provenance."""

    images: torch.Tensor
    labels: torch.Tensor | None
    names: tuple[str, ...]
    source: str
    skipped: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(self.images.shape)}")
        if self.labels is not None and self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},), "
                             f"got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def describe(self) -> dict:
        """The manifest's ``dataset`` entry: source, images used, files skipped (count and names)."""
        return {"source": self.source, "images": len(self), "labels": self.labels is not None,
                "first": self.names[0] if self.names else None,
                "last": self.names[-1] if self.names else None,
                "skipped": len(self.skipped), "skipped_files": list(self.skipped)}


def _check_count(n, name: str = "n") -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {n!r}")
    return int(n)


# --------------------------------------------------------------------------- digits (demo profile)

def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held-out) into scikit-learn's 1797 digits: a stratified 80/20 split, fixed seed 0."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    target = sklearn_digits().target
    train, test = train_test_split(np.arange(target.size), test_size=DIGITS_TEST_FRACTION,
                                   random_state=DIGITS_SPLIT_SEED, stratify=target)
    return np.sort(train), np.sort(test)


def load_digits(split: str = "test", n: int | None = None) -> ImageSet:
    """The handwritten digits as demo-network inputs: the first ``n`` images of ``split`` (``train`` or
    ``test``, the held-out fifth) in index order.

    Preprocessing (the one the demo weights were trained with, ``empirical.models.digits_to_demo_input``):
    intensities 0..16 divided by 16, bilinear upsampling 8x8 -> 32x32, grey copied to 3 channels, values in
    [0, 1]; no mean/std normalisation.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = _check_count(n)
    train, test = digits_split()
    available = train if split == "train" else test
    if n is not None and n > len(available):
        raise ValueError(f"n ({n}) exceeds the {len(available)} digits of the {split} split")
    indices = available[:n]
    digits = sklearn_digits()
    images = digits_to_demo_input(digits.images[indices])
    labels = torch.from_numpy(digits.target[indices].astype(np.int64))
    names = tuple(f"digits-{index:04d}" for index in indices)
    return ImageSet(images, labels, names, source=f"scikit-learn digits ({split} split)")


# --------------------------------------------------------------------------- random inputs (bench profile)

def random_images(n: int, size: int = 224, *, rng=0) -> ImageSet:
    """``n`` standard-normal images (n, 3, size, size) without labels, for throughput only (``bench``).

    ``rng``: a seed or ``torch.Generator``.
    """
    n = _check_count(n)
    if n is None:
        raise ValueError("n must be a positive integer, got None")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    generator = torch_generator(rng)
    images = torch.randn(n, 3, size, size, generator=generator)
    return ImageSet(images, None, tuple(f"random-{k:06d}" for k in range(n)), source="random normal inputs")


# --------------------------------------------------------------------------- ImageNet validation folder

@cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids; position k is class index k (n01440764 is 0, n15075141 is 999)."""
    text = resources.files("empirical.storage").joinpath(WNID_FILE).read_text(encoding="ascii")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def _wnid_index() -> dict[str, int]:
    return {name: k for k, name in enumerate(imagenet_wnids())}


def imagenet_class_index(wnid: str) -> int:
    """The ImageNet-1k class index of the WordNet id ``wnid``; ValueError naming it if it is not one of the
    1000."""
    index = _wnid_index()
    if wnid not in index:
        raise ValueError(f"class folder {wnid!r} is named like a WordNet id but is not one of the 1000 "
                         "ImageNet-1k classes; rename it, or use folder names that are not WordNet ids "
                         "(numbered by position then)")
    return index[wnid]


def load_image_folder(root, n: int | None = None, *, labels_file=None, transform=None,
                      workers: int = 8) -> ImageSet:
    """The first ``n`` readable images of an ImageNet-style validation folder, preprocessed by ``transform``
    (default: the seed's resize 256, centre crop 224, ImageNet mean/std).

    Layouts: class sub-folders (label: the folder's index among the 1000 sorted WordNet ids of the
    ImageNet classes), flat image files whose names all begin with a WordNet id (``n01440764_tench.JPEG``;
    label: that id's index, unless ``labels_file`` is given), or flat image files with labels from
    ``labels_file`` (default: ``labels.txt`` or ``labels.csv`` in ``root`` when present; otherwise no labels
    and the top class is explained). A label
    file holds one line per image, ``name label`` or ``name,label`` (0-based class index), or just the label,
    line k belonging to the k-th file in sorted order. Files are ordered by file name, then path, so both
    layouts give the same first ``n`` images. Unreadable files are skipped and listed in ``skipped``.

    Class sub-folders named by WordNet id (``n01440764``, ...) get their ImageNet-1k index
    (:func:`imagenet_class_index`), whichever of the 1000 classes are present. Other folder names are
    numbered by position in sorted order, with a warning: that is right only when every class is present.
    """
    n = _check_count(n)
    root, files, labels = list_image_folder(root, labels_file)
    if transform is None:
        transform = imagenet_transform()
    wanted = len(files) if n is None else n
    tensors, kept, skipped = [], [], []
    position = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # decode in order, only as many files as still needed, so "first n" never depends on thread timing
        while len(kept) < wanted and position < len(files):
            batch = range(position, min(len(files), position + wanted - len(kept)))
            position = batch.stop
            decoded = pool.map(lambda k: _read(files[k], transform), batch)
            for index, tensor in zip(batch, decoded, strict=True):
                if tensor is None:
                    skipped.append(str(files[index].relative_to(root)))
                else:
                    tensors.append(tensor)
                    kept.append(index)
    if not tensors:
        raise ValueError(f"none of the {len(skipped)} image files tried in {root} could be read")
    images = torch.stack(tensors).float()
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"the transform must give (3, H, W) tensors, got {tuple(images.shape[1:])}")
    label_tensor = None if labels is None else torch.tensor([labels[k] for k in kept], dtype=torch.int64)
    names = tuple(str(files[k].relative_to(root)) for k in kept)
    return ImageSet(images, label_tensor, names, source=str(root.resolve()), skipped=tuple(skipped))


def list_image_folder(root, labels_file=None) -> tuple[Path, list[Path], list[int] | None]:
    """``root`` as a Path, its image files in sorted order and their labels (or None), as
    :func:`load_image_folder` reads them; a missing, non-folder or image-free ``root`` is one clear error."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data folder not found: {root} (pass an ImageNet validation folder)")
    if not root.is_dir():
        raise ValueError(f"data must be a folder of images, got the file {root}")
    files, labels = _list_images(root, labels_file)
    if not files:
        raise ValueError(f"data folder {root} holds no image files ({', '.join(IMAGE_SUFFIXES)}): expected "
                         "class sub-folders or flat image files")
    return root, files, labels


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _list_images(root: Path, labels_file) -> tuple[list[Path], list[int] | None]:
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and any(_is_image(p) for p in d.iterdir()))
    if class_dirs:
        entries = [(p, label) for d, label in zip(class_dirs, _folder_labels(root, class_dirs), strict=True)
                   for p in d.iterdir() if _is_image(p)]
        entries.sort(key=lambda entry: (entry[0].name, str(entry[0])))
        return [p for p, _ in entries], [label for _, label in entries]
    files = sorted((p for p in root.iterdir() if _is_image(p)), key=lambda p: p.name)
    if labels_file is None and files and all(WNID_PREFIX.match(p.name) for p in files):
        # flat WordNet-id-prefixed files (n01440764_tench.JPEG): the label is the prefix's ImageNet-1k index
        return files, [imagenet_class_index(WNID_PREFIX.match(p.name).group(1)) for p in files]
    if labels_file is None:
        labels_file = next((root / name for name in LABEL_FILE_NAMES if (root / name).is_file()), None)
    if labels_file is None or not files:
        return files, None
    return files, _read_labels(Path(labels_file), files)


def _folder_labels(root: Path, class_dirs: list[Path]) -> list[int]:
    """The class index of each class folder: the ImageNet-1k index for WordNet ids, else the position."""
    names = [d.name for d in class_dirs]
    if all(WNID.match(name) for name in names):
        return [imagenet_class_index(name) for name in names]
    # a position is the class index only when every class has its folder: a missing class shifts the rest
    warnings.warn(f"the {len(names)} class folders of {root} are not all WordNet ids (e.g. "
                  f"{next(n for n in names if not WNID.match(n))!r}): labels are their positions 0.."
                  f"{len(names) - 1} in sorted order, which is right only if every class of the model has a "
                  "folder", stacklevel=4)  # the caller of load_image_folder
    return list(range(len(names)))


def _read_labels(path: Path, files: list[Path]) -> list[int]:
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"label file {path} is not text (byte {error.start} is not UTF-8): expected one "
                         "line per image, 'name label' or 'label'") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [line.replace(",", " ").split() for line in lines]
    if rows and rows[0][-1].lower() in ("label", "labels", "class", "target"):
        rows = rows[1:]  # a header line such as "file,label"

    def as_label(text: str, line: int) -> int:
        if not (text.isascii() and text.isdigit()):  # str.isdigit alone accepts '²', which int() refuses
            raise ValueError(f"label file {path}, line {line}: label must be a class index >= 0, "
                             f"got {text!r}")
        return int(text)

    if all(len(row) == 1 for row in rows):
        if len(rows) < len(files):
            raise ValueError(f"label file {path} has {len(rows)} labels for {len(files)} images")
        return [as_label(row[0], k + 1) for k, row in enumerate(rows[:len(files)])]
    by_name = {}
    for k, row in enumerate(rows):
        if len(row) != 2:
            raise ValueError(f"label file {path}, line {k + 1}: expected 'name label', got {' '.join(row)!r}")
        by_name[row[0]] = as_label(row[1], k + 1)
    missing = [p.name for p in files if p.name not in by_name and p.stem not in by_name]
    if missing:
        raise ValueError(f"label file {path} has no label for {len(missing)} images, e.g. {missing[0]!r}")
    return [by_name.get(p.name, by_name.get(p.stem)) for p in files]


def _read(path: Path, transform):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return transform(image.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
