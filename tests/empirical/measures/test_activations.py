"""empirical.measures.activations against numpy quantiles of captured inputs and theory (seed
sections I, J)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import theory
from empirical.measures import activations

COLUMNS = ["level", "layer", "statistic", "q", "q_high", "q_low", "value"]


def _small_model():
    torch.manual_seed(0)  # test code only: the library never touches global random state
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(5 * 6 * 6, 7),
        nn.ReLU(),
        nn.Linear(7, 3),
    ).double()


def _images(n=5, seed=1):
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _inputs_by_hand(model, x):
    """The inputs of conv/linear layers, recomputed by walking the Sequential (independent of hooks)."""
    inputs = []
    with torch.no_grad():
        for module in model:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                inputs.append(x.reshape(x.shape[0], -1).numpy())
            x = module(x)
    return inputs


def _all_hooks(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_quantiles_and_nonpositive_fraction_against_numpy():
    model, x = _small_model(), _images()
    table = activations.activation_statistics(model, x)
    assert list(table.columns) == COLUMNS
    levels = np.asarray(theory.QUANTILE_LEVELS)
    for level, values in enumerate(_inputs_by_hand(model, x)):
        rows = table[(table.level == level) & (table.statistic == "quantile")]
        np.testing.assert_allclose(rows.q.to_numpy(), levels)
        expected = np.quantile(values, levels, axis=1).mean(axis=1)  # per image, then over images
        np.testing.assert_allclose(rows.value.to_numpy(), expected, rtol=1e-12, atol=1e-14)
        fraction = table[(table.level == level) & (table.statistic == "nonpositive_fraction")].value.item()
        assert fraction == pytest.approx((values <= 0).mean(axis=1).mean(), abs=1e-14)


def test_levels_in_forward_order_with_module_names():
    table = activations.activation_statistics(_small_model(), _images(2))
    layers = table.drop_duplicates("level")[["level", "layer"]]
    assert layers.level.tolist() == [0, 1, 2, 3]
    assert layers.layer.tolist() == ["0", "2", "5", "7"]


def test_overtaking_rows_against_theory():
    table = activations.activation_statistics(_small_model(), _images())
    level = table[table.level == 2]
    quantile = dict(
        zip(
            level[level.statistic == "quantile"].q.round(2),
            level[level.statistic == "quantile"].value,
            strict=True,
        )
    )
    for statistic, index in (("K", 0), ("gamma", 1), ("P", 2)):
        rows = level[level.statistic == statistic]
        assert len(rows) == len(theory.HIGH_QUANTILES) * len(theory.LOW_QUANTILES)
        for row in rows.itertuples():
            expected = theory.overtake_from_quantiles(
                row.q_low, quantile[round(row.q_low, 2)], row.q_high, quantile[round(row.q_high, 2)]
            )[index]
            assert row.value == pytest.approx(float(expected), rel=1e-12, abs=0, nan_ok=True)
    assert level[level.statistic != "quantile"].q.isna().all()


def test_batches_give_the_same_table_as_one_pass():
    model, x = _small_model(), _images(7)
    whole = activations.activation_statistics(model, x)
    streamed = activations.activation_statistics(model, iter([x[:3], x[3:4], x[4:]]))
    pd.testing.assert_frame_equal(whole, streamed, rtol=1e-12)


def test_hooks_removed_after_update_and_after_a_failing_forward():
    model = _small_model()
    stats = activations.ActivationStatistics(model)
    stats.update(_images(2))
    assert _all_hooks(model) == 0
    # wrong channel count fails inside forward; torch's RuntimeError comes back as one ValueError
    with pytest.raises(ValueError, match=r"x of shape \(2, 5, 8, 8\) .* does not fit the model"):
        stats.update(torch.randn(2, 5, 8, 8, dtype=torch.float64))
    assert _all_hooks(model) == 0
    assert stats.images == 2


def test_pooled_quantiles_against_numpy_for_any_size():
    rng = np.random.default_rng(2)
    values = rng.standard_cauchy(size=(3, 10_001))
    values[:, :50] = 0.0  # ties
    levels = np.asarray(theory.QUANTILE_LEVELS)
    ours = activations.pooled_quantiles(torch.from_numpy(values), levels).numpy()
    np.testing.assert_allclose(ours, np.quantile(values, levels, axis=1).T, rtol=1e-12)


@pytest.mark.slow
def test_pooled_quantiles_beyond_torch_quantile_limit():
    # torch.quantile refuses inputs over 2**24 elements; the sort-based code must not
    values = torch.arange(2**24 + 3, dtype=torch.float32).unsqueeze(0)
    ours = activations.pooled_quantiles(values, [0.5, 0.9]).numpy()[0]
    np.testing.assert_allclose(ours, np.quantile(values.numpy()[0].astype(np.float64), [0.5, 0.9]), rtol=1e-7)


def test_activation_samples_subsample_first_image_seeded():
    model, x = _small_model(), _images(3)
    samples = activations.activation_samples(model, x, max_values=20, rng=5)
    first = [v[0] for v in _inputs_by_hand(model, x[:1])]  # batch of one: same BLAS path, exact values
    assert sorted(samples) == [0, 1, 2, 3]
    for level, values in samples.items():
        assert values.ndim == 1 and len(values) == min(20, first[level].size)
        assert np.isin(values, first[level]).all()
    assert len(samples[3]) == 7  # fewer values than max_values: all of them
    again = activations.activation_samples(model, x, max_values=20, rng=torch.Generator().manual_seed(5))
    other = activations.activation_samples(model, x, max_values=20, rng=6)
    assert all(np.array_equal(samples[k], again[k]) for k in samples)
    assert not np.array_equal(samples[0], other[0])
    assert _all_hooks(model) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x: activations.activation_samples(m, x, max_values=0, rng=0), "max_values"),
        (lambda m, x: activations.activation_samples(m, x, rng=np.random.default_rng(0)), "rng"),
        (lambda m, x: activations.activation_statistics(nn.ReLU(), x), "no layer"),
        (lambda m, x: activations.ActivationStatistics(m).table(), "no images"),
        (lambda m, x: activations.ActivationStatistics("resnet"), "nn.Module"),
        (lambda m, x: activations.statistics_table(["a"], np.zeros((1, 3)), np.zeros(1)), "shape"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(_small_model(), _images(1))


def test_zero_low_quantile_gives_infinite_k_and_zero_p():
    # a level whose input is mostly zero (after ReLU with a large negative bias): V(q_low) = 0
    model = nn.Sequential(nn.Linear(4, 50), nn.ReLU(), nn.Linear(50, 1)).double()
    with torch.no_grad():
        model[0].bias.fill_(-1.5)
    table = activations.activation_statistics(
        model, torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    )
    level = table[(table.level == 1) & (table.q_low == 0.5)]
    assert np.isinf(level[level.statistic == "K"].value).all()
    assert (level[level.statistic == "P"].value == 0).all()


@pytest.mark.slow
def test_resnet50_levels_are_its_conv_and_linear_modules_in_forward_order():
    from torchvision.models import resnet50

    model = resnet50(weights=None).eval()
    table = activations.activation_statistics(
        model, torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    )
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    layers = table.drop_duplicates("level").sort_values("level").layer.tolist()
    assert len(layers) == len(names) == 54
    # forward order: conv1 first, fc last, each bottleneck's downsample after its conv3 (its call order)
    assert layers[0] == "conv1" and layers[-1] == "fc" and sorted(layers) == sorted(names)
    assert layers.index("layer1.0.downsample.0") == layers.index("layer1.0.conv3") + 1
    assert _all_hooks(model) == 0
