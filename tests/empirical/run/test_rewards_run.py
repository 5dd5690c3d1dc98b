"""``run_rewards``: every test on M+noise(s), chunked and resumable.

Oracles: the closed form of theory.noise_injection at s = 0, where the noisy pair is the clean pair and the
closed form is an identity of its moments; a second run that finds every chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from empirical.experiments import rewards
from empirical.models import load_model
from empirical.run.rewards import run_rewards
from empirical.storage.chunks import ChunkStore
from empirical.storage.tables import REWARDS_COLUMNS


@pytest.fixture(scope="module")
def demo_model():
    return load_model("demo")


def _run(tmp_path, model, images, **options):
    settings = dict(model_name="demo", methods=["gradient", "gradient-mean"], batch_size=2, progress=False,
                    levels=(0.0, 2.0), patch_size=4, steps=4, blur_kernel=11)
    settings.update(options)
    return run_rewards(model, images, None, store=ChunkStore(tmp_path, "rewards"), **settings)


@pytest.mark.slow
def test_every_test_at_every_level_and_the_closed_form_at_zero_noise(tmp_path, demo_model, demo_batch):
    table = _run(tmp_path, demo_model, demo_batch)
    assert tuple(table.columns) == REWARDS_COLUMNS
    assert set(table["test"]) == set(rewards.TESTS) and set(table["level"]) == {0.0, 2.0}
    assert table.groupby(["method", "test", "level"]).size().eq(3).all() and table["value"].notna().all()
    # at s = 0 the measured normalised MSE is the closed form at the clean moments (the same maps)
    zero = table[(table["test"] == "MPRT mse (second-moment)") & (table["level"] == 0)]
    np.testing.assert_allclose(zero["value"], zero["theory"], rtol=1e-4)
    # at s = 2 the closed form is an expectation over the noise: a mean of 32 * 32 squared differences that
    # are nearly Gaussian, so chi-square-like with variance about 2 nMSE^2 a pixel; 4 standard errors
    two = table[(table["test"] == "MPRT mse (second-moment)") & (table["level"] == 2)]
    standard_error = np.sqrt(2 * two["theory"] ** 2 / (32 * 32))
    assert ((two["value"] - two["theory"]).abs() < 4 * standard_error).all()
    assert (two.loc[two["method"] == "gradient", "value"].to_numpy()
            > zero.loc[zero["method"] == "gradient", "value"].to_numpy()).all()
    assert table.loc[~table["test"].str.startswith(("MPRT mse (second", "MPRT spearman (second")),
                     "theory"].isna().all()
    gap = table[table["test"] == "gap LeRF-MoRF"].set_index(["method", "level", "image"])["value"]
    lerf = table[table["test"] == "LeRF area"].set_index(["method", "level", "image"])["value"]
    morf = table[table["test"] == "MoRF area"].set_index(["method", "level", "image"])["value"]
    pd.testing.assert_series_equal(gap, lerf - morf, check_names=False)


@pytest.mark.slow
def test_a_second_run_reuses_every_chunk_and_base_methods_and_max_images_narrow_it(tmp_path, demo_model,
                                                                                    demo_batch, monkeypatch):
    first = _run(tmp_path, demo_model, demo_batch, base_methods=["gradient"], max_images=2)
    assert set(first["method"]) == {"gradient"} and set(first["image"]) == {0, 1}

    def fail(*args, **kwargs):
        raise AssertionError("a finished chunk was computed again")

    monkeypatch.setattr(rewards, "_chunk_rows", fail)
    again = _run(tmp_path, demo_model, demo_batch, base_methods=["gradient"], max_images=2)
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize(("options", "named"), [
    ({"levels": ()}, "levels"), ({"levels": (0.0, -1.0)}, "levels"), ({"levels": (1.0, 1.0)}, "levels"),
    ({"levels": (float("nan"),)}, "levels"), ({"base_methods": ["lrp-epsilon"]}, "base_methods"),
    ({"max_images": 0}, "max_images"), ({"smprt_samples": 0}, "smprt_samples"),
    ({"smprt_noise": -0.1}, "smprt_noise"), ({"emprt_bins": 1.5}, "emprt_bins"),
    ({"score": "logit"}, "score"),
])
def test_bad_settings_are_one_error_naming_the_argument(tmp_path, demo_model, demo_batch, options, named):
    with pytest.raises(ValueError, match=named):
        _run(tmp_path, demo_model, demo_batch, **options)
    assert not (tmp_path / "chunks").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "densenet121", "efficientnet-b0"])
def test_every_test_runs_on_the_full_size_networks_and_matches_the_closed_form_at_zero(tmp_path, name):
    torch.manual_seed(0)  # load_model's random weights for this test only; the experiment draws with seed
    model = load_model(name, weights="random", rng=0).eval()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    table = run_rewards(model, images, None, model_name=name, store=ChunkStore(tmp_path, "rewards"),
                        methods=["gradient"], batch_size=1, progress=False, levels=(0.0, 1.0),
                        patch_size=16, steps=3, blur_kernel=15)
    assert set(table["test"]) == set(rewards.TESTS) and table["value"].notna().all()
    zero = table[(table["test"] == "MPRT mse (second-moment)") & (table["level"] == 0)]
    np.testing.assert_allclose(zero["value"], zero["theory"], rtol=1e-4)
