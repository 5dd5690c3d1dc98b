"""The activation-statistics experiment over a data set (seed sections I and J).

``run_activations`` feeds image batches through ``empirical.measures.activations`` and keeps, per batch, the
means of the per-image statistics of every level (the input of every convolution and linear layer, pooled over
space and channels) as a resumable chunk. From all batches it forms the ``activations.csv`` rows of
docs/results-format.md: the 18 quantiles and the non-positive fraction averaged over images, then K, gamma
and P_gamma(Z >= K) for every (q_high, q_low) pair via ``theory.overtake_from_quantiles``. It also saves a
subsample of the first image's pooled activations per level in ``activation_samples.npz``.
"""

from __future__ import annotations

import copy
import io
import itertools

import numpy as np
import pandas as pd
import torch

import theory
from empirical._checks import positive_int
from empirical.experiments._common import chunk_key, input_fingerprints, progress_bar
from empirical.measures.activations import activation_samples, activation_statistics
from empirical.storage.chunks import ChunkStore, atomic_write_bytes
from empirical.storage.distributed import Shard
from empirical.storage.fingerprints import fingerprint
from empirical.storage.streaming import ImageStream, as_stream
from empirical.storage.tables import ACTIVATION_COLUMNS

__all__ = ["SAMPLES_FILE", "SAMPLE_SIZE", "run_activations"]

SAMPLE_SIZE = 4096
SAMPLES_FILE = "activation_samples.npz"
# a batch chunk: the batch means of the quantiles and non-positive fraction, and the batch's image count
_PARTIAL_COLUMNS = ("model", "level", "layer", "statistic", "q", "images", "value")


def run_activations(model, images: torch.Tensor, labels=None, *, model_name: str, store, methods=None,
                    batch_size: int, seed: int, device="cpu", progress: bool = True,
                    sample_size: int = SAMPLE_SIZE, shard=None) -> pd.DataFrame:
    """Per-level activation statistics of ``model`` over ``images`` (seed I, J); the ``activations.csv``
    rows of ``model_name``.

    One chunk of batch means (with the batch size) for each batch of ``batch_size`` images (under the
    experiment ``<store.experiment>_batches``), then the averaged table as a chunk of ``store``; a chunk,
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
    keys = {start: _batch_key(model_name, start, batch_size, images)
            for start in range(0, len(images), batch_size)}
    # a chunk is reused only when computed from the same images, weights and settings
    settings = {"experiment": "activations", "model_name": model_name, "batch_size": batch_size,
                "device": torch.device(device).type}
    inputs = input_fingerprints(images, [(start, min(start + batch_size, len(images))) for start in keys],
                                model=model, settings=settings)
    expected = {keys[start]: inputs[start] for start in keys}
    # the final table: of every batch; the samples: of the first batch, ``sample_size`` and ``seed``
    final = {_final_key(model_name): fingerprint(batches=[inputs[start] for start in sorted(keys)],
                                                 images=len(images))}
    samples_key = _samples_key(model_name)
    samples_fingerprint = fingerprint(batch=inputs[0], sample_size=sample_size, seed=int(seed))
    pending = shard.assign([start for start, key in keys.items() if not partial.has(key, expected[key])])
    if pending:
        network = _prepared(model, device)
        batches = iter(images.batches(batch_size, pending, device=device))

        def one(batch):
            key = keys[batch.start]
            partial.write(key, _batch_table(network, batch.images, model_name), expected[key])
            shard.chunk_written()

        # the first batch is timed and kept (its chunk written): the bar prints the estimate as a line
        # from it, before the bar is drawn
        with progress_bar(len(pending), enabled=progress, description=f"activations {model_name}",
                          unit="batch") as bar:
            for batch in batches:
                one(batch)
                bar.update(1)
    shard.barrier()
    if shard.is_main:
        (final_key, final_fingerprint), = final.items()
        if not store.has(final_key, final_fingerprint):
            totals = partial.collect(columns=list(_PARTIAL_COLUMNS), fingerprints=expected)
            totals = totals[totals["model"] == model_name]
            store.write(final_key, _averaged_table(totals, len(images), model_name), final_fingerprint)
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


def _batch_table(network, x, model_name) -> pd.DataFrame:
    """The quantile and non-positive-fraction rows of one batch (means over its images), with its size."""
    table = activation_statistics(network, x)
    table = table[table["statistic"].isin(["quantile", "nonpositive_fraction"])]
    return pd.DataFrame({"model": model_name, "level": table["level"].to_numpy(),
                         "layer": table["layer"].to_numpy(), "statistic": table["statistic"].to_numpy(),
                         "q": table["q"].to_numpy(), "images": len(x), "value": table["value"].to_numpy()},
                        columns=list(_PARTIAL_COLUMNS))


def _batch_key(model_name, start, batch_size, images) -> str:
    return chunk_key(model_name, start=start, stop=min(start + batch_size, len(images)))


def _final_key(model_name) -> str:
    return f"{model_name}__all"


def _samples_key(model_name) -> str:
    return f"{model_name}__samples"


def _averaged_table(totals: pd.DataFrame, count: int, model_name: str) -> pd.DataFrame:
    """Image-weighted means over the batch chunks, then K, gamma and P for every (q_high, q_low) of
    ``theory.HIGH_QUANTILES`` x ``theory.LOW_QUANTILES`` at each level (seed section I)."""
    totals = totals.assign(weighted=totals["value"] * totals["images"])
    grouped = totals.groupby(["level", "layer", "statistic", "q"], dropna=False, sort=True)
    summed = grouped.agg(images=("images", "sum"), weighted=("weighted", "sum")).reset_index()
    if not (summed["images"] == count).all():
        raise ValueError(f"activation chunks of {model_name!r} cover {sorted(set(summed['images']))} images, "
                         f"expected {count}: the folder mixes runs with other images; use a fresh --out")
    summed["value"] = summed["weighted"] / summed["images"]
    summed["q_high"] = summed["q_low"] = np.nan
    frames = [summed[list(ACTIVATION_COLUMNS[1:])]]
    pairs = list(itertools.product(theory.HIGH_QUANTILES, theory.LOW_QUANTILES))
    q_high = np.array([high for high, _ in pairs])
    q_low = np.array([low for _, low in pairs])
    quantiles = summed[summed["statistic"] == "quantile"]
    for (level, layer), rows in quantiles.groupby(["level", "layer"], sort=True):
        by_q = dict(zip(np.round(rows["q"].to_numpy(), 2), rows["value"].to_numpy(), strict=True))
        k, gamma, p = theory.overtake_from_quantiles(q_low, [by_q[round(q, 2)] for q in q_low],
                                                     q_high, [by_q[round(q, 2)] for q in q_high])
        for statistic, values in (("K", k), ("gamma", gamma), ("P", p)):
            frames.append(pd.DataFrame({"level": level, "layer": layer, "statistic": statistic, "q": np.nan,
                                        "q_high": q_high, "q_low": q_low,
                                        "value": np.broadcast_to(np.asarray(values, float), q_high.shape)}))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "model", model_name)
    return table[list(ACTIVATION_COLUMNS)]


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
