"""Images and centre-crop labels as a ``torch.utils.data.Dataset`` (seed section A.3).

Each item is the seed's augmentation without its random part, ``Resize(resize)`` + ``CenterCrop(crop_size)`` +
``ToTensor`` (+ the network's mean/std normalisation), and the multi-hot label of that crop
(``crop_labels``). The random part, ``RandomHorizontalFlip``, is applied by the training loop to whole batches
from a seeded generator (``random_horizontal_flip``), so a run never touches global random state and a
resumed run draws the same flips; a horizontal flip maps the centre crop onto itself, so the labels stay.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from empirical.models import IMAGENET_MEAN, IMAGENET_STD, MODEL_NAMES
from empirical.multilabel.annotations import AnnotationSet
from empirical.multilabel.crop_labels import PAPER_CROP_SIZE, PAPER_MIN_FRACTION, PAPER_RESIZE, crop_labels
from empirical.storage.data import ImageSet

__all__ = [
    "DEMO_CROP_SIZE",
    "MultiLabelDataset",
    "input_geometry",
    "multilabel_image_set",
    "random_horizontal_flip",
]

#: the demo network's input side: the seed's resize/centre-crop logic at 32 instead of 224
DEMO_CROP_SIZE = 32


def input_geometry(model_name: str) -> dict:
    """Resize, crop size and normalisation of ``model_name``'s inputs: the ImageNet networks 224/224 with
    ImageNet mean/std (seed A.3), ``demo`` 32/32 in [0, 1] without normalisation (its digit weights')."""
    if model_name not in MODEL_NAMES:
        raise ValueError(f"unknown model name {model_name!r}; known: {', '.join(MODEL_NAMES)}")
    if model_name == "demo":
        return {"resize": DEMO_CROP_SIZE, "crop_size": DEMO_CROP_SIZE, "mean": None, "std": None}
    return {"resize": PAPER_RESIZE, "crop_size": PAPER_CROP_SIZE, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}


class MultiLabelDataset(Dataset):
    """(image (3, crop_size, crop_size) float32, multi-hot label (classes,) float32) for each annotated image.

    The labels of all images are derived once, at construction (``labels``, (N, classes)). Unreadable image
    files raise ValueError naming the file: the annotation reader already checked that they exist.
    """

    def __init__(self, annotations: AnnotationSet, *, resize: int = PAPER_RESIZE,
                 crop_size: int = PAPER_CROP_SIZE, mean=None, std=None,
                 min_fraction: float = PAPER_MIN_FRACTION):
        from torchvision import transforms

        if not isinstance(annotations, AnnotationSet):
            raise ValueError(f"annotations must be an AnnotationSet, got {type(annotations).__name__}")
        if (mean is None) != (std is None):
            raise ValueError(f"mean and std must both be given or both be None, got {mean!r} and {std!r}")
        self.annotations = annotations
        self.labels = torch.from_numpy(
            _stack([crop_labels(image.boxes, image.size, num_classes=annotations.num_classes,
                                crop_size=crop_size, resize=resize, min_fraction=min_fraction)
                    for image in annotations.images], annotations.num_classes))
        steps = [transforms.Resize(resize), transforms.CenterCrop(crop_size), transforms.ToTensor()]
        if mean is not None:
            steps.append(transforms.Normalize(mean, std))
        self.transform = transforms.Compose(steps)

    def __len__(self) -> int:
        return len(self.annotations.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image, UnidentifiedImageError

        image = self.annotations.images[index]
        try:
            with Image.open(image.path) as opened:
                if opened.size != image.size:
                    raise ValueError(f"image {image.path} is {opened.size[0]}x{opened.size[1]}, the "
                                     f"annotations say {image.width}x{image.height}")
                tensor = self.transform(opened.convert("RGB"))
        except (OSError, UnidentifiedImageError) as error:
            raise ValueError(f"could not read image {image.path}: {error}") from error
        return tensor, self.labels[index]


def _stack(rows, num_classes: int):
    import numpy as np

    return np.stack(rows) if rows else np.zeros((0, num_classes), dtype=np.float32)


def random_horizontal_flip(images: torch.Tensor, *, rng: torch.Generator, probability: float = 0.5):
    """``RandomHorizontalFlip`` of a batch (N, C, H, W): each image mirrored left-right with ``probability``,
    drawn from ``rng`` (a CPU ``torch.Generator``). Returns a new tensor."""
    flip = torch.rand(images.shape[0], generator=rng) < probability
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(-1), images)


def multilabel_image_set(annotations: AnnotationSet, model_name: str, n: int | None = None):
    """The first ``n`` images of ``annotations`` (all when None), preprocessed for ``model_name`` as in
    fine-tuning but without the flip, as an ``empirical.storage.data.ImageSet`` for the faithfulness and
    randomisation experiments. Its ``labels`` are None: the experiments then explain each image's highest
    predicted label (seed A.3), not a ground-truth label; the crop labels stay in ``MultiLabelDataset``.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    dataset = MultiLabelDataset(annotations, **input_geometry(model_name))
    count = len(dataset) if n is None else min(n, len(dataset))
    if count == 0:
        raise ValueError(f"annotations from {annotations.source} hold no images")
    images = torch.stack([dataset[k][0] for k in range(count)])
    names = tuple(image.path.name for image in annotations.images[:count])
    return ImageSet(images, None, names, source=annotations.source)
