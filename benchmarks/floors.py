"""The floors: the network passes a stage cannot avoid, measured in plain torch and plain Zennit.

- ``forward``: one forward pass without autograd (each perturbation step, activation statistics);
- ``forward+input-gradient``: a forward pass with autograd and the backward pass to the input of the
  explained logit (gradient-type maps; integrated gradients needs one of these per step);
- ``zennit-epsilon-plus-flat``: a Zennit ``EpsilonPlusFlat`` attribution through
  ``zennit.attribution.Gradient`` with the model's standard canonizer (the LRP backend's own cost);
- ``zennit-epsilon-alpha2-beta1-flat``: Zennit's ``EpsilonAlpha2Beta1Flat``, the floor of the rules that
  weigh positive and negative contributions separately (alpha-beta, adaptive beta, eq. 1-2 and 52): they
  need four modified convolutions per layer (x+ w+, x- w-, x+ w-, x- w+) where the z+ rule of
  ``EpsilonPlusFlat`` needs two, so against that floor they could reach about half;
- ``forward+sorted-inputs``: a forward pass whose pre-hooks sort the input of every convolution and linear
  layer per image with numpy (activation statistics read 18 exact quantiles per level from these order
  statistics; a forward pass alone leaves out the selection over every activation value, which on the
  narrow demo network costs about as much as the pass itself);
- ``random-fill``: drawing one uniform (N, H, W) map (the random baseline needs no network at all).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from benchmarks.timing import Timing, measure
from benchmarks.workload import Workload

FLOORS = ("forward", "forward+input-gradient", "zennit-epsilon-plus-flat", "zennit-epsilon-alpha2-beta1-flat",
          "forward+sorted-inputs", "random-fill")


def forward_pass(workload: Workload) -> Callable[[], torch.Tensor]:
    model, images = workload.model, workload.images

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(images)
    return run


def forward_sorting_inputs(workload: Workload) -> Callable[[], list]:
    import numpy as np

    model, images = workload.model, workload.images
    layers = [module for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]

    def run() -> list:
        ordered = []

        def hook(_module, inputs):
            values = inputs[0].detach().reshape(inputs[0].shape[0], -1)
            ordered.append(np.sort(values.cpu().numpy(), axis=1))

        handles = [layer.register_forward_pre_hook(hook) for layer in layers]
        try:
            with torch.no_grad():
                model(images)
        finally:
            for handle in handles:
                handle.remove()
        return ordered
    return run


def input_gradient_pass(workload: Workload) -> Callable[[], torch.Tensor]:
    model, images, targets = workload.model, workload.images, workload.targets
    rows = torch.arange(images.shape[0], device=images.device)

    def run() -> torch.Tensor:
        x = images.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x)[rows, targets].sum(), x)
        return grad
    return run


def standard_canonizers(model: nn.Module) -> list:
    """Zennit's canonizers for this architecture: ResNet's own for torchvision ResNets (and the demo
    network, built from torchvision blocks), batch-norm merging of sequences otherwise (Zennit has no
    DenseNet or EfficientNet canonizer)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    if any(isinstance(module, BasicBlock | Bottleneck) for module in model.modules()):
        return [ResNetCanonizer()]
    return [SequentialMergeBatchNorm()]


def one_hot_outputs(workload: Workload) -> torch.Tensor:
    """The one-hot output gradient that selects each image's explained class (N, classes)."""
    with torch.no_grad():
        classes = workload.model(workload.images[:1]).shape[1]
    return nn.functional.one_hot(workload.targets, classes).to(workload.images.dtype)


def zennit_attribution(workload: Workload, composite_factory: Callable[[list], object]):
    """A callable running one Zennit attribution of the whole batch with ``composite_factory(canonizers)``.

    The composite is registered once per call and removed again (the ``with`` block), as a user would.
    """
    from zennit.attribution import Gradient

    model, images = workload.model, workload.images
    outputs = one_hot_outputs(workload)

    def run() -> torch.Tensor:
        composite = composite_factory(standard_canonizers(model))
        with Gradient(model=model, composite=composite) as attributor:
            _, relevance = attributor(images, outputs)
        return relevance
    return run


def zennit_epsilon_plus_flat(workload: Workload) -> Callable[[], torch.Tensor]:
    from zennit.composites import EpsilonPlusFlat

    return zennit_attribution(workload, lambda canonizers: EpsilonPlusFlat(canonizers=canonizers))


def zennit_epsilon_alpha2_beta1_flat(workload: Workload) -> Callable[[], torch.Tensor]:
    from zennit.composites import EpsilonAlpha2Beta1Flat

    return zennit_attribution(workload, lambda canonizers: EpsilonAlpha2Beta1Flat(canonizers=canonizers))


def random_fill(workload: Workload) -> Callable[[], torch.Tensor]:
    n, _, height, width = workload.images.shape
    generator = torch.Generator(device=workload.device).manual_seed(0)

    def run() -> torch.Tensor:
        return torch.rand(n, height, width, generator=generator, device=workload.device)
    return run


_FLOOR_BUILDERS = {
    "forward": forward_pass,
    "forward+input-gradient": input_gradient_pass,
    "zennit-epsilon-plus-flat": zennit_epsilon_plus_flat,
    "zennit-epsilon-alpha2-beta1-flat": zennit_epsilon_alpha2_beta1_flat,
    "forward+sorted-inputs": forward_sorting_inputs,
    "random-fill": random_fill,
}


def floor_callable(name: str, workload: Workload) -> Callable[[], torch.Tensor]:
    """The callable of floor ``name`` (one of :data:`FLOORS`) on this workload's batch."""
    if name not in _FLOOR_BUILDERS:
        raise ValueError(f"floor must be one of {FLOORS}, got {name!r}")
    return _FLOOR_BUILDERS[name](workload)


def measure_floors(workload: Workload, *, warmup: int, repeats: int) -> dict[str, Timing]:
    """Images per second of each floor in :data:`FLOORS` on this workload (one batch per call)."""
    return {
        name: measure(build(workload), items_per_call=workload.batch_size, device=workload.device,
                      warmup=warmup, repeats=repeats)
        for name, build in _FLOOR_BUILDERS.items()
    }
