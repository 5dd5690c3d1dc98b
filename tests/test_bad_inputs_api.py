"""Bad inputs to the public API: one table of (call, exception type, a substring of
the message that names the argument or the value). Oracle: the message itself; every row raised something
else, or nothing, before its fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import theory
from empirical.attribution import attribute
from empirical.measures import similarity
from empirical.measures.activations import ActivationStatistics
from empirical.models import load_model
from simulations import _blocks, cauchy_overtake, streaming


@pytest.fixture(scope="module")
def demo():
    return load_model("demo")


def _images(value=None):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    if value is not None:
        x[1, 0, 3, 4] = value
    return x


def _sparse_map():
    a = np.zeros((6, 6, 6))
    a[0, 0, 0] = 5.0
    return a


def _pickled(tmp_path, suffix):
    path = tmp_path / f"pickled{suffix}"
    objects = np.array([{"x": 1}, 2], dtype=object)
    np.savez(path, a=objects) if suffix == ".npz" else np.save(path, objects)
    return path


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04" + b"not a zip archive" * 8)
    return path


# (id, call(demo, tmp_path), exception type, substring of the message)
CASES = [
    # theory
    ("quantile-variance-n-half", lambda m, t: theory.quantile_asymptotic_variance(0.5, 0.5, "norm"),
     ValueError, "n must be an integer sample size"),
    ("quantile-variance-n-non-integer", lambda m, t: theory.quantile_asymptotic_variance(0.5, 10.5, "norm"),
     ValueError, "10.5"),
    ("quantile-variance-as-printed-text",
     lambda m, t: theory.quantile_asymptotic_variance(0.5, 10, "norm", as_printed="yes"), ValueError,
     "as_printed"),
    ("overtake-quantiles-stretched-list",
     lambda m, t: theory.overtake_from_quantiles([0.1, 0.2], [1.0], [0.9], [2.0]), ValueError,
     "v_low must have the shape of q_low"),
    ("overtake-quantiles-lengths-differ",
     lambda m, t: theory.overtake_from_quantiles([0.1, 0.2], [1.0, 1.5], [0.9], [2.0]), ValueError,
     "q_high with length 1"),
    ("percentile-of-sparse-map", lambda m, t: theory.normalize_percentile(_sparse_map()), ValueError,
     "sparse"),
    ("percentile-overflowing-quotient",
     lambda m, t: theory.normalize_percentile(np.r_[np.zeros(296), [1e-320] * 3, 1.0]), ValueError,
     "overflows"),
    ("percentile-q-array", lambda m, t: theory.normalize_percentile(np.ones(3), q=[50, 60]), ValueError,
     "q must be one percentile"),
    ("lrp-beta-no-inputs", lambda m, t: theory.lrp_beta_neuron([], 1.0, 0.5), ValueError, "contributions"),
    # empirical.models
    ("load-model-weights-int", lambda m, t: load_model("demo", weights=123), ValueError,
     "weights must be a path"),
    ("load-model-weights-list", lambda m, t: load_model("demo", weights=["a.pt"]), ValueError, "weights"),
    ("load-model-cuda-absent", lambda m, t: load_model("demo", device="cuda"), ValueError,
     "device 'cuda' requested but CUDA is not available"),
    ("load-model-device-unknown", lambda m, t: load_model("demo", device="tpu"), ValueError,
     "device must be 'cpu' or 'cuda[:index]', got 'tpu'"),
    ("load-model-device-malformed", lambda m, t: load_model("demo", device="cuda:x"), ValueError, "cuda:x"),
    ("load-model-device-int", lambda m, t: load_model("demo", device=5), ValueError, "got 5"),
    # empirical.attribution
    ("attribute-nan-input", lambda m, t: attribute(m, _images(float("nan")), 0, "gradient"), ValueError,
     "x must be finite"),
    ("attribute-inf-input", lambda m, t: attribute(m, _images(float("inf")), 0, "lrp-epsilon"), ValueError,
     "image(s) [1]"),
    ("attribute-integer-input",
     lambda m, t: attribute(m, torch.zeros(2, 3, 32, 32, dtype=torch.long), 0, "gradient"), ValueError,
     "floating-point"),
    ("attribute-model-not-module", lambda m, t: attribute("net", _images(), 0, "gradient"), ValueError,
     "torch.nn.Module"),
    # empirical.activations
    ("activations-nan-input", lambda m, t: ActivationStatistics(m).update(_images(float("nan"))), ValueError,
     "x must be finite"),
    ("activations-overflow-inside", lambda m, t: ActivationStatistics(m).update(_images() * 3e38), ValueError,
     "NaN or infinite values"),
    ("activations-wrong-shape", lambda m, t: ActivationStatistics(m).update(torch.zeros(2, 5)), ValueError,
     "does not fit the model"),
    # empirical.similarity
    ("ssim-text", lambda m, t: similarity.ssim("abc", "abc"), ValueError, "a must be a tensor or array"),
    ("spearman-text-b", lambda m, t: similarity.spearman(torch.rand(1, 8, 8), "abc"), ValueError,
     "b must be a tensor or array"),
    ("mse-none", lambda m, t: similarity.mse(None, None), ValueError, "a must be"),
    ("ssim-bool-maps", lambda m, t: similarity.ssim(torch.ones(1, 8, 8, dtype=torch.bool),
                                                     torch.ones(1, 8, 8, dtype=torch.bool)), ValueError,
     "real numbers"),
    ("ssim-data-range-text",
     lambda m, t: similarity.ssim(torch.rand(1, 8, 8), torch.rand(1, 8, 8), data_range="abc"), ValueError,
     "data_range"),
    ("spearman-absolute-text",
     lambda m, t: similarity.spearman(torch.rand(1, 8, 8), torch.rand(1, 8, 8), absolute="no"), ValueError,
     "absolute must be True or False"),
    # simulations
    ("activations-file-corrupt", lambda m, t: cauchy_overtake.load_activations(_corrupt(t)), ValueError,
     "corrupt.npz"),
    ("activations-file-pickled-npz", lambda m, t: cauchy_overtake.load_activations(_pickled(t, ".npz")),
     ValueError, "pickled.npz' could not be read: it holds pickled"),
    ("activations-file-pickled-npy", lambda m, t: cauchy_overtake.load_activations(_pickled(t, ".npy")),
     ValueError, "pickled.npy"),
    ("activations-text", lambda m, t: cauchy_overtake.check_activations("abc"), ValueError,
     "activations must be numbers"),
    ("draw-too-large", lambda m, t: _blocks.reduce_blocks(lambda s, g: 0, 10, np.random.default_rng(0),
                                                         bytes_per_draw=2**40, combine=streaming.add),
     ValueError, "one draw of these settings needs 1,024.0 GiB"),
]  # fmt: skip


@pytest.fixture
def no_cuda(monkeypatch):
    # the CUDA rows mean a machine without CUDA, whatever this one has
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(("call", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_one_clear_error_naming_it(call, error, message, demo, tmp_path, no_cuda):
    with pytest.raises(error) as info:
        call(demo, tmp_path)
    assert message in str(info.value)
    assert type(info.value) is error  # not a subclass from deep inside numpy or torch


def test_refused_activation_batch_leaves_the_statistics_as_they_were(demo):
    stats = ActivationStatistics(demo).update(_images())
    before = stats.quantile_sums, stats.nonpositive_sums, stats.images
    with pytest.raises(ValueError):
        stats.update(_images() * 3e38)
    after = stats.quantile_sums, stats.nonpositive_sums, stats.images
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2] == after[2]
