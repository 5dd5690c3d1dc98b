"""The same work done by the peers: Captum and Zennit attributions, Quantus RegionPerturbation and MPRT.

Each peer is a :class:`PeerTask`: the stage of ours it is compared with, the unit of its rate (images,
or layer-images for MPRT, which re-initialises one layer a step), and a builder of the callable to time.
A peer that is not installed is "not available"; one that crashes (Quantus 0.6.0 with numpy 2 does in
places) is reported with its error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.config import BenchConfig
from benchmarks.floors import one_hot_outputs, standard_canonizers, zennit_attribution
from benchmarks.workload import Workload

#: the speed-up over a peer that the issue sets as target, by the stage compared
SPEEDUP_TARGETS = {"faithfulness patch 8": 10.0, "faithfulness patch 15": 10.0, "randomisation step": 20.0}


@dataclass(frozen=True)
class PeerTask:
    """``build(workload, config, reference)`` -> (callable, work units one call does)."""

    backend: str
    name: str
    stage: str
    unit: str
    build: Callable[[Workload, BenchConfig, torch.Tensor], tuple[Callable[[], object], float]]
    detail: str = ""


def _captum_task(method: str, captum_class: str, **call_options) -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import captum.attr

        explainer = getattr(captum.attr, captum_class)(workload.model)
        options = dict(call_options)
        if method == "integrated-gradients":
            # the same interpolation steps, in passes as large as ours (about 256 images)
            batch = workload.batch_size
            options.update(n_steps=config.ig_steps, internal_batch_size=batch * max(1, 256 // batch))
        images, targets = workload.images, workload.targets
        return (lambda: explainer.attribute(images, target=targets, **options)), workload.batch_size

    return PeerTask("captum", captum_class, f"attribution {method}", "image", build)


def _zennit_composite_task(method: str, composite: str, **composite_options) -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import zennit.composites

        factory = getattr(zennit.composites, composite)
        options = dict(composite_options)
        if composite == "EpsilonGammaBox":
            options.update(low=workload.images.min().item(), high=workload.images.max().item())
        run = zennit_attribution(workload, lambda canonizers: factory(canonizers=canonizers, **options))
        return run, workload.batch_size

    return PeerTask("zennit", composite, f"attribution {method}", "image", build)


def _zennit_epsilon_task() -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        from zennit.composites import LayerMapComposite
        from zennit.rules import Epsilon, Pass
        from zennit.types import Activation, Convolution, Linear

        def factory(canonizers):
            layer_map = [(Activation, Pass()), (Convolution, Epsilon()), (Linear, Epsilon())]
            return LayerMapComposite(layer_map=layer_map, canonizers=canonizers)
        return zennit_attribution(workload, factory), workload.batch_size

    return PeerTask("zennit", "LayerMapComposite(Epsilon)", "attribution lrp-epsilon", "image", build)


def _zennit_gradient_task(method: str, attributor: str, **attributor_options) -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import zennit.attribution

        options = dict(attributor_options)
        if method == "integrated-gradients":
            options["n_iter"] = config.ig_steps
        model, images = workload.model, workload.images
        outputs = one_hot_outputs(workload)

        def run():
            with getattr(zennit.attribution, attributor)(model=model, **options) as explain:
                return explain(images, outputs)[1]
        return run, workload.batch_size

    return PeerTask("zennit", attributor, f"attribution {method}", "image", build)


def _peer_images(workload: Workload, config: BenchConfig, reference: torch.Tensor):
    """The first ``peer_images`` images, targets and reference maps, as numpy for Quantus."""
    count = min(config.peer_images, workload.batch_size)
    x = workload.images[:count].detach().cpu().numpy().astype(np.float32)
    y = workload.targets[:count].cpu().numpy()
    a = reference[:count, None].detach().cpu().numpy().astype(np.float32)
    return x, y, a


def blurred_patch_replacement(arr: np.ndarray, indices: np.ndarray, *, padded_shape, blur_kernel_size=15,
                              **kwargs) -> np.ndarray:
    """A batched perturbation for Quantus's RegionPerturbation that uses Quantus's own blur.

    Quantus 0.6.0 hands its batched perturbation (N, features) arrays and (N, indices) flat indices;
    its blur (``baseline_replacement_by_blur``) is written for one (C, H, W) array, so it runs per image.
    """
    from quantus.functions.perturb_func import baseline_replacement_by_blur

    perturbed = np.empty_like(arr)
    for row in range(arr.shape[0]):
        image = arr[row].reshape(padded_shape)
        where = np.unravel_index(indices[row], padded_shape)
        perturbed[row] = baseline_replacement_by_blur(
            image, where, indexed_axes=(0, 1, 2), blur_kernel_size=blur_kernel_size).reshape(-1)
    return perturbed


def _quantus_region_task(patch_size: int) -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import quantus

        x, y, a = _peer_images(workload, config, reference)
        height, width = x.shape[-2:]
        pad = [(-side) % patch_size for side in (height, width)]
        metric = quantus.RegionPerturbation(
            patch_size=patch_size, regions_evaluation=config.faithfulness_steps, order="morf",
            perturb_func=blurred_patch_replacement, normalise=False, disable_warnings=True,
            perturb_func_kwargs={"padded_shape": (x.shape[1], height + pad[0], width + pad[1]),
                                 "blur_kernel_size": config.blur_kernel})

        def run():
            return metric(model=workload.model, x_batch=x, y_batch=y, a_batch=a, device=str(workload.device),
                          batch_size=len(x), softmax=True, channel_first=True)
        return run, len(x)

    return PeerTask("quantus", "RegionPerturbation", f"faithfulness patch {patch_size}", "image", build,
                    detail="blurred patches (Quantus's own blur), softmax, maps given")


def _quantus_mprt_task(similarity: str) -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import quantus

        x, y, _ = _peer_images(workload, config, reference)
        similarity_func = getattr(quantus.similarity_func, similarity)
        layers = sum(1 for _, module in workload.model.named_modules() if hasattr(module, "reset_parameters"))
        metric = quantus.MPRT(similarity_func=similarity_func, layer_order="top_down", disable_warnings=True)

        def run():
            return metric(model=workload.model, x_batch=x, y_batch=y, a_batch=None,
                          device=str(workload.device), explain_func=quantus.explain,
                          explain_func_kwargs={"method": "Saliency"}, batch_size=len(x), channel_first=True)
        return run, len(x) * layers

    return PeerTask("quantus", f"MPRT ({similarity})", "randomisation step", "layer-image", build,
                    detail="top-down over every module with reset_parameters; Saliency via quantus.explain")


def peer_tasks() -> list[PeerTask]:
    """Every peer measurement, in table order."""
    return [
        _captum_task("gradient", "Saliency", abs=False),
        _captum_task("gradient-x-input", "InputXGradient"),
        _captum_task("integrated-gradients", "IntegratedGradients"),
        _captum_task("guided-backprop", "GuidedBackprop"),
        _captum_task("lrp-epsilon", "LRP"),
        _zennit_gradient_task("gradient", "Gradient"),
        _zennit_gradient_task("integrated-gradients", "IntegratedGradients"),
        _zennit_composite_task("guided-backprop", "GuidedBackprop"),
        _zennit_epsilon_task(),
        _zennit_composite_task("lrp-alpha2beta1", "EpsilonAlpha2Beta1"),
        _zennit_composite_task("lrp-alpha1beta0", "EpsilonPlus"),
        _zennit_composite_task("epsilon-plus-flat", "EpsilonPlusFlat"),
        _zennit_composite_task("epsilon-gamma-box", "EpsilonGammaBox"),
        _quantus_region_task(8),
        _quantus_region_task(15),
        _quantus_mprt_task("correlation_spearman"),
        _quantus_mprt_task("ssim"),
    ]


def standard_canonizer_names(workload: Workload) -> str:
    return ", ".join(type(canonizer).__name__ for canonizer in standard_canonizers(workload.model))
