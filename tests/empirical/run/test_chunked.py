"""The chunked driver: chunk names, and the has/compute/write/barrier/collect loop around any kernel.

Oracles: chunk names written out here; a kernel that records its calls (a finished chunk is never computed
again, a chunk under another fingerprint is), and the rows it returned, which the collected table must hold.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import torch

from empirical.run.chunked import Chunk, chunk_key, run_chunked
from empirical.storage.chunks import ChunkStore
from empirical.storage.streaming import as_stream


def test_chunk_keys_are_file_names_in_image_order():
    key = chunk_key("demo", "top-down", "lrp/eps", start=0, stop=32)
    assert key == "demo__top-down__lrp_eps__0000000-0000032"
    keys = [chunk_key("m", "g", start=s, stop=s + 10) for s in (100, 20, 0)]
    assert sorted(keys) == keys[::-1]


def test_the_driver_computes_only_pending_chunks_and_collects_the_kernels_rows(tmp_path):
    images = torch.arange(5 * 3 * 2 * 2, dtype=torch.float32).reshape(5, 3, 2, 2)
    stream = as_stream(images)
    calls = []

    def kernel(x, labels, chunk, advance):  # one row an image: its first pixel
        calls.append((chunk.part, chunk.start, len(x)))
        return pd.DataFrame({"part": chunk.part, "image": range(chunk.start, chunk.stop),
                             "value": x[:, 0, 0, 0].double().numpy()})

    def chunks(version):
        return [Chunk(chunk_key(part, start=start, stop=min(start + 2, 5)), start, min(start + 2, 5),
                      hashlib.sha256(f"{part}{start}{version}".encode()).hexdigest(), part)
                for part in ("a", "b") for start in (0, 2, 4)]

    store = ChunkStore(tmp_path, "demo")
    options = dict(store=store, columns=("part", "image", "value"), batch_size=2, progress=False,
                   description="demo")
    table = run_chunked(chunks(1), stream, lambda: kernel, **options)
    assert calls == [("a", 0, 2), ("b", 0, 2), ("a", 2, 2), ("b", 2, 2), ("a", 4, 1), ("b", 4, 1)]
    assert table["value"].tolist() == [images[i, 0, 0, 0].item() for i in range(5)] * 2
    calls.clear()
    prepared = []
    again = run_chunked(chunks(1), stream, lambda: prepared.append(1) or kernel, **options)
    assert calls == [] and prepared == [] and again.equals(table)  # nothing pending: not even prepared
    changed = [*chunks(1)[:5], chunks(2)[5]]  # one chunk under another fingerprint
    run_chunked(changed, stream, lambda: kernel, **options)
    assert calls == [("b", 4, 1)]
