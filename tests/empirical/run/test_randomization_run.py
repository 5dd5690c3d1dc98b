"""``run_randomization``: the documented table, an untouched caller model, chunking and resumption.

Oracles: scipy.stats.spearmanr and a numpy MSE on maps recomputed one image at a time from
``randomised_copy``; the store's CSV bytes of an uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from empirical.experiments import randomization
from empirical.experiments.randomization import block_rule_schedule, randomised_copy
from empirical.measures.similarity import MEASURES, MPRT_NORMALIZATIONS
from empirical.models import build_model
from empirical.run.randomization import run_randomization
from empirical.storage.chunks import ChunkStore
from empirical.storage.tables import RANDOMIZATION_COLUMNS

N_IMAGES = 5


def gradient(model, x, target):
    """Plain input gradient of the target logit, summed over colour channels (signed): (N, H, W)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    return grad.sum(dim=1)




@pytest.fixture(scope="module")
def demo():
    """The demo network with seeded weights and non-trivial batch-norm statistics and shifts, as if trained
    (a fresh one has no biases: positively homogeneous, integrated gradients exact at any step count)."""
    generator = torch.Generator().manual_seed(0)
    model = build_model("demo")
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=generator)
            if value.ndim > 1:
                value.copy_(noise * (2.0 / value[0].numel()) ** 0.5)
            elif key.endswith("running_var"):
                value.copy_(0.5 + 0.5 * noise.abs())
            else:
                value.copy_(0.3 * noise + (1.0 if key.endswith("weight") else 0.0))
    return model


@pytest.fixture(scope="module")
def images():
    return torch.rand(N_IMAGES, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def _run(model, images, out, *, labels=None, batch_size=2, methods=(gradient,), **options):
    store = ChunkStore(out, "randomization")
    methods = methods if isinstance(methods, dict) else list(methods)
    table = run_randomization(model, images, labels, model_name="demo", store=store, methods=methods,
                              batch_size=batch_size, seed=5, device="cpu", progress=False, **options)
    return table, store


@pytest.fixture(scope="module")
def finished(demo, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("randomization")
    table, store = _run(demo, images, out)
    return table, store, out


def test_table_has_the_documented_columns_and_one_row_per_cell(finished, demo):
    table, _, _ = finished
    schedule = block_rule_schedule(demo, "demo")
    assert list(table.columns) == list(RANDOMIZATION_COLUMNS)
    assert len(table) == len(schedule) * N_IMAGES * len(MEASURES) * len(MPRT_NORMALIZATIONS)
    cells = table.groupby(["step", "image", "measure", "normalization"]).size()
    assert (cells == 1).all()
    assert set(table["measure"]) == set(MEASURES) and set(table["normalization"]) == set(MPRT_NORMALIZATIONS)
    layers = table.drop_duplicates("step").set_index("step")["layers"]
    assert [layers[k].split(";") for k in range(1, len(schedule) + 1)] == schedule
    assert set(table["image"]) == set(range(N_IMAGES))


def test_values_against_scipy_spearman_and_numpy_mse_per_image(finished, demo, images):
    table, _, _ = finished
    schedule = block_rule_schedule(demo, "demo")
    step, image = 3, 4
    target = demo(images[image:image + 1]).argmax(1)
    original = gradient(demo, images[image:image + 1], target)[0].double().numpy()
    randomised = randomised_copy(demo, schedule, step, seed=5).eval()
    maps = gradient(randomised, images[image:image + 1], target)[0].double().numpy()
    rows = table[(table["step"] == step) & (table["image"] == image)].set_index(["measure", "normalization"])
    rho = scipy.stats.spearmanr(original.ravel(), maps.ravel()).statistic
    rho_abs = scipy.stats.spearmanr(np.abs(original).ravel(), np.abs(maps).ravel()).statistic
    unit = lambda m: m / np.sqrt(np.mean(m**2))  # noqa: E731 - second-moment normalisation, seed eq. 11
    peak = lambda m: m / np.abs(m).max()  # noqa: E731
    expected = {
        ("spearman", "second-moment"): rho, ("spearman", "max-abs"): rho,
        ("spearman-abs", "second-moment"): rho_abs, ("spearman-abs", "max-abs"): rho_abs,
        ("mse", "second-moment"): np.mean((unit(original) - unit(maps)) ** 2),
        ("mse", "max-abs"): np.mean((peak(original) - peak(maps)) ** 2),
    }
    for key, value in expected.items():
        assert rows.loc[key, "value"] == pytest.approx(value, rel=1e-5, abs=1e-9), key
    # the floor of Spearman at zero covariance is 0 (seed Theorem 3)
    assert (table.loc[table["measure"].str.startswith("spearman"), "noise_floor"] == 0).all()


def test_caller_model_is_untouched(demo, images, tmp_path):
    model = build_model("demo")  # a fresh network: the untouched-model check needs no particular weights
    with torch.no_grad():
        model.bn1.running_mean.fill_(0.25)
    model.train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    grads = [p.requires_grad for p in model.parameters()]
    _run(model, images[:2], tmp_path)
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == grads
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_results_do_not_depend_on_chunking(finished, demo, images, tmp_path):
    table, _, _ = finished
    whole, _ = _run(demo, images, tmp_path, batch_size=N_IMAGES)
    # float32 convolutions round differently for different batch sizes: agreement to float32 precision
    np.testing.assert_allclose(whole["value"], table["value"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(whole["noise_floor"], table["noise_floor"], rtol=1e-4, atol=1e-6)


def test_scoring_in_small_stacks_gives_the_same_table(finished, demo, images, tmp_path, monkeypatch):
    import empirical.experiments.randomization as randomization

    monkeypatch.setattr(randomization, "_PAIRS_PER_CALL", 5)  # 2 images a chunk: 2 steps a call, last alone
    table, _, _ = finished
    small, _ = _run(demo, images, tmp_path)
    assert small.to_csv(index=False) == table.to_csv(index=False)


def test_resumes_from_finished_chunks_with_identical_bytes(finished, demo, images, tmp_path, monkeypatch):
    table, store, out = finished
    calls = []
    explain = randomization.explain

    def counted(method, model, x, target, draw_key):  # the same method: chunks are keyed by its code too
        calls.append(len(x))
        return explain(method, model, x, target, draw_key)

    monkeypatch.setattr(randomization, "explain", counted)
    # a run killed after its first chunk: copy that chunk only, then start again
    keys = store.keys()
    partial = ChunkStore(tmp_path, "randomization")
    partial.directory.mkdir(parents=True)
    (partial.directory / f"{keys[0]}.csv").write_bytes((store.directory / f"{keys[0]}.csv").read_bytes())
    resumed, resumed_store = _run(demo, images, tmp_path)
    steps = len(block_rule_schedule(demo, "demo"))
    assert len(calls) == (len(keys) - 1) * (1 + steps)  # the finished chunk is not recomputed
    for key in keys:
        resumed_bytes = (resumed_store.directory / f"{key}.csv").read_bytes()
        assert resumed_bytes == (store.directory / f"{key}.csv").read_bytes()
    assert resumed.to_csv(index=False) == table.to_csv(index=False)


@pytest.mark.filterwarnings("ignore:pair\\(s\\).*constant map")
def test_diverging_maps_give_nan_scores_and_a_warning(demo, images, tmp_path):
    def diverging(model, x, target):
        maps = gradient(model, x, target)
        if model.fc.bias.abs().sum() == 0:  # a randomised classifier: blow up the second image's map
            maps[1, 0, 0] = float("inf")
        return maps

    with pytest.warns(RuntimeWarning, match="NaN or infinite values in 1 map"):
        table, _ = _run(demo, images[:3], tmp_path, batch_size=3, methods=(diverging,))
    assert table.loc[table["image"] == 1, "value"].isna().all()
    assert table.loc[table["image"] != 1, "value"].notna().all()


def test_labels_are_the_explained_class(demo, images, tmp_path):
    seen = []

    def recording(model, x, target):
        seen.append(target.clone())
        return gradient(model, x, target)

    labels = torch.tensor([1, 7, 3, 0, 9])
    _run(demo, images, tmp_path, labels=labels, batch_size=N_IMAGES, methods=(recording,))
    assert all(torch.equal(target, labels) for target in seen)
    top = demo(images).argmax(1)
    seen.clear()
    _run(demo, images, tmp_path / "top", batch_size=N_IMAGES, methods=(recording,))
    assert all(torch.equal(target, top) for target in seen)


def test_named_method_runs_through_empirical_attribution(demo, images, tmp_path):
    table, _ = _run(demo, images[:2], tmp_path, methods=("gradient",), schedule="per-layer")
    assert set(table["method"]) == {"gradient"}
    assert table["value"].notna().all()
    assert table["step"].max() == len([n for n, m in demo.named_modules()
                                       if n and list(m.parameters(recurse=False))])


def test_per_method_options_reach_the_method(demo, images, tmp_path):
    from empirical.attribution import attribute

    options = {"integrated-gradients": {"steps": 3}}
    table, _ = _run(demo, images[:2], tmp_path, methods={"ig": "integrated-gradients"},
                    attribution_options=options)
    target = demo(images[:2]).argmax(1)
    randomised = randomised_copy(demo, block_rule_schedule(demo, "demo"), 1, seed=5).eval()
    for steps, agrees in ((3, True), (1, False)):
        a = attribute(demo, images[:2], target, "integrated-gradients", steps=steps).double()
        b = attribute(randomised, images[:2], target, "integrated-gradients", steps=steps).double()
        peak = lambda m: m / m.flatten(1).abs().amax(1).view(-1, 1, 1)  # noqa: E731
        expected = (peak(a) - peak(b)).square().mean(dim=(1, 2)).numpy()
        rows = table[(table["step"] == 1) & (table["measure"] == "mse")
                     & (table["normalization"] == "max-abs")]
        assert set(rows["method"]) == {"ig"}
        assert np.allclose(rows.sort_values("image")["value"], expected, rtol=1e-5) == agrees


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"images": torch.rand(3, 16, 16)}, "images must be a float tensor"),
    ({"images": torch.zeros(0, 3, 16, 16)}, "at least one image"),
    ({"labels": torch.tensor([1, 2])}, r"labels must be an integer tensor of shape \(5,\)"),
    ({"labels": torch.rand(5)}, "labels must be an integer tensor"),
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"batch_size": True}, "batch_size must be a positive integer, got True"),
    ({"methods": []}, "methods must be a non-empty list"),
    ({"methods": "gradient"}, "methods must be a non-empty list"),
    ({"methods": ["no-such-method"]}, "method 'no-such-method' unknown"),
    ({"methods": [gradient, gradient]}, "distinct names"),
    ({"methods": ["gradient"], "attribution_options": {"gradient": 3}}, "attribution_options must map"),
    ({"methods": ["gradient"], "attribution_options": {"lrp-epsilon": {}}}, "not in methods"),
    ({"schedule": "bottom-up"}, "schedule must be 'blocks' or 'per-layer', got 'bottom-up'"),
    ({"spec": "vgg16"}, "arch must be one of"),
])
def test_bad_inputs_are_value_errors_naming_the_argument(demo, images, tmp_path, kwargs, message):
    arguments = {"images": images, "labels": None, "batch_size": 2, "methods": [gradient]} | kwargs
    store = ChunkStore(tmp_path, "randomization")
    with pytest.raises(ValueError, match=message):
        run_randomization(demo, arguments.pop("images"), arguments.pop("labels"), model_name="demo",
                          store=store, seed=0, device="cpu", progress=False, **arguments)
    assert store.keys() == []
