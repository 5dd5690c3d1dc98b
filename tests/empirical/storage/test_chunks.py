"""ChunkStore: atomic chunks, order-independent collection, byte-identical resumed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical.storage.chunks import ChunkStore, write_table
from empirical.storage.manifest import write_manifest

COLUMNS = ["model", "method", "image", "step", "value"]


def chunk(model: str, image: int, values) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "method": "gradient", "image": image,
                         "step": np.arange(len(values)), "value": values})


def test_write_has_collect_roundtrip_keeps_floats_exactly(tmp_path):
    store = ChunkStore(tmp_path, "faithfulness")
    values = np.random.default_rng(0).random(5) / 3
    assert not store.has("a.000000")
    path = store.write("a.000000", chunk("a", 0, values))
    assert path == tmp_path / "chunks" / "faithfulness" / "a.000000.csv"
    assert store.has("a.000000") and store.keys() == ["a.000000"]
    table = store.collect(COLUMNS)
    np.testing.assert_array_equal(table["value"].to_numpy(), values)  # repr round-trip, not rounded
    assert list(table.columns) == COLUMNS


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(6)), st.integers(1, 6))
def test_collect_bytes_do_not_depend_on_write_order_or_split(order, split):
    """Oracle: one table written as a single chunk versus the same rows split and written in any order."""
    import tempfile
    from pathlib import Path

    rows = pd.concat([chunk(m, i, [0.1 * i, 1 / (i + 1), np.nan if i == 3 else 2.0])
                      for i, m in enumerate("bbaacc")], ignore_index=True)
    with tempfile.TemporaryDirectory() as folder:
        whole, pieces = ChunkStore(Path(folder) / "w", "x"), ChunkStore(Path(folder) / "p", "x")
        whole.write("all", rows)
        groups = [rows[rows.image.isin([i for i in order if i % split == r])] for r in range(split)]
        for r, group in enumerate(groups):
            pieces.write(f"part{r:02d}", group)
        expected = whole.collect(COLUMNS).to_csv(index=False)
        assert pieces.collect(COLUMNS).to_csv(index=False) == expected


def test_atomic_write_leaves_no_partial_chunk(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path, "randomization")
    store.write("done", pd.DataFrame({"a": [1]}))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # a kill after the data was written, before the rename

    monkeypatch.setattr("empirical.storage.chunks.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write("k", pd.DataFrame({"a": [2]}))
    assert not store.has("k") and store.keys() == ["done"]
    assert sorted(p.name for p in store.directory.iterdir()) == ["done.csv"]


def test_empty_store_gives_empty_table_with_columns(tmp_path):
    table = ChunkStore(tmp_path, "activations").collect(COLUMNS)
    assert table.empty and list(table.columns) == COLUMNS


def test_mixed_headers_are_refused(tmp_path):
    store = ChunkStore(tmp_path, "x")
    store.write("a", pd.DataFrame({"p": [1]}))
    store.write("b", pd.DataFrame({"q": [1]}))
    with pytest.raises(ValueError, match="mixes runs"):
        store.collect()


@pytest.mark.parametrize("key", ["", "../escape", "a/b", " space", None, 3])
def test_bad_keys_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="chunk key"):
        ChunkStore(tmp_path, "x").has(key)


def test_bad_experiment_and_table_are_refused(tmp_path):
    with pytest.raises(ValueError, match="experiment"):
        ChunkStore(tmp_path, "../x")
    with pytest.raises(ValueError, match="DataFrame"):
        ChunkStore(tmp_path, "x").write("k", {"a": [1]})


def test_write_table_uses_unix_line_ends(tmp_path):
    path = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "sub" / "t.csv")
    assert path.read_bytes() == b"a\n1\n2\n"


def _damage(path, how: str) -> None:
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if how == "rows removed":
        path.write_text("".join(lines[:1] + lines[3:]))  # header, then rows 3.. and the record
    elif how == "rows removed with the record":
        path.write_text("".join(lines[:1] + lines[3:-1]))
    elif how == "cut mid-row":
        path.write_text(text[: len(text) // 2])
    elif how == "value edited":
        path.write_text(text.replace("gradient", "gradiant", 1))
    elif how == "binary":
        path.write_bytes(b"\xff\xfe\x00" * 10)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["rows removed", "rows removed with the record", "cut mid-row",
                                 "value edited", "binary"])
def test_a_damaged_chunk_is_named_set_aside_and_never_reused(tmp_path, how):
    """Oracle: the chunk as written. Before the chunk record, a chunk with rows removed counted as finished
    and a chunk cut mid-row failed in pandas' tokenizer."""
    store = ChunkStore(tmp_path, "faithfulness")
    written = chunk("a", 0, np.arange(6) / 7)
    path = store.write("a.000000", written)
    store.write("b.000000", chunk("b", 1, [0.5]))
    _damage(path, how)
    with pytest.raises(ValueError, match=r"a\.000000\.csv is damaged"):
        store.collect(COLUMNS)
    with pytest.warns(UserWarning, match=r"a\.000000\.csv is damaged.*computed again"):
        assert not store.has("a.000000")
    assert store.keys() == ["b.000000"]
    assert (store.directory / "a.000000.csv.damaged").is_file()
    store.write("a.000000", written)  # what the experiment does next
    assert store.has("a.000000")
    table = store.collect(COLUMNS)
    assert len(table) == 7
    assert table["image"].dtype == np.int64 and table["step"].dtype == np.int64  # integers stay integers


def test_the_chunk_record_states_rows_and_checksum(tmp_path):
    import hashlib

    path = ChunkStore(tmp_path, "x").write("k", pd.DataFrame({"a": [1, 2, 3]}))
    body, record = path.read_text().rsplit("#", 1)
    assert body == "a\n1\n2\n3\n"
    assert record == f"chunk rows=3 sha256={hashlib.sha256(body.encode()).hexdigest()}\n"


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def test_result_files_get_the_mode_open_gives_under_the_umask(tmp_path, mask):
    """Oracle: the mode ``open()`` gives a new file under the same umask (0644 under umask 022), for a chunk,
    a table, the manifest and the activation samples; mkstemp's 0600 would fail under 022 and 002."""
    import os
    import stat

    from empirical.run.activations import _save_samples
    from empirical.storage.chunks import current_umask

    previous = os.umask(mask)
    try:
        assert current_umask() == mask
        with open(tmp_path / "by-open", "w"):
            pass
        store = ChunkStore(tmp_path, "randomization")
        written = [store.write("a.000000", chunk("a", 0, [0.5, 0.25])),
                   write_table(chunk("a", 0, [0.5]), tmp_path / "randomization.csv"),
                   write_manifest(tmp_path, profile="demo", experiments=["randomization"], config={},
                                  seed=0, device="cpu", weights={}, dataset={}, bench=False, started="",
                                  finished="", elapsed_s=0.0)]
        _save_samples(tmp_path / "activation_samples.npz", "demo", {0: np.ones(3)})
        written.append(tmp_path / "activation_samples.npz")
    finally:
        os.umask(previous)
    expected = stat.S_IMODE((tmp_path / "by-open").stat().st_mode)
    assert expected == 0o666 & ~mask
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in written} == {
        path.name: expected for path in written}
