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
from scipy import stats
from torch import nn

from empirical.experiments.randomization import randomised_copy
from empirical.measures import mprt_variants as mv

quantus = pytest.importorskip("quantus")
from quantus.helpers.model.pytorch_model import PyTorchModel  # noqa: E402

TOLERANCE = 1e-10


class _ToDouble(nn.Module):
    """Quantus's predict feeds float32; the network computes in float64 so both sides round alike."""

    def forward(self, x):
        return x.double()


def _model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                  nn.Flatten(), nn.Linear(4 * 16 * 16, 5)]
        return nn.Sequential(_ToDouble(), nn.Sequential(*layers).double()).eval()


def _data(n=4):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 16, 16, generator=gen, dtype=torch.float64), torch.arange(n) % 5


def _gradient(model, x, target):
    """Signed input gradient summed over the colour channels, (N, H, W)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    return grad.sum(1)


def _quantus_explain(model, inputs, targets, **kwargs):
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float64)
    return _gradient(model, x, torch.as_tensor(np.asarray(targets)).long()).numpy()


def _quantus_layers(model):
    """Quantus's bottom-up layer generator; it seeds torch's global generator, so isolate that."""
    wrapped = PyTorchModel(model, channel_first=True, softmax=False, device="cpu")
    with torch.random.fork_rng(devices=[]):
        yield from wrapped.get_random_layer_generator(order="bottom_up", seed=42)


def test_efficient_mprt_against_quantus():
    model, (x, y) = _model(), _data()
    metric = quantus.EfficientMPRT(disable_warnings=True)
    with torch.random.fork_rng(devices=[]):
        expected = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                          explain_func=_quantus_explain, device="cpu", batch_size=8)
    ours = mv.efficient_mprt(model, x, y, _gradient, randomisation=_quantus_layers)
    assert np.allclose(ours.score.numpy(), expected, atol=TOLERANCE, rtol=0)
    original = metric.explanation_scores_by_layer["orig"]
    assert np.allclose(ours.entropy_original.numpy(), original, atol=TOLERANCE, rtol=0)
    assert ours.layer == list(metric.explanation_scores_by_layer)[-1] == "1.5"


@pytest.mark.parametrize("samples", [1, 5])
def test_smooth_mprt_against_quantus_with_the_same_noise(monkeypatch, samples):
    model, (x, y) = _model(), _data()
    quantus_noise = torch.Generator().manual_seed(7)

    def randn(*shape):  # Quantus draws eps = randn(*x.shape) * std, sample by sample
        return torch.randn(shape, generator=quantus_noise, dtype=torch.float64).numpy()

    monkeypatch.setattr(quantus, "explain", _quantus_explain)  # SmoothMPRT smooths through quantus.explain
    monkeypatch.setattr(np.random, "randn", randn)
    metric = quantus.SmoothMPRT(nr_samples=samples, noise_magnitude=0.1, disable_warnings=True)
    with torch.random.fork_rng(devices=[]):
        expected = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                          explain_func=_quantus_explain, device="cpu", batch_size=8)
    monkeypatch.undo()
    ours = mv.smooth_mprt(model, x, y, _gradient, randomisation=_quantus_layers, samples=samples,
                          rng=torch.Generator().manual_seed(7), pass_size=8)
    assert ours.layers == [name for name in expected if name != "original"] == ["1.0", "1.2", "1.5"]
    assert np.allclose(ours.original.numpy(), expected["original"], atol=TOLERANCE, rtol=0)
    for k, name in enumerate(ours.layers):
        assert np.allclose(ours.scores[k].numpy(), expected[name], atol=TOLERANCE, rtol=0), name
    if samples == 1:  # no noise at all: two smoothings of one model are the same map
        assert np.allclose(ours.original.numpy(), 1.0)


def test_discrete_entropy_against_numpy_histogram_and_scipy():
    gen = np.random.default_rng(0)
    maps = np.stack([gen.standard_normal((16, 16)), gen.integers(0, 7, (16, 16)).astype(float),
                     np.full((16, 16), 3.0), np.linspace(0, 1, 256).reshape(16, 16) ** 3])
    for bins in (10, 100):
        ours = mv.discrete_entropy(torch.from_numpy(maps), bins).numpy()
        expected = [stats.entropy(np.histogram(m, bins=bins)[0]) for m in maps]
        assert np.allclose(ours, expected, atol=1e-12, rtol=0)


def test_smooth_explanation_does_not_depend_on_pass_size():
    model, (x, y) = _model(), _data(3)
    runs = [mv.smooth_explanation(model, x, y, _gradient, samples=6, pass_size=size,
                                  generator=torch.Generator().manual_seed(2)) for size in (3, 7, 100)]
    assert torch.allclose(runs[0], runs[1], atol=1e-12) and torch.allclose(runs[0], runs[2], atol=1e-12)


def test_cascading_randomisation_ends_at_randomised_copy():
    model = _model()
    schedule = mv.bottom_up_schedule(model)
    assert schedule == [["1.0"], ["1.2"], ["1.5"]]
    *_, (name, last) = mv.cascading_randomisation(model, schedule, seed=3)
    reference = randomised_copy(model, schedule, len(schedule), seed=3)
    assert name == "1.5"
    for key, value in reference.state_dict().items():
        assert torch.equal(last.state_dict()[key], value), key


def test_default_randomisation_is_deterministic_and_leaves_the_model():
    model, (x, y) = _model(), _data(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = mv.efficient_mprt(model, x, y, _gradient, seed=1)
    second = mv.efficient_mprt(model, x, y, _gradient, seed=1)
    assert torch.equal(first.score, second.score) and first.layer == "1.5"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    result = mv.smooth_mprt(model, x, y, _gradient, samples=3, rng=0, layerwise=False, similarity="mse")
    assert result.layers == ["1.5"] and result.scores.shape == (1, 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"randomisation": "sideways"}, "randomisation must be"),
    ({"similarity": "cosine"}, "similarity must be one of"),
    ({"normalise": "l2"}, "normalise must be one of"),
    ({"samples": 0}, "samples must be a positive integer"),
])
def test_invalid_arguments_raise_naming_them(kwargs, message):
    model, (x, y) = _model(), _data(2)
    with pytest.raises(ValueError, match=message):
        mv.smooth_mprt(model, x, y, _gradient, rng=0, **kwargs)
