"""``run_activations``: chunked over batches, resumable, equal to the building block over the whole set.

Oracles: ``empirical.measures.activations.activation_statistics`` over all images in one go (no chunks), the
first image's pooled layer inputs captured with a plain forward hook, and the CSV bytes of an uninterrupted
run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empirical.measures.activations import activation_statistics
from empirical.models import build_model
from empirical.run.activations import SAMPLES_FILE, run_activations
from empirical.storage.chunks import ChunkStore
from empirical.storage.tables import ACTIVATION_COLUMNS

N_IMAGES = 7




@pytest.fixture(scope="module")
def demo():
    generator = torch.Generator().manual_seed(0)
    model = build_model("demo")
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not key.endswith("running_var"):
                # shifts and weights as if trained, so that some levels have negative quantiles
                value.copy_(torch.randn(value.shape, generator=generator) * (0.3 if value.ndim == 1 else 0.2))
    return model


@pytest.fixture(scope="module")
def images():
    return torch.rand(N_IMAGES, 3, 12, 12, generator=torch.Generator().manual_seed(4))


def _run(model, images, out, *, batch_size=3, model_name="demo", **options):
    store = ChunkStore(out, "activations")
    return run_activations(model, images, None, model_name=model_name, store=store, methods=["gradient"],
                           batch_size=batch_size, seed=9, device="cpu", progress=False, **options), store


def _sorted(table):
    keys = ["level", "statistic", "q", "q_high", "q_low"]
    return table.sort_values(keys, na_position="last", ignore_index=True)


def test_chunked_table_equals_activation_statistics_over_all_images(demo, images, tmp_path):
    table, _ = _run(demo, images, tmp_path)
    assert list(table.columns) == list(ACTIVATION_COLUMNS)
    assert set(table["model"]) == {"demo"}
    expected = _sorted(activation_statistics(demo, images))
    mine = _sorted(table.drop(columns="model"))
    assert mine[["level", "layer", "statistic"]].equals(expected[["level", "layer", "statistic"]])
    for column in ("q", "q_high", "q_low"):
        np.testing.assert_array_equal(mine[column], expected[column])
    # float32 convolutions round differently in batches of 3 and of 7; ratios K amplify that a little
    np.testing.assert_allclose(mine["value"], expected["value"], rtol=1e-4, atol=1e-7)
    # every level has 18 quantiles, the non-positive fraction, and K, gamma, P for 3 x 9 quantile pairs
    counts = table.groupby(["level", "statistic"]).size().unstack()
    assert (counts["quantile"] == 18).all() and (counts["nonpositive_fraction"] == 1).all()
    assert (counts[["K", "gamma", "P"]] == 27).all().all()


def test_resumes_from_batch_chunks_with_identical_bytes(demo, images, tmp_path):
    whole, store = _run(demo, images, tmp_path / "whole")
    calls = []
    handle = demo.register_forward_pre_hook(lambda module, inputs: calls.append(len(inputs[0])))
    try:
        _, partial = _run(demo, images, tmp_path / "killed")
        (partial.out_dir / "chunks" / "activations_batches" / "demo__0000003-0000006.csv").unlink()
        (partial.out_dir / "chunks" / "activations" / "demo__all.csv").unlink()
        calls.clear()
        resumed, _ = _run(demo, images, tmp_path / "killed")
    finally:
        handle.remove()
    assert calls == [3]  # only the missing batch went through the network again
    assert resumed.to_csv(index=False) == whole.to_csv(index=False)
    for name in ("activations", "activations_batches"):
        ours = sorted((tmp_path / "whole" / "chunks" / name).glob("*.csv"))
        theirs = sorted((tmp_path / "killed" / "chunks" / name).glob("*.csv"))
        assert [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]


def test_samples_are_the_first_images_pooled_inputs_for_every_level(demo, images, tmp_path):
    captured = []
    hooks = [module.register_forward_pre_hook(lambda m, inputs: captured.append(inputs[0][0].reshape(-1)))
             for module in demo.modules() if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        demo(images[:1])
    for hook in hooks:
        hook.remove()
    _run(demo, images, tmp_path, sample_size=100)
    _run(demo, images, tmp_path, model_name="other", sample_size=100)
    with np.load(tmp_path / SAMPLES_FILE) as archive:
        assert sorted(archive.files) == sorted(f"{name}/{level}" for name in ("demo", "other")
                                               for level in range(len(captured)))
        for level, values in enumerate(captured):
            drawn = archive[f"demo/{level}"]
            assert len(drawn) == min(100, values.numel())
            assert np.isin(drawn, values.double().numpy()).all()


def test_caller_model_keeps_its_mode_and_weights(images, tmp_path):
    model = build_model("demo").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    _run(model, images, tmp_path)
    assert model.training
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"images": torch.rand(3, 12, 12)}, "images must be a float tensor"),
    ({"images": torch.zeros(0, 3, 12, 12)}, "at least one image"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"sample_size": -1}, "sample_size must be a positive integer, got -1"),
])
def test_bad_inputs_are_value_errors(demo, images, tmp_path, kwargs, message):
    arguments = {"images": images, "batch_size": 3} | kwargs
    with pytest.raises(ValueError, match=message):
        _run(demo, arguments.pop("images"), tmp_path, **arguments)


def test_chunks_of_another_image_set_are_never_mixed_in(demo, images, tmp_path):
    """Oracle: a fresh run on the 6 images. Before chunks were fingerprinted, the batch chunks of a 7-image
    run were averaged in and the run was refused ("cover"); now they are left out of the table."""
    _run(demo, images, tmp_path / "mixed")
    (tmp_path / "mixed" / "chunks" / "activations_batches" / "demo__0000006-0000007.csv").rename(
        tmp_path / "mixed" / "chunks" / "activations_batches" / "demo__0000006-0000008.csv")
    mixed, _ = _run(demo, images[:6], tmp_path / "mixed")
    fresh, _ = _run(demo, images[:6], tmp_path / "fresh")
    assert mixed.to_csv(index=False) == fresh.to_csv(index=False)


def test_estimated_time_is_a_line_before_the_progress_bar(demo, images, tmp_path, capsys):
    """Oracle: the batch count of the run (ceil(7 / 3) = 3) and the order of what reaches stderr: the
    estimate's line, then the bar, which starts at the batch the estimate timed."""
    store = ChunkStore(tmp_path, "activations")
    run_activations(demo, images, None, model_name="demo", store=store, batch_size=3, seed=0, progress=True)
    err = capsys.readouterr().err
    line = err.splitlines()[0]
    assert line.startswith("activations demo: estimated time ") and "for 3 batches" in line, err
    assert "1/3" in err[len(line):] and "3/3" in err[len(line):]  # the bar, after the line
    run_activations(demo, images, None, model_name="other", store=store, batch_size=3, seed=0,
                    progress=False)
    assert capsys.readouterr().err == ""  # no progress: no line either


def test_estimate_line_extrapolates_the_first_units_rate():
    from empirical.storage.progress import estimate_line

    line = estimate_line("activations bench", total=12_500, done=1, seconds=24.8, unit="batch")
    # 12,500 batches at 24.8 s each: 310,000 s = 3.6 days (86 hours)
    assert "estimated time 3.6 days for 12,500 batches (24.80 s a batch" in line
    assert "estimated time 12.5 minutes for 30 batches" in estimate_line("x", total=30, done=2, seconds=50,
                                                                         unit="batch")
