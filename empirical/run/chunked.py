"""The chunked driver: runs an experiment's kernel (``empirical.experiments``: one batch of tensors in, that
batch's table rows out, no file read or written) over a run's images, one resumable chunk at a time.

A chunk is one batch of images (and, for the experiments that explain, one method). It is keyed by what it
was computed from: :func:`input_fingerprints` gives each batch the fingerprint
(``empirical.storage.fingerprints``) of its image content, its labels, the network's weights and the
experiment's settings, and :func:`method_fingerprint` adds the method and its options
(``empirical.experiments._common.method_spec``). A finished chunk is reused only under the same fingerprint
(``ChunkStore.has(key, fingerprint)``) and collected only with it; with a ``Shard`` each rank computes its
share of the pending chunks and waits for the others before collecting. The estimated time of the pending
chunks is printed as a line before the progress bar is drawn (``empirical.storage.progress``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import pandas as pd

from empirical.experiments._common import method_spec
from empirical.storage.distributed import Shard
from empirical.storage.fingerprints import fingerprint, labels_digest, weights_digest
from empirical.storage.progress import progress_bar

__all__ = ["Chunk", "chunk_key", "collect_chunks", "compute_chunks", "input_fingerprints",
           "method_fingerprint", "pending_chunks", "run_chunked"]

#: changes when what goes into a chunk's fingerprint changes, so that no older chunk is reused
_FINGERPRINT_VERSION = 2


def chunk_key(*parts: str, start: int, stop: int) -> str:
    """The name of the chunk of images ``start:stop`` of one (model, method, ...) combination."""
    raw = "__".join([*parts, f"{start:07d}-{stop:07d}"])
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def input_fingerprints(stream, ranges, *, model, settings) -> dict[int, str]:
    """{start: fingerprint} for each ``(start, stop)`` of ``ranges``: of images ``start``..``stop - 1`` of
    ``stream`` (their content, ``stream.content_digest``) and their labels, the weights of ``model``
    (``weights_digest``: the tensors, not where they were read from) and ``settings`` (a mapping of the
    experiment's options, seed, batch size...)."""
    weights = weights_digest(model)
    labels = stream.labels
    return {start: fingerprint(version=_FINGERPRINT_VERSION, settings=settings, weights=weights,
                               images=stream.content_digest(start, stop),
                               labels=labels_digest(None if labels is None else labels[start:stop]))
            for start, stop in ranges}


def method_fingerprint(inputs: str, name: str, method) -> str:
    """The fingerprint (64 hex digits) of a chunk of method ``name`` on the inputs of fingerprint ``inputs``:
    ``method`` is a resolved method, a ``NamedMethod`` known by its name, options and the function
    registered under that name (``empirical.attribution.method_definition``), a callable by its code
    (``empirical.storage.fingerprints.callable_description``)."""
    return fingerprint(version=_FINGERPRINT_VERSION, inputs=inputs, name=name, method=method_spec(method))


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One chunk: its key in the store, its images ``start:stop``, its fingerprint, and ``part``: what else
    tells it from the other chunks of the same batch (the method's name), None where nothing does."""

    key: str
    start: int
    stop: int
    fingerprint: str
    part: str | None = None


def pending_chunks(chunks: Sequence[Chunk], store, shard=None) -> list[Chunk]:
    """The chunks of ``chunks`` that ``store`` holds under no current fingerprint, and of those this rank's
    share (``shard``: ``empirical.storage.distributed.Shard``; None: one process)."""
    return (shard or Shard()).assign([chunk for chunk in chunks
                                      if not store.has(chunk.key, chunk.fingerprint)])


def compute_chunks(pending: Sequence[Chunk], stream, compute: Callable, *, store, shard=None, batch_size: int,
                   device="cpu", progress: bool = True, description: str, unit: str = "chunk",
                   units_per_chunk: int = 1) -> None:
    """Compute and write every chunk of ``pending``: ``compute(images, labels, chunk, advance)`` returns
    the chunk's table from its images (on ``device``) and labels (None where the stream has none);
    ``advance(n)`` moves the bar on by ``n`` units. One decoded batch of ``stream`` serves every chunk of
    that batch; the chunks do not depend on this order. The bar counts ``units_per_chunk`` units a chunk:
    with 1 the driver advances it after each chunk, with more the kernel does (``advance``)."""
    shard = shard or Shard()
    by_batch: dict[int, list[Chunk]] = {}
    for chunk in pending:
        by_batch.setdefault(chunk.start, []).append(chunk)
    with progress_bar(len(pending) * units_per_chunk, enabled=progress, description=description,
                      unit=unit) as bar:
        advance = bar.update if units_per_chunk > 1 else (lambda n=1: None)
        for batch in stream.batches(batch_size, list(by_batch), device=device):
            for chunk in by_batch[batch.start]:
                count = chunk.stop - chunk.start
                images = batch.images if count == len(batch.images) else batch.images[:count]
                labels = batch.labels if batch.labels is None or count == len(batch.labels) \
                    else batch.labels[:count]
                table = compute(images, labels, chunk, advance)
                store.write(chunk.key, table, chunk.fingerprint)
                shard.chunk_written()
                if units_per_chunk == 1:
                    bar.update(1)


def collect_chunks(store, columns, chunks: Sequence[Chunk]) -> pd.DataFrame:
    """The rows of ``chunks`` in ``store`` (only under their fingerprints), columns ``columns``."""
    return store.collect(columns=list(columns),
                         fingerprints={chunk.key: chunk.fingerprint for chunk in chunks})


def run_chunked(chunks: Sequence[Chunk], stream, prepare: Callable[[], Callable], *, store, shard=None,
                columns, batch_size: int, device="cpu", progress: bool = True, description: str,
                unit: str = "chunk", units_per_chunk: int = 1) -> pd.DataFrame:
    """The whole loop: the pending chunks (this rank's share), ``prepare()`` (called once, only where a
    chunk is pending; returns the ``compute`` of :func:`compute_chunks`), every pending chunk computed and
    written, a barrier with the other ranks, then the rows of ``chunks`` collected from ``store``."""
    shard = shard or Shard()
    pending = pending_chunks(chunks, store, shard)
    if pending:
        compute = prepare()
        compute_chunks(pending, stream, compute, store=store, shard=shard, batch_size=batch_size,
                       device=device, progress=progress, description=description, unit=unit,
                       units_per_chunk=units_per_chunk)
    shard.barrier()
    return collect_chunks(store, columns, chunks)
