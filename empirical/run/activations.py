"""The activation-statistics experiment (seed sections I and J) run chunk by chunk: the kernel
``empirical.experiments.activations.activations_batch`` for every batch, resumably
(``empirical.run.chunked``), the averaged table (``averaged_table``) as a chunk of its own, and a subsample
of the first image's pooled activations per level in ``activation_samples.npz``."""

from __future__ import annotations

import copy
import io

import numpy as np
import pandas as pd
import torch

from empirical._checks import positive_int
from empirical.experiments.activations import BATCH_FIELDS, SAMPLE_SIZE, activations_batch, averaged_table
from empirical.measures.activations import activation_samples
from empirical.run.chunked import Chunk, chunk_key, compute_chunks, input_fingerprints, pending_chunks
from empirical.storage.chunks import ChunkStore, atomic_write_bytes
from empirical.storage.distributed import Shard
from empirical.storage.fingerprints import fingerprint
from empirical.storage.streaming import ImageStream, as_stream
from empirical.storage.tables import ACTIVATION_COLUMNS

__all__ = ["SAMPLES_FILE", "run_activations"]

SAMPLES_FILE = "activation_samples.npz"


def run_activations(model, images: torch.Tensor, labels=None, *, model_name: str, store, methods=None,
                    batch_size: int, seed: int, device="cpu", progress: bool = True,
                    sample_size: int = SAMPLE_SIZE, shard=None) -> pd.DataFrame:
    """Per-level activation statistics of ``model`` over ``images`` (seed I, J); the ``activations.csv``
    rows of ``model_name``.

    One chunk of batch means (with the batch size; the kernel
    ``empirical.experiments.activations.activations_batch``) for each batch of ``batch_size`` images (under
    the experiment ``<store.experiment>_batches``), then the averaged table as a chunk of ``store``; a chunk,
    and the samples, are reused only when computed from the same inputs (images, weights and settings:
    their fingerprint), else computed again.
    ``labels`` and ``methods`` are accepted for the common experiment signature and not used: the statistics
    are of the forward pass only. ``sample_size`` pooled values of the first image per level, drawn with
    ``seed``, go to ``activation_samples.npz`` beside the tables under ``"<model>/<level>"``.
    ``images`` may also be an ``empirical.storage.streaming.ImageStream``, decoded batch by batch. With
    ``shard`` (``empirical.storage.distributed.Shard``) each rank computes its share of the batch chunks;
    after a barrier rank 0 alone averages them (image-weighted, in sorted order: the same numbers whatever the
    split) and draws the samples, then every rank collects.

    The estimated time is printed as a line before the progress bar is drawn: from the first pending batch,
    timed, whose result is kept as its chunk like any other (no calibration pass, no work wasted); memory is
    bounded by one batch (with ``ImageStream`` input the images are decoded batch by batch).
    """
    if not isinstance(images, ImageStream):
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            raise ValueError(f"images must be a float tensor (N, C, H, W), got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        if len(images) == 0:
            raise ValueError("images must hold at least one image, got 0")
        images = as_stream(images)
    shard = shard or Shard()
    positive_int(batch_size, "batch_size")
    positive_int(sample_size, "sample_size")
    partial = ChunkStore(store.out_dir, f"{store.experiment}_batches")
    network = None
    ranges = [(start, min(start + batch_size, len(images))) for start in range(0, len(images), batch_size)]
    # a chunk is reused only when computed from the same images, weights and settings
    settings = {"experiment": "activations", "model_name": model_name, "batch_size": batch_size,
                "device": torch.device(device).type}
    inputs = input_fingerprints(images, ranges, model=model, settings=settings)
    chunks = [Chunk(chunk_key(model_name, start=start, stop=stop), start, stop, inputs[start])
              for start, stop in ranges]
    # the final table: of every batch; the samples: of the first batch, ``sample_size`` and ``seed``
    final = {_final_key(model_name): fingerprint(batches=[inputs[start] for start, _ in sorted(ranges)],
                                                 images=len(images))}
    samples_key = _samples_key(model_name)
    samples_fingerprint = fingerprint(batch=inputs[0], sample_size=sample_size, seed=int(seed))
    pending = pending_chunks(chunks, partial, shard)
    if pending:
        network = _prepared(model, device)
        # the first batch is timed and kept (its chunk written): the bar prints the estimate as a line
        # from it, before the bar is drawn
        compute_chunks(pending, images, lambda x, labels, chunk, advance: activations_batch(
            network, x, model_name=model_name), store=partial, shard=shard, batch_size=batch_size,
            device=device, progress=progress, description=f"activations {model_name}", unit="batch")
    shard.barrier()
    if shard.is_main:
        (final_key, final_fingerprint), = final.items()
        if not store.has(final_key, final_fingerprint):
            totals = partial.collect(columns=list(BATCH_FIELDS),
                                     fingerprints={chunk.key: chunk.fingerprint for chunk in chunks})
            totals = totals[totals["model"] == model_name]
            store.write(final_key, averaged_table(totals, len(images), model_name), final_fingerprint)
        samples_path = store.artifact_path(SAMPLES_FILE)
        # the samples are saved before the record that vouches for them (a chunk of the samples' fingerprint,
        # out of every table): a current record means current samples, anything else draws them again
        if not (partial.has(samples_key, samples_fingerprint) and _has_samples(samples_path, model_name)):
            network = network if network is not None else _prepared(model, device)
            samples = activation_samples(network, images.first(1, device=device), max_values=sample_size,
                                         rng=int(seed))
            _save_samples(samples_path, model_name, samples)
            partial.write(samples_key, pd.DataFrame({"model": [model_name], "file": [SAMPLES_FILE],
                                                     "values": [sample_size]}), samples_fingerprint)
    shard.barrier()
    collected = store.collect(columns=list(ACTIVATION_COLUMNS), fingerprints=final)
    return collected[collected["model"] == model_name].reset_index(drop=True)


def _prepared(model, device):
    # a copy in eval mode on the device: the caller's model keeps its mode and place
    return copy.deepcopy(model).to(device).eval()


def _final_key(model_name) -> str:
    return f"{model_name}__all"


def _samples_key(model_name) -> str:
    return f"{model_name}__samples"


def _has_samples(path, model_name) -> bool:
    if not path.is_file():
        return False
    with np.load(path) as archive:
        return any(key.startswith(f"{model_name}/") for key in archive.files)


def _save_samples(path, model_name, samples) -> None:
    """Add ``model_name``'s samples to the archive (other models' entries kept); atomic replace."""
    entries = {}
    if path.is_file():
        with np.load(path) as archive:
            entries = {key: archive[key] for key in archive.files if not key.startswith(f"{model_name}/")}
    entries.update({f"{model_name}/{level}": np.asarray(values) for level, values in samples.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    atomic_write_bytes(path, buffer.getvalue())  # mode 0666 less the umask, as open() gives
