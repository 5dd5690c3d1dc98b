"""``run_faithfulness``: chunks written, resumed and matching the curves of ``perturbation_curves``.

Oracle: ``perturbation_curves`` on the same maps (itself held against a slow reference written straight from
the seed's definition, A.1, in tests/empirical/experiments/test_faithfulness.py); the table of an
uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from empirical.experiments._common import resolve_methods
from empirical.experiments.faithfulness import faithfulness_batch, perturbation_curves
from empirical.run.chunked import chunk_key
from empirical.run.faithfulness import run_faithfulness
from empirical.storage.chunks import ChunkStore
from empirical.storage.tables import FAITHFULNESS_COLUMNS


def test_run_writes_chunks_resumes_and_matches_reference(tmp_path, tiny_model, tiny_images, gradient_method):
    calls = []

    def counted(model, x, target):
        calls.append(x.shape[0])
        return gradient_method(model, x, target)

    store = ChunkStore(tmp_path, "faithfulness")
    options = dict(model_name="tiny", store=store, methods={"grad": counted}, batch_size=4, seed=0,
                   progress=False, patch_sizes=(2, 4), blur_kernel=3, steps=10)
    table = run_faithfulness(tiny_model, tiny_images, None, **options)
    assert table.columns.tolist() == list(FAITHFULNESS_COLUMNS)
    assert len(table) == 2 * 6 * 11 and calls == [4, 2]
    top = tiny_model(tiny_images).argmax(1)
    first = table[(table.patch_size == 4) & (table.image == 5)].sort_values("step")
    assert (first["label"] == int(top[5])).all()
    maps = gradient_method(tiny_model, tiny_images[4:], top[4:])
    expected = perturbation_curves(tiny_model, tiny_images[4:], top[4:], maps, patch_size=4, steps=10,
                                   blur_kernel=3)[1].numpy()
    np.testing.assert_allclose(first["score"].to_numpy(), expected, rtol=1e-5, atol=1e-7)
    # a killed run leaves some chunks: only the missing ones are computed again, with the same result
    (store.directory / f"{chunk_key('tiny', 'grad', start=4, stop=6)}.csv").unlink()
    calls.clear()
    resumed = run_faithfulness(tiny_model, tiny_images, None, **options)
    assert calls == [2]
    pd.testing.assert_frame_equal(resumed, table)


def test_the_run_is_the_kernel_chunk_by_chunk(tmp_path, tiny_model, tiny_images, gradient_method):
    """The driver adds nothing to the numbers: its table is the kernel's rows of each batch, concatenated."""
    options = dict(patch_sizes=(2,), blur_kernel=3, steps=4, forward_batch_size=8)
    table = run_faithfulness(tiny_model, tiny_images, None, model_name="tiny",
                             store=ChunkStore(tmp_path, "faithfulness"), methods=["random-uniform"],
                             batch_size=4, seed=5, progress=False, **options)
    method = resolve_methods(["random-uniform"])["random-uniform"]
    rows = pd.concat([faithfulness_batch(tiny_model, tiny_images[s:s + 4], None, method,
                                         method_name="random-uniform", model_name="tiny", seed=5,
                                         first_image=s, **options) for s in (0, 4)], ignore_index=True)
    pd.testing.assert_frame_equal(table, rows[list(FAITHFULNESS_COLUMNS)], check_dtype=False)


def test_caller_model_and_images_untouched(tiny_model, tiny_images, gradient_method, tmp_path):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    before = tiny_images.clone()
    run_faithfulness(tiny_model, tiny_images, torch.zeros(6, dtype=torch.long), model_name="tiny",
                     store=ChunkStore(tmp_path, "faithfulness"), methods={"grad": gradient_method},
                     batch_size=6, progress=False, patch_sizes=2, blur_kernel=3, steps=3)
    assert torch.equal(before, tiny_images)
    assert all(torch.equal(state[k], v) for k, v in tiny_model.state_dict().items())


def test_wrong_label_shapes_are_rejected(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="labels must have shape"):
        run_faithfulness(tiny_model, tiny_images, torch.zeros(5, dtype=torch.long), model_name="t",
                         store=None, methods={"g": lambda m, x, t: x.sum(1)}, progress=False)
