"""empirical.measures.mprt_variants against
Quantus 0.6.0's SmoothMPRT and EfficientMPRT on the same tiny float64
network, the same maps, the same randomised weights (Quantus's own layer generator passed to ours) and the
same input noise (Quantus's np.random.randn replaced by our generator's draws, in the order both use), and
the histogram entropy against numpy.histogram + scipy.stats.entropy.

Tolerance: with identical weights, inputs and noise everything is deterministic and float64; the only
differences are summation order (Quantus accumulates a / n sample by sample, we sum then divide) and the
normaliser (Quantus: one root mean square for the batch; we: one a map), which a rank correlation ignores.
So Spearman and entropy must agree to 1e-10 absolute (rounding is ~1e-15; a flipped rank of two near-equal
pixels would show as ~1e-5 and fail, which is what the test is for).
"""

import numpy as np
import pytest
import torch

from empirical.measures import mprt_variants as mv

quantus = pytest.importorskip("quantus")
from quantus.helpers.model.pytorch_model import PyTorchModel  # noqa: E402

TOLERANCE = 1e-10


@pytest.fixture
def quantus_explain(mprt_parts):
    """The signed gradient as Quantus calls an explain_func: numpy in, numpy out."""

    def explain(model, inputs, targets, **kwargs):
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float64)
        return mprt_parts.gradient(model, x, torch.as_tensor(np.asarray(targets)).long()).numpy()

    return explain


def _quantus_layers(model):
    """Quantus's bottom-up layer generator; it seeds torch's global generator, so isolate that."""
    wrapped = PyTorchModel(model, channel_first=True, softmax=False, device="cpu")
    with torch.random.fork_rng(devices=[]):
        yield from wrapped.get_random_layer_generator(order="bottom_up", seed=42)


def test_efficient_mprt_against_quantus(mprt_parts, quantus_explain):
    model, (x, y) = mprt_parts.model(), mprt_parts.data()
    metric = quantus.EfficientMPRT(disable_warnings=True)
    with torch.random.fork_rng(devices=[]):
        expected = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                          explain_func=quantus_explain, device="cpu", batch_size=8)
    ours = mv.efficient_mprt(model, x, y, mprt_parts.gradient, randomisation=_quantus_layers)
    assert np.allclose(ours.score.numpy(), expected, atol=TOLERANCE, rtol=0)
    original = metric.explanation_scores_by_layer["orig"]
    assert np.allclose(ours.entropy_original.numpy(), original, atol=TOLERANCE, rtol=0)
    assert ours.layer == list(metric.explanation_scores_by_layer)[-1] == "1.5"


@pytest.mark.parametrize("samples", [1, 5])
def test_smooth_mprt_against_quantus_with_the_same_noise(monkeypatch, samples, mprt_parts, quantus_explain):
    model, (x, y) = mprt_parts.model(), mprt_parts.data()
    quantus_noise = torch.Generator().manual_seed(7)

    def randn(*shape):  # Quantus draws eps = randn(*x.shape) * std, sample by sample
        return torch.randn(shape, generator=quantus_noise, dtype=torch.float64).numpy()

    monkeypatch.setattr(quantus, "explain", quantus_explain)  # SmoothMPRT smooths through quantus.explain
    monkeypatch.setattr(np.random, "randn", randn)
    metric = quantus.SmoothMPRT(nr_samples=samples, noise_magnitude=0.1, disable_warnings=True)
    with torch.random.fork_rng(devices=[]):
        expected = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                          explain_func=quantus_explain, device="cpu", batch_size=8)
    monkeypatch.undo()
    ours = mv.smooth_mprt(model, x, y, mprt_parts.gradient, randomisation=_quantus_layers, samples=samples,
                          rng=torch.Generator().manual_seed(7), pass_size=8)
    assert ours.layers == [name for name in expected if name != "original"] == ["1.0", "1.2", "1.5"]
    assert np.allclose(ours.original.numpy(), expected["original"], atol=TOLERANCE, rtol=0)
    for k, name in enumerate(ours.layers):
        assert np.allclose(ours.scores[k].numpy(), expected[name], atol=TOLERANCE, rtol=0), name
    if samples == 1:  # no noise at all: two smoothings of one model are the same map
        assert np.allclose(ours.original.numpy(), 1.0)
