"""Real photographs shipped inside installed packages, as an embedded input set for the pretrained ImageNet
networks (the paper's experiments run on ImageNet photographs, Binder et al., CVPR 2023, supplement A.1).

scikit-learn's ``load_sample_images`` (china, flower) are always there; scikit-image's ``skimage.data``
(astronaut, chelsea, coffee, rocket, the left view of stereo_motorcycle) when it is installed. Three show
one ImageNet class plainly and carry it as their true label (chelsea: 281 tabby, coffee: 967 espresso,
rocket: 657 missile); the others get the network's top-1 class, and ``label_source`` says which is which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from empirical.storage.data import ImageSet

__all__ = ["PHOTOGRAPHS", "TRUE_CLASSES", "Photographs", "embedded_photographs", "labelled_by"]

#: the embedded photographs, in order: (name, package)
PHOTOGRAPHS = (("astronaut", "skimage"), ("chelsea", "skimage"), ("coffee", "skimage"), ("rocket", "skimage"),
               ("motorcycle", "skimage"), ("china", "sklearn"), ("flower", "sklearn"))
#: ImageNet-1k class (index, name) of the photographs that plainly show one
TRUE_CLASSES = {"chelsea": (281, "tabby, tabby cat"), "coffee": (967, "espresso"), "rocket": (657, "missile")}


@dataclass(frozen=True)
class Photographs:
    """Raw photographs (uint8 H x W x 3 arrays), their names and true class (-1: not known)."""

    arrays: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    true_labels: tuple[int, ...]

    def preprocess(self, preprocessing) -> torch.Tensor:
        """(N, 3, crop, crop) float32 through ``preprocessing`` (an ``empirical.models.Preprocessing``)."""
        from PIL import Image

        transform = preprocessing.transform()
        return torch.stack([transform(Image.fromarray(array)) for array in self.arrays]).float()


def _load(name: str, package: str) -> np.ndarray | None:
    if package == "sklearn":
        from sklearn.datasets import load_sample_images

        bundle = load_sample_images()
        files = [path.rsplit("/", 1)[-1].rsplit(".", 1)[0] for path in bundle.filenames]
        return np.ascontiguousarray(bundle.images[files.index(name)])
    try:
        from skimage import data
    except ImportError:
        return None
    try:
        array = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    except Exception:  # a photograph that skimage would have to download: left out
        return None
    return np.ascontiguousarray(array[..., :3])


def embedded_photographs() -> Photographs:
    """The photographs of ``PHOTOGRAPHS`` that the installed packages ship (scikit-learn's two at least)."""
    arrays, names, labels = [], [], []
    for name, package in PHOTOGRAPHS:
        array = _load(name, package)
        if array is None:
            continue
        arrays.append(array)
        names.append(name)
        labels.append(TRUE_CLASSES.get(name, (-1, ""))[0])
    return Photographs(tuple(arrays), tuple(names), tuple(labels))


def labelled_by(model: torch.nn.Module, photographs: Photographs, preprocessing, *,
                batch_size: int = 8) -> tuple[ImageSet, tuple[str, ...]]:
    """The photographs as an ``ImageSet`` preprocessed for ``model``, each labelled by its true class where
    known and by ``model``'s top-1 class otherwise; second value: ``"true"`` or ``"top-1"`` per image."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if model.training:
        raise ValueError("model is in training mode: call model.eval() first (batch-norm statistics change)")
    images = photographs.preprocess(preprocessing)
    with torch.no_grad():
        top = torch.cat([model(images[k:k + batch_size]).argmax(1)
                         for k in range(0, len(images), batch_size)])
    known = torch.tensor(photographs.true_labels) >= 0
    labels = torch.where(known, torch.tensor(photographs.true_labels), top).long()
    sources = tuple("true" if flag else "top-1" for flag in known.tolist())
    image_set = ImageSet(images, labels, photographs.names,
                         source="embedded photographs (scikit-image, scikit-learn)")
    return image_set, sources
