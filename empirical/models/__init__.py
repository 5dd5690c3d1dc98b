"""Networks of the audit and their preprocessing (seed section A.1).

``load_model`` builds ResNet-50, DenseNet-121 (torchvision), EfficientNet-B0 (efficientnet-pytorch) or the
small ``demo`` network and loads weights offline: from a file, from the torch hub cache, or explicitly random.
Missing or mismatched weights raise one clear error; a random model is never returned silently.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from empirical._checks import device as checked_device
from empirical.models.demo_net import DEMO_INPUT_RANGE, DemoResNet, digits_to_demo_input

__all__ = [
    "DEMO_INPUT_RANGE",
    "DEMO_WEIGHTS_PATH",
    "DemoResNet",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_NAMES",
    "architecture_of",
    "build_model",
    "digits_to_demo_input",
    "find_weights",
    "imagenet_transform",
    "input_bounds",
    "layer_names",
    "load_model",
    "weights_checksum",
]

MODEL_NAMES = ("resnet50", "densenet121", "efficientnet-b0", "demo")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_SIZE = 256
CROP_SIZE = 224
DEMO_WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "demo_digits.pt"

# file-name patterns of the published checkpoints inside torch.hub.get_dir()/checkpoints/
_HUB_PATTERNS = {
    "resnet50": "resnet50-*.pth",
    "densenet121": "densenet121-*.pth",
    "efficientnet-b0": "efficientnet-b0-*.pth",
}
# torchvision's DenseNet checkpoints predate module names without dots ("norm.1" -> "norm1")
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def imagenet_transform(resize: int = RESIZE_SIZE, crop: int = CROP_SIZE):
    """The seed's preprocessing (A.1): resize the shorter side to 256, centre crop 224, ImageNet mean/std.

    Returns a torchvision transform from a PIL image to a float tensor (3, crop, crop).
    """
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(resize),
        transforms.CenterCrop(crop),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def input_bounds(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest and highest valid input value per colour channel, shape (3,) each, for the box (z^B) rule.

    ImageNet networks see normalised pixels: (0 - mean)/std .. (1 - mean)/std; ``demo`` sees [0, 1].
    """
    _check_name(name)
    if name == "demo":
        low, high = DEMO_INPUT_RANGE
        return torch.full((3,), low), torch.full((3,), high)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return (0.0 - mean) / std, (1.0 - mean) / std


def build_model(name: str, *, rng: torch.Generator | int | None = None) -> nn.Module:
    """The architecture ``name`` with freshly initialised (random) weights, in eval mode on the CPU.

    Initialisation is each library's own; ``rng`` (a ``torch.Generator`` or an int seed) makes it
    reproducible without touching torch's global random state (None: torch's global generator).
    """
    _check_name(name)
    if rng is None:
        return _construct(name)
    if isinstance(rng, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    elif isinstance(rng, int) and not isinstance(rng, bool):
        seed = rng
    else:
        raise ValueError(f"rng must be a torch.Generator, an int seed or None, got {rng!r}")
    # the libraries initialise from the global generator: fork it so the caller's state is left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _construct(name)


def _construct(name: str) -> nn.Module:
    if name == "resnet50":
        from torchvision.models import resnet50

        model = resnet50(weights=None)
    elif name == "densenet121":
        from torchvision.models import densenet121

        model = densenet121(weights=None)
    elif name == "efficientnet-b0":
        from efficientnet_pytorch import EfficientNet

        model = EfficientNet.from_name("efficientnet-b0")
        # the plain swish is an ordinary autograd graph that hooks and canonizers can see; same values
        model.set_swish(memory_efficient=False)
    else:
        model = DemoResNet()
    return model.eval()


def load_model(name: str, weights=None, device="cpu", *,
               rng: torch.Generator | int | None = None) -> nn.Module:
    """Build network ``name`` (one of ``MODEL_NAMES``) with its weights; in eval mode on ``device``.

    ``weights``: a path to a state dict or checkpoint (a dict holding ``state_dict``/``model`` is unwrapped),
    ``"random"`` for an explicit random initialisation, or None: the torchvision/efficientnet file in
    ``torch.hub.get_dir()/checkpoints/`` (for ``demo``: the shipped
    ``empirical/models/weights/demo_digits.pt``).
    Raises FileNotFoundError when no weights are found and ValueError when they do not fit the network.
    ``rng`` seeds the random initialisation (see ``build_model``).
    """
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be a path, 'random' or None, got {weights!r} "
                         f"of type {type(weights).__name__}")
    device = checked_device(device)
    model = build_model(name, rng=rng)
    if isinstance(weights, str) and weights == "random":
        return model.to(device)
    path = _find_weights(name) if weights is None else Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file for {name!r} not found: {path} ({_how_to_supply(name)})")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types; one message for the user
        raise ValueError(
            f"could not read weights for {name!r} from {path}: {error} ({_how_to_supply(name)})"
        ) from error
    state_dict = _unwrap_state_dict(checkpoint, path)
    if name == "densenet121":
        state_dict = _remap_densenet_keys(state_dict)
    problem = _mismatch(model, state_dict)
    if problem:
        raise ValueError(f"weights in {path} do not fit {name!r}: {problem} ({_how_to_supply(name)})")
    model.load_state_dict(state_dict, strict=True)
    return model.eval().to(device)


def architecture_of(model: nn.Module) -> str:
    """The name in ``MODEL_NAMES`` of ``model``'s architecture; ValueError for any other network."""
    from efficientnet_pytorch import EfficientNet
    from torchvision.models import DenseNet, ResNet

    if isinstance(model, DemoResNet):
        return "demo"
    if isinstance(model, ResNet) and [len(layer) for layer in (model.layer1, model.layer2, model.layer3,
                                                                 model.layer4)] == [3, 4, 6, 3]:
        return "resnet50"
    if isinstance(model, DenseNet) and sum(1 for n, _ in model.features.named_children()
                                           if n.startswith("denseblock")) == 4:
        blocks = [len(getattr(model.features, f"denseblock{k}")) for k in range(1, 5)]
        if blocks == [6, 12, 24, 16]:
            return "densenet121"
    if isinstance(model, EfficientNet) and len(model._blocks) == 16:
        return "efficientnet-b0"
    raise ValueError(f"model of type {type(model).__name__} is none of {MODEL_NAMES}")


def weights_checksum(path) -> str:
    """SHA-256 hex digest of the file at ``path`` (for run manifests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def layer_names(model: nn.Module, types=(nn.Conv2d, nn.Linear)) -> list[str]:
    """Names of the modules of ``model`` that are instances of ``types``, in registration (forward) order."""
    return [name for name, module in model.named_modules() if isinstance(module, types)]


def _check_name(name) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model name {name!r}; known: {', '.join(MODEL_NAMES)}")


def _hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(name: str) -> Path:
    """The weights file ``load_model(name)`` would read without ``weights``: the shipped demo file, or the
    newest-named matching checkpoint in the torch hub cache. FileNotFoundError (saying where it looked)
    when the hub cache holds none."""
    _check_name(name)
    return _find_weights(name)


def _find_weights(name: str) -> Path:
    if name == "demo":
        return DEMO_WEIGHTS_PATH
    directory = _hub_checkpoint_dir()
    candidates = sorted(directory.glob(_HUB_PATTERNS[name])) if directory.is_dir() else []
    if not candidates:
        raise FileNotFoundError(
            f"no weights for {name!r}: looked for {_HUB_PATTERNS[name]} in {directory} "
            f"({_how_to_supply(name)})"
        )
    return candidates[-1]


def _how_to_supply(name: str) -> str:
    if name == "demo":
        return ("train the demo network on scikit-learn digits to create "
                "empirical/models/weights/demo_digits.pt, "
                "pass weights=PATH, or weights='random' for an explicitly random network")
    return (f"download the published {name} checkpoint into {_hub_checkpoint_dir()} on a machine with "
            "network access, pass weights=PATH to a state dict, or weights='random' for an explicitly "
            "random network")


def _unwrap_state_dict(checkpoint, path) -> dict:
    if isinstance(checkpoint, Mapping):
        for key in ("state_dict", "model"):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                checkpoint = checkpoint[key]
                break
    is_state_dict = isinstance(checkpoint, Mapping) and all(
        isinstance(value, torch.Tensor) for value in checkpoint.values()
    )
    if not is_state_dict:
        raise ValueError(f"{path} holds no state dict (a mapping from parameter names to tensors)")
    # checkpoints saved from DataParallel/DistributedDataParallel prefix every key with "module."
    if checkpoint and all(key.startswith("module.") for key in checkpoint):
        checkpoint = {key[len("module."):]: value for key, value in checkpoint.items()}
    return dict(checkpoint)


def _mismatch(model: nn.Module, state_dict: dict) -> str:
    """A short description of missing, unexpected and misshapen keys; empty when the weights fit."""
    expected = model.state_dict()
    # batch-norm counters are absent from older checkpoints and restored by torch itself
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    misshapen = [f"{k} {tuple(state_dict[k].shape)} instead of {tuple(v.shape)}"
                 for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("size mismatch", misshapen)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            parts.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
    return "; ".join(parts)


def _remap_densenet_keys(state_dict: dict) -> dict:
    remapped = {}
    for key, value in state_dict.items():
        match = _DENSENET_OLD_KEY.match(key)
        remapped[match.group(1) + match.group(2) if match else key] = value
    return remapped
