"""Image streams: the images of a run delivered batch by batch, never all at once.

An experiment asks a stream for the batches it still has to compute, ``stream.batches(batch_size, starts,
device=...)``, and gets :class:`Batch` objects (first image index, images on the device, labels). Memory is
bounded by a few batches whatever the number of images:

- :class:`FolderStream` (``imagenet``): a cheap-enough pre-scan (:func:`scan_image_folder`) decodes the files
  in sorted order with ``DataLoader`` worker processes, only to learn which of them are readable, until ``n``
  are; the readable ones are the run's images 0..n-1 and the unreadable ones before them are listed as
  skipped, exactly as :func:`empirical.storage.data.load_image_folder` does. The batches are then decoded and
  preprocessed again, on demand, by a ``DataLoader`` with ``workers`` processes (one image an item, so
  that the workers share one batch and only ``2 * workers`` images are in flight), stacked in pinned memory
  when the device is CUDA and copied with ``non_blocking=True``.
- :class:`TensorStream` (``demo``'s held-out digits, a caller's tensor): slices of a tensor in memory.
- :class:`RandomStream` (``bench``): standard-normal batches drawn in order from one seeded generator; the
  values equal those of one ``torch.randn(n, 3, s, s)`` draw, batch by batch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from empirical.rng import torch_generator
from empirical.storage.fingerprints import fingerprint, tensor_digest

__all__ = ["Batch", "FolderStream", "ImageStream", "RandomStream", "TensorStream", "as_stream",
           "default_workers", "scan_image_folder"]


def default_workers() -> int:
    """Decoding processes by default: one fewer than the CPUs this process may use, at most 8 (0: decode in
    the main process)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(8, cpus - 1))


def check_workers(workers) -> int:
    """``workers`` as an int >= 0 (None: :func:`default_workers`); ValueError naming ``--workers`` else."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"--workers must be an integer >= 0 (0: decode in the main process), "
                         f"got {workers!r}")
    return workers


@dataclass(frozen=True)
class Batch:
    """Images ``start``..``stop - 1`` of a stream: ``images`` (B, 3, H, W) float32 on the device asked for,
    ``labels`` (B,) int64 on the same device or None."""

    start: int
    stop: int
    images: torch.Tensor
    labels: torch.Tensor | None


@dataclass(frozen=True)
class ImageStream:
    """The images of a run, ``count`` of them, delivered in batches; subclasses say where they come from."""

    count: int
    labels: torch.Tensor | None
    names: tuple[str, ...]
    source: str
    skipped: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return self.count

    def describe(self) -> dict:
        """The manifest's ``dataset`` entry: source, images used, files skipped (count and names)."""
        return {"source": self.source, "images": self.count, "labels": self.labels is not None,
                "first": self.names[0] if self.names else None,
                "last": self.names[-1] if self.names else None,
                "skipped": len(self.skipped), "skipped_files": list(self.skipped)}

    def batches(self, batch_size: int, starts: Sequence[int] | None = None, *,
                device="cpu") -> Iterator[Batch]:
        """The batches beginning at ``starts`` (default: every ``batch_size``-th image), in that order, each
        holding images ``start``..``min(start + batch_size, count) - 1``, on ``device``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        starts = list(range(0, self.count, batch_size)) if starts is None else [int(s) for s in starts]
        bad = [s for s in starts if not 0 <= s < self.count]
        if bad:
            raise ValueError(f"batch starts must lie in 0..{self.count - 1}, got {bad[0]}")
        ranges = [(s, min(s + batch_size, self.count)) for s in starts]
        for (start, stop), images in zip(ranges, self._images(ranges, pinned=_is_cuda(device)), strict=True):
            labels = None if self.labels is None else self.labels[start:stop].to(device, non_blocking=True)
            yield Batch(start, stop, images.to(device, non_blocking=True), labels)

    def first(self, n: int, *, device="cpu") -> torch.Tensor:
        """Images 0..n-1 (n <= count) as one tensor on ``device``."""
        return next(self.batches(n, [0], device=device)).images

    def content_digest(self, start: int = 0, stop: int | None = None) -> str:
        """The sha256 (64 hex digits) of the content of images ``start``..``stop - 1`` (default: all): equal
        for equal images, different when one pixel differs. Labels are not part of it. This generic version
        decodes the images; the streams below hash their source instead (file bytes, tensor bytes, seed)."""
        start, stop = self._range(start, stop)
        hasher = hashlib.sha256(type(self).__qualname__.encode())
        for batch in self.batches(min(64, stop - start), list(range(start, stop, 64))):
            hasher.update(tensor_digest(batch.images[:stop - batch.start]).encode())
        return hasher.hexdigest()

    def _range(self, start, stop) -> tuple[int, int]:
        stop = self.count if stop is None else stop
        for name, value in (("start", start), ("stop", stop)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not 0 <= start < stop <= self.count:
            raise ValueError(f"start and stop must satisfy 0 <= start < stop <= {self.count}, got "
                             f"{start} and {stop}")
        return start, stop

    def _images(self, ranges, *, pinned: bool) -> Iterator[torch.Tensor]:
        raise NotImplementedError


def _is_cuda(device) -> bool:
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


@dataclass(frozen=True)
class TensorStream(ImageStream):
    """Slices of ``tensor`` (N, 3, H, W), which is already in memory."""

    tensor: torch.Tensor = None

    def content_digest(self, start: int = 0, stop: int | None = None) -> str:
        """The sha256 (64 hex digits) of the bytes, dtype and shape of ``tensor[start:stop]``."""
        start, stop = self._range(start, stop)
        return fingerprint(stream="tensor", images=tensor_digest(self.tensor[start:stop]))

    def _images(self, ranges, *, pinned: bool) -> Iterator[torch.Tensor]:
        for start, stop in ranges:
            images = self.tensor[start:stop]
            yield images.pin_memory() if pinned else images


@dataclass(frozen=True)
class RandomStream(ImageStream):
    """Standard-normal images (3, ``size``, ``size``) drawn batch by batch, in order, from ``seed``."""

    size: int = 224
    seed: int = 0

    def content_digest(self, start: int = 0, stop: int | None = None) -> str:
        """The sha256 (64 hex digits) of what images ``start``..``stop - 1`` are drawn from: the seed, the
        image size and the range (the values follow from these)."""
        start, stop = self._range(start, stop)
        return fingerprint(stream="random normal", seed=self.seed, size=self.size, start=start, stop=stop)

    def _images(self, ranges, *, pinned: bool) -> Iterator[torch.Tensor]:
        generator = torch_generator(self.seed)
        drawn = 0  # images drawn so far: skipped batches are drawn and dropped, so every value is the same
        for start, stop in ranges:
            if start < drawn:
                generator, drawn = torch_generator(self.seed), 0
            if start > drawn:
                for first in range(drawn, start, 64):  # bounded memory while skipping
                    torch.randn(min(64, start - first), 3, self.size, self.size, generator=generator)
            images = torch.randn(stop - start, 3, self.size, self.size, generator=generator,
                                 pin_memory=pinned)
            drawn = stop
            yield images


class _Decoded(torch.utils.data.Dataset):
    """Item k: file k read and preprocessed (a (3, H, W) tensor), or None where it cannot be read;
    with ``check_only``, whether it can be read (a bool), so that no image is kept."""

    def __init__(self, files, transform, *, check_only: bool = False):
        self.files, self.transform, self.check_only = list(files), transform, check_only

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index):
        from empirical.storage.data import _read

        image = _read(self.files[index], self.transform)
        return image is not None if self.check_only else image


def _loader(dataset, indices, workers: int):
    # one image an item: the workers share each batch, and at most 2 * workers images wait in memory
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=list(indices), num_workers=workers,
                                       prefetch_factor=2 if workers else None, collate_fn=_identity)


def _identity(item):
    return item


@dataclass(frozen=True)
class FolderStream(ImageStream):
    """The readable images ``files`` of a folder, decoded and preprocessed by ``transform`` when asked for."""

    files: tuple[Path, ...] = ()
    transform: object = None
    workers: int = 0

    def content_digest(self, start: int = 0, stop: int | None = None) -> str:
        """The sha256 (64 hex digits) of the bytes of files ``start``..``stop - 1`` and the description of
        ``transform`` (the preprocessing); a file changed in place changes it, its name or folder does not."""
        start, stop = self._range(start, stop)
        hasher = hashlib.sha256(fingerprint(stream="files", transform=self.transform).encode())
        for path in self.files[start:stop]:
            hasher.update(hashlib.sha256(Path(path).read_bytes()).digest())
        return hasher.hexdigest()

    def _images(self, ranges, *, pinned: bool) -> Iterator[torch.Tensor]:
        indices = [k for start, stop in ranges for k in range(start, stop)]
        items = iter(_loader(_Decoded(self.files, self.transform), indices, self.workers))
        for start, stop in ranges:
            images = [next(items) for _ in range(start, stop)]
            for index, image in zip(range(start, stop), images, strict=True):
                if image is None:
                    raise OSError(f"image file {self.files[index]} was readable when the run started and is "
                                  "not now; was the folder changed during the run?")
            first = images[0].float()
            if first.ndim != 3 or first.shape[0] != 3:
                raise ValueError(f"the transform must give (3, H, W) tensors, got {tuple(first.shape)}")
            batch = torch.empty((len(images), *first.shape), dtype=torch.float32, pin_memory=pinned)
            torch.stack([image.float() for image in images], out=batch)
            yield batch


def scan_image_folder(root, n: int | None = None, *, labels_file=None, transform=None,
                      workers: int | None = None) -> FolderStream:
    """The stream of the first ``n`` readable images of an ImageNet-style validation folder, in the order
    and with the labels and skipped files of :func:`empirical.storage.data.load_image_folder`, which documents
    the layouts; the files are read once here (with ``workers`` processes) to find the readable ones, then
    again batch by batch when the stream is consumed. Nothing but the file list is kept."""
    from empirical.storage import data

    n = data._check_count(n)
    workers = check_workers(workers)
    root, files, labels = data.list_image_folder(root, labels_file)
    if transform is None:
        from empirical.models import imagenet_transform

        transform = imagenet_transform()
    wanted = len(files) if n is None else n
    kept, skipped = [], []
    # in sorted order, stopping as soon as `wanted` are readable: "first n" never depends on worker timing
    for index, readable in enumerate(_loader(_Decoded(files, transform, check_only=True),
                                             range(len(files)), workers)):
        if readable:
            kept.append(index)
        else:
            skipped.append(str(files[index].relative_to(root)))
        if len(kept) == wanted:
            break
    if not kept:
        raise ValueError(f"none of the {len(skipped)} image files tried in {root} could be read")
    label_tensor = None if labels is None else torch.tensor([labels[k] for k in kept], dtype=torch.int64)
    return FolderStream(count=len(kept), labels=label_tensor,
                        names=tuple(str(files[k].relative_to(root)) for k in kept),
                        source=str(root.resolve()), skipped=tuple(skipped),
                        files=tuple(files[k] for k in kept), transform=transform, workers=workers)


def as_stream(images, labels=None) -> ImageStream:
    """``images`` itself when it is a stream (``labels`` must then be None: the stream has its own), else
    a :class:`TensorStream` over the tensor (N, 3, H, W) and ``labels`` (N,) or None."""
    if isinstance(images, ImageStream):
        if labels is not None:
            raise ValueError("labels must be None when images is a stream: the stream carries its labels")
        return images
    names = tuple(f"image-{k:06d}" for k in range(len(images)))
    return TensorStream(count=len(images), labels=labels, names=names, source="tensor", tensor=images)
