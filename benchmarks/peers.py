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

#: the speed-up over a peer set as target, by the stage compared
SPEEDUP_TARGETS = {"faithfulness patch 8": 10.0, "faithfulness patch 15": 10.0,
                   "randomisation step ssim+spearman": 20.0}


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


def replace_from_blurred_copy(arr: np.ndarray, indices: np.ndarray, *, blurred: np.ndarray,
                              **kwargs) -> np.ndarray:
    """A batched perturbation for Quantus's RegionPerturbation: the pixels at ``indices`` (N, I) of the
    flattened padded batch ``arr`` (N, F) take their values from ``blurred`` (N, F), a blurred copy of the
    original padded batch made once, as the suite's faithfulness does."""
    perturbed = arr.copy()
    rows = np.arange(arr.shape[0])[:, None]
    perturbed[rows, indices] = blurred[rows, indices]
    return perturbed


def blurred_padded_copy(x: np.ndarray, patch_size: int, blur_kernel: int) -> np.ndarray:
    """The box-blurred copy of ``x`` (N, C, H, W), borders mirrored as
    ``empirical.experiments.faithfulness.blur``, padded (edge mode) to the shape Quantus's RegionPerturbation
    pads to; flattened to (N, F)."""
    from scipy.ndimage import uniform_filter

    blurred = uniform_filter(x, size=(1, 1, blur_kernel, blur_kernel), mode="mirror")
    pads = []
    for side in x.shape[-2:]:
        total = (-side) % patch_size  # Quantus's get_padding_size: floor half before, ceil half after
        pads.append((total // 2, total - total // 2))
    return np.pad(blurred, ((0, 0), (0, 0), *pads), mode="edge").reshape(len(x), -1)


def _quantus_region_task(patch_size: int) -> PeerTask:
    def build(workload: Workload, config: BenchConfig, reference: torch.Tensor):
        import quantus

        x, y, a = _peer_images(workload, config, reference)
        metric = quantus.RegionPerturbation(
            patch_size=patch_size, regions_evaluation=config.faithfulness_steps, order="morf",
            perturb_func=replace_from_blurred_copy, normalise=False, disable_warnings=True,
            perturb_func_kwargs={"blurred": blurred_padded_copy(x, patch_size, config.blur_kernel)})

        def run():
            return metric(model=workload.model, x_batch=x, y_batch=y, a_batch=a, device=str(workload.device),
                          batch_size=len(x), softmax=True, channel_first=True)
        return run, len(x)

    return PeerTask("quantus", "RegionPerturbation", f"faithfulness patch {patch_size}", "image", build,
                    detail="patches from a blurred copy made once (vectorised), softmax, maps given")


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

    return PeerTask("quantus", f"MPRT ({similarity})", "randomisation step ssim+spearman", "layer-image",
                    build, detail="top-down, each module with reset_parameters; Saliency, quantus.explain")


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
