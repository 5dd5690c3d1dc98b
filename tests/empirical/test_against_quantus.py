"""The public API (``empirical.mprt``, ``empirical.faithfulness``) against Quantus 0.6.0's ``MPRT`` and
``RegionPerturbation`` on the same trained network (the packaged demo ResNet), the same digit images, the
same precomputed maps (``a_batch``; ``explain_func`` returns ``empirical.explain``'s maps) and the same
settings; docs/quantus-agreement.md states every setting, the measured differences and why definitions
differ where they do.

Where the definitions are made to agree, everything is deterministic and the differences are rounding:

- per-layer MPRT, Spearman: Quantus's layer generator re-initialises each layer by its
  ``reset_parameters`` after ``torch.manual_seed(seed + 1)``; ours draws He-normal weights and zero biases
  from a generator keyed by (seed, step) (supplement A.1). The test gives each convolution and linear layer
  of the model handed to Quantus a ``reset_parameters`` that loads our draws for that step, and leaves
  batch-norms to torch's own reset, which ours repeats. Same weights, same maps, average-rank Spearman on
  both sides: 1e-9 absolute (measured 1e-16; one swapped pair of ranks among 1024 pixels moves rho by
  ~1e-8 and fails).
- Quantus's default ``normalise=True`` divides a whole batch by its largest |value| in float32 before
  ranking; a rounded division can merge two near-equal values into a tie, which moves rho by ~1e-8:
  1e-6 absolute (measured 1e-16: no tie arose).
- per-layer MPRT, MSE after max-abs normalisation: float32 maps on both sides, Quantus averages in float32,
  ours in float64; one image a batch on both sides: 1e-6 relative (measured 1e-7).
- region perturbation (MoRF, LeRF): Quantus records ``score(x) - score(x_k)`` for k = 1..S, we record
  ``score(x_k)`` for k = 0..S; same grid, same patches, our blurred copy (checked against
  ``scipy.ndimage.uniform_filter``) as Quantus's baseline; float32 softmax of forward passes batched
  differently, whose logits differ in the last bits: 5e-6 absolute on each point and on the area
  (measured 7e-7 on a curve point, 2e-7 on an area).

The module is skipped when Quantus is absent (it is in the ``test`` extra).
"""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest
import scipy.ndimage
import torch
from torch import nn

import empirical
from empirical.experiments.faithfulness import blur
from empirical.experiments.randomization import step_state
from empirical.experiments.schedules import per_layer_schedule
from empirical.models.demo_net import digits_to_demo_input

quantus = pytest.importorskip("quantus", reason="Quantus is not installed (pip install quantus==0.6.0)")
if quantus.__version__ != "0.6.0":
    pytest.skip(f"the agreement is stated for Quantus 0.6.0, found {quantus.__version__}",
                allow_module_level=True)
from quantus.functions.loss_func import mse as quantus_mse  # noqa: E402
from quantus.helpers.model.pytorch_model import PyTorchModel  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The settings for perturbing input:UserWarning")

SPEARMAN_TOLERANCE = 1e-9
NORMALISED_SPEARMAN_TOLERANCE = 1e-6
MSE_RELATIVE_TOLERANCE = 1e-6
CURVE_TOLERANCE = 5e-6
SEED = 0


@pytest.fixture(scope="module")
def demo():
    """The packaged demo network (trained on digits), 6 digits of sklearn's bundled set and their classes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits_to_demo_input(digits.images[[0, 11, 22, 33, 44, 55]])
    targets = torch.as_tensor(digits.target[[0, 11, 22, 33, 44, 55]]).long()
    return empirical.load("demo"), images, targets


def _explain_func(method="gradient"):
    """``empirical.explain`` as Quantus calls an explain_func: numpy in, numpy (N, 1, H, W) out."""

    def explain(model, inputs, targets, **kwargs):
        x, y = torch.as_tensor(np.asarray(inputs)), torch.as_tensor(np.asarray(targets)).long()
        return empirical.explain(model, x, y, method).numpy()[:, None]

    return explain


def with_our_draws(model: nn.Module, *, seed: int) -> nn.Module:
    """A copy of ``model`` whose convolutions and linear layers, when Quantus calls ``reset_parameters``,
    take the weights our per-layer schedule draws for that layer's step. Bound methods survive Quantus's
    ``deepcopy`` bound to the copied module."""
    twin = copy.deepcopy(model)
    for step, (name,) in enumerate(per_layer_schedule(model), start=1):
        module = twin.get_submodule(name)
        if not isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            continue  # batch-norms: torch's reset (unit scale, zero shift, fresh statistics) is ours too

        def reset(self, name=name, step=step):
            with torch.no_grad():
                for key, value in step_state(model, [name], seed=seed, step=step).items():
                    getattr(self, key.rsplit(".", 1)[1]).copy_(value)

        module.reset_parameters = types.MethodType(reset, module)
    return twin


def quantus_mprt(model, images, targets, maps, method="gradient", **settings):
    """Quantus's top-down MPRT on our draws; {layer: scores (N,)} with ``"original"`` first. ``maps``
    None: Quantus explains the original model itself (batch by batch)."""
    batch_size = settings.pop("batch_size", len(images))
    metric = quantus.MPRT(layer_order="top_down", disable_warnings=True, **settings)
    with torch.random.fork_rng(devices=[]):  # Quantus seeds torch's global generator
        scores = metric(model=with_our_draws(model, seed=SEED), x_batch=images.numpy(),
                        y_batch=targets.numpy(), a_batch=None if maps is None else maps.numpy()[:, None],
                        explain_func=_explain_func(method), device="cpu", batch_size=batch_size)
    return {layer: np.asarray(values, dtype=float) for layer, values in scores.items()}


def our_mprt(model, images, targets, measure, normalization="max-abs", batch_size=16, method="gradient"):
    """``empirical.mprt`` per layer: {layer: scores (N,)} in step order."""
    table = empirical.mprt(model, images, targets, methods=[method], schedule="per-layer", seed=SEED,
                           batch_size=batch_size)
    rows = table[(table["measure"] == measure) & (table["normalization"] == normalization)]
    rows = rows.sort_values(["step", "image"])
    return {layer: group["value"].to_numpy() for layer, group in rows.groupby("layers", sort=False)}


def _max_difference(ours, theirs, *, relative=False):
    assert list(ours) == [layer for layer in theirs if layer != "original"]
    gaps = [np.abs(ours[k] - theirs[k]) / (np.abs(theirs[k]) if relative else 1.0) for k in ours]
    return float(np.max(gaps))


def test_layers_against_quantus_layer_generator(demo):
    """Which layers count, in which order: Quantus takes every module with ``reset_parameters``, we every
    module owning parameters; for convolutions, linear layers and affine batch-norms that is one set."""
    model, _, _ = demo
    wrapped = PyTorchModel(model, channel_first=True, softmax=False, device="cpu")
    with torch.random.fork_rng(devices=[]):
        theirs = [name for name, _ in wrapped.get_random_layer_generator(order="top_down", seed=SEED)]
    assert [[name] for name in theirs] == per_layer_schedule(model)
    assert len(theirs) == wrapped.random_layer_generator_length == 31


def test_layers_differ_from_quantus_for_a_parameter_free_batch_norm():
    """The known difference: a batch-norm without affine parameters has ``reset_parameters`` (Quantus
    resets its running statistics as a step of its own) but owns no parameters (we skip it)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 8, 8))
    wrapped = PyTorchModel(model.eval(), channel_first=True, softmax=False, device="cpu")
    with torch.random.fork_rng(devices=[]):
        theirs = [name for name, _ in wrapped.get_random_layer_generator(order="top_down", seed=SEED)]
    assert theirs == ["3", "1", "0"]
    assert per_layer_schedule(model) == [["3"], ["0"]]


@pytest.mark.parametrize(("absolute", "measure"), [(True, "spearman-abs"), (False, "spearman")])
def test_per_layer_mprt_against_quantus(demo, absolute, measure):
    """Signed maps (gradient x input; zero on the digits' black background, so many tied ranks, which
    both sides average)."""
    model, images, targets = demo
    maps = empirical.explain(model, images, targets, "gradient-x-input")
    theirs = quantus_mprt(model, images, targets, maps, "gradient-x-input", abs=absolute, normalise=False)
    ours = our_mprt(model, images, targets, measure, method="gradient-x-input")
    assert np.allclose(theirs["original"], 1.0)
    assert _max_difference(ours, theirs) <= SPEARMAN_TOLERANCE


@pytest.mark.slow
def test_per_layer_mprt_against_quantus_default_normalisation(demo):
    """Quantus's defaults (abs=True, normalise=True: a float32 division by the batch's max |value|) on the
    gradient's channel norm (non-negative)."""
    model, images, targets = demo
    maps = empirical.explain(model, images, targets, "gradient")
    theirs = quantus_mprt(model, images, targets, maps)
    ours = our_mprt(model, images, targets, "spearman-abs")
    assert _max_difference(ours, theirs) <= NORMALISED_SPEARMAN_TOLERANCE


@pytest.mark.slow
def test_per_layer_mprt_mse_against_quantus(demo):
    """MSE after max-abs normalisation of each signed map. Quantus normalises a batch by one maximum, so a
    map's score depends on its batch-mates; with batch_size=1 (and Quantus explaining the original model
    itself, as ``a_batch`` would be normalised as one batch) each map gets its own maximum, as ours. Ours
    runs one image a batch too: a convolution's float32 rounding depends on the batch size (maps of one
    image alone and in a batch of 6 differ by up to 1e-4 of their maximum), and MSE sees that."""
    model, images, targets = demo
    theirs = quantus_mprt(model, images, targets, None, abs=False, normalise=True,
                          similarity_func=quantus_mse, batch_size=1)
    ours = our_mprt(model, images, targets, "mse", normalization="max-abs", batch_size=1)
    assert np.allclose(theirs["original"], 0.0)
    assert _max_difference(ours, theirs, relative=True) <= MSE_RELATIVE_TOLERANCE


def replace_from_blurred(arr, indices, blurred, **kwargs):
    """A Quantus perturb_func: the pixels at ``indices`` (flat, per image) taken from ``blurred``."""
    perturbed = arr.copy()
    rows = np.arange(len(arr))[:, None]
    perturbed[rows, indices] = blurred.reshape(len(arr), -1)[rows, indices]
    return perturbed


def quantus_region_perturbation(model, images, targets, maps, *, order, patch_size, steps, blur_kernel):
    """Quantus's RegionPerturbation with the blurred copy as baseline: (N, steps) score drops."""
    blurred = scipy.ndimage.uniform_filter(images.numpy().astype(np.float64),
                                           size=(1, 1, blur_kernel, blur_kernel), mode="mirror")
    # Quantus pads the image (edge values) to a multiple of the patch size and perturbs the padded array
    padding = [(0, 0), (0, 0), *(quantus.helpers.utils.get_padding_size(n, patch_size)
                                 for n in images.shape[-2:])]
    blurred = np.pad(blurred, padding, mode="edge")
    metric = quantus.RegionPerturbation(
        patch_size=patch_size, regions_evaluation=steps, order=order, abs=False, normalise=True,
        perturb_func=replace_from_blurred, perturb_func_kwargs={"blurred": blurred.astype(np.float32)},
        disable_warnings=True)
    drops = metric(model=model, x_batch=images.numpy(), y_batch=targets.numpy(),
                   a_batch=maps.numpy()[:, None], softmax=True, device="cpu", batch_size=len(images))
    return np.asarray(drops, dtype=float)


def our_curves(model, images, targets, maps, *, order, patch_size, steps, blur_kernel):
    """``empirical.faithfulness`` on the same maps: scores (N, steps + 1) and areas (N,)."""
    settings = dict(methods={"given": lambda m, x, t: maps}, order=order, patch_sizes=(patch_size,),
                    steps=steps, blur_kernel=blur_kernel, seed=SEED, batch_size=len(images))
    table = empirical.faithfulness(model, images, targets, **settings)
    curves = table.sort_values(["image", "step"])["score"].to_numpy().reshape(len(images), steps + 1)
    area = empirical.faithfulness(model, images, targets, area=True, **settings)
    return curves, area.sort_values("image")["area"].to_numpy()


def area_from_quantus(drops, first_score):
    """Our area (trapezoid over steps 0..S / S) from Quantus's curve: its trapezoid over d_1..d_S (what
    ``get_auc_score`` computes) misses the segment from d_0 = 0 to d_1, and integrates drops."""
    steps = drops.shape[1]
    return first_score - (np.trapezoid(drops, axis=1) + drops[:, 0] / 2) / steps


def test_blurred_copy_against_scipy_uniform_filter(demo):
    _, images, _ = demo
    for kernel in (7, 15):
        expected = scipy.ndimage.uniform_filter(images.numpy().astype(np.float64),
                                                size=(1, 1, kernel, kernel), mode="mirror")
        assert np.abs(blur(images, kernel).numpy() - expected).max() <= 1e-6


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize(("patch_size", "steps"), [(4, 30), (8, 16)])
def test_region_perturbation_against_quantus(demo, order, patch_size, steps):
    model, images, targets = demo
    maps = empirical.explain(model, images, targets, "gradient")
    settings = dict(order=order, patch_size=patch_size, steps=steps, blur_kernel=7)
    drops = quantus_region_perturbation(model, images, targets, maps, **settings)
    curves, area = our_curves(model, images, targets, maps, **settings)
    assert np.abs((curves[:, :1] - curves[:, 1:]) - drops).max() <= CURVE_TOLERANCE
    assert np.abs(area - area_from_quantus(drops, curves[:, 0])).max() <= CURVE_TOLERANCE


@pytest.mark.slow
def test_region_perturbation_against_quantus_at_paper_settings():
    """Supplement A.1's blur 15, patch 8 and 30 regions on 224x224 inputs of a torchvision ResNet-18 with
    seeded random weights (224 is a multiple of 8: the grids agree; patch 15 would not, see the docs)."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = torchvision.models.resnet18(num_classes=10).eval()
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(SEED))
    targets = torch.tensor([3, 7])
    maps = empirical.explain(model, images, targets, "gradient")
    for order in ("morf", "lerf"):
        settings = dict(order=order, patch_size=8, steps=30, blur_kernel=15)
        drops = quantus_region_perturbation(model, images, targets, maps, **settings)
        curves, area = our_curves(model, images, targets, maps, **settings)
        assert np.abs((curves[:, :1] - curves[:, 1:]) - drops).max() <= CURVE_TOLERANCE
        assert np.abs(area - area_from_quantus(drops, curves[:, 0])).max() <= CURVE_TOLERANCE
