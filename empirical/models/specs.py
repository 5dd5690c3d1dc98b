"""One record per network: every fact the audit needs about it (Binder et al., CVPR 2023, supplement A.1,
A.3, I and J).

A :class:`NetworkSpec` says how to build the network and find its weights, how its images are preprocessed
(and hence the valid input box of the z^B rule), which module is its classifier, how the supplement's
top-down block schedule (A.1) cuts it into steps, which LRP canonisation it needs, and how many classes it
has. ``NETWORKS`` holds the built-in rows; ``spec_of(model)`` finds the row of a built-in network and
``network_spec(...)`` makes a row for a user's own ``nn.Module`` from the few facts it has (none are
required: without block boundaries it gets the per-layer schedule only, and LRP is canonised generically
from its module graph).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from empirical.models.demo_net import DEMO_INPUT_RANGE, DemoResNet

__all__ = [
    "IMAGENET_PREPROCESSING",
    "NETWORKS",
    "BlockRule",
    "NetworkSpec",
    "Preprocessing",
    "network_spec",
    "spec_of",
]


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize``, centre crop ``crop``, then ``(x - mean) / std`` per channel of a
    [0, 1] image (``resize`` None: the images arrive at their size and range, as the demo's digits)."""

    resize: int | None
    crop: int | None
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    interpolation: str = "bilinear"

    def transform(self):
        """A torchvision transform from a PIL image to a float tensor (3, crop, crop)."""
        from torchvision import transforms

        if self.resize is None or self.crop is None:
            raise ValueError("this network's images are not read from files (no resize and crop size)")
        mode = getattr(transforms.InterpolationMode, self.interpolation.upper())
        return transforms.Compose([
            transforms.Resize(self.resize, interpolation=mode),
            transforms.CenterCrop(self.crop),
            transforms.ToTensor(),
            transforms.Normalize(self.mean, self.std),
        ])

    def input_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest network input per colour channel, shape (3,) each: where pixel 0 and pixel 1
        land after the normalisation (the box of the z^B rule)."""
        mean, std = torch.tensor(self.mean), torch.tensor(self.std)
        return (0.0 - mean) / std, (1.0 - mean) / std


#: the supplement's preprocessing (A.1): shorter side 256, centre crop 224, ImageNet mean and std
IMAGENET_PREPROCESSING = Preprocessing(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class BlockRule:
    """The supplement's top-down rule (A.1): the classifier first, then each step everything (walking back in
    registration order) down to and including the next ``every``-th module whose name ends in ``suffix``;
    at most ``most`` boundaries (None: all of them)."""

    suffix: str
    every: int = 1
    most: int | None = None


@dataclass(frozen=True)
class NetworkSpec:
    """Every per-network fact of the audit.

    ``name``: the network's name in tables. ``classifier``: module name of the output layer (schedule
    step 1, the fine-tuned head of A.3). ``block_rule`` (built-in networks) or ``blocks`` (module-name
    prefixes, any network, output side or input side first) give the block schedule; neither: only the
    per-layer schedule. ``canonization``: the key of ``empirical.attribution.canonizers.CANONIZATIONS``
    ("generic" for any network: batch-norms merged from the module graph). ``preprocessing`` and
    ``input_range`` (a (low, high) pair of scalars or (3,) tensors; default from ``preprocessing``) give
    the input box. ``build`` makes the network with random weights; ``hub_pattern`` names its published
    checkpoint in the torch hub cache; ``recognise`` tells an instance of this network.
    """

    name: str
    classifier: str | None = None
    classes: int | None = None
    block_rule: BlockRule | None = None
    blocks: tuple[str, ...] | None = None
    canonization: str = "generic"
    preprocessing: Preprocessing | None = None
    input_range: tuple | None = None
    build: Callable[[], nn.Module] | None = field(default=None, repr=False)
    hub_pattern: str | None = None
    recognise: Callable[[nn.Module], bool] | None = field(default=None, repr=False)
    builtin: bool = False
    #: the weights file shipped with an installed package (checked before the hub cache), or None
    packaged_weights: Callable[[], object] | None = field(default=None, repr=False)
    #: the seed's figure of this network's levels (sections I and J); None: the seed does not show it
    seed_figure: str | None = None
    #: the levels that figure's panels (or its section's text) name, in the seed's numbering
    seed_levels_shown: tuple[int, ...] = ()

    def seed_level(self, level: int) -> int | None:
        """The seed's number of our ``level`` (sections I, J; figures 7-10), None without a counterpart.

        Ours: the input of the n-th convolution or linear layer the forward pass reaches, from 0. The seed
        numbers the levels of each network from 0 too ("DenseNet121 Level0", figure 7a) over "every layer
        of the net" (section I) and names no modules; its panels up to level 73 (DenseNet-121), 12
        (ResNet-50, EfficientNet-B0) lie within our counts (121, 54, 82), so our n is its n. Figure 7 is
        DenseNet-121's and figure 8 EfficientNet-B0's (their panel captions); figure 9, the third that
        section I names, is ResNet-50's; figure 10 (section J) shows all three.
        """
        if isinstance(level, bool) or not isinstance(level, numbers.Integral) or level < 0:
            raise ValueError(f"level must be a non-negative integer, got {level!r}")
        return None if self.seed_figure is None else int(level)

    def input_bounds(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(low, high) per channel of the network's inputs, or None where neither range nor preprocessing
        is known."""
        if self.input_range is not None:
            low, high = self.input_range
            return torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        return None if self.preprocessing is None else self.preprocessing.input_bounds()

    @property
    def has_block_schedule(self) -> bool:
        return self.block_rule is not None or self.blocks is not None


def _resnet50() -> nn.Module:
    from torchvision.models import resnet50

    return resnet50(weights=None)


def _densenet121() -> nn.Module:
    from torchvision.models import densenet121

    return densenet121(weights=None)


def _efficientnet_b0() -> nn.Module:
    from efficientnet_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-b0")
    # the plain swish is an ordinary autograd graph that hooks and canonizers can see; same values
    model.set_swish(memory_efficient=False)
    return model


def _is_resnet50(model: nn.Module) -> bool:
    from torchvision.models import ResNet

    return isinstance(model, ResNet) and [len(layer) for layer in (
        model.layer1, model.layer2, model.layer3, model.layer4)] == [3, 4, 6, 3]


def _is_densenet121(model: nn.Module) -> bool:
    from torchvision.models import DenseNet

    if not isinstance(model, DenseNet):
        return False
    blocks = [getattr(model.features, f"denseblock{k}", None) for k in range(1, 5)]
    return all(b is not None for b in blocks) and [len(b) for b in blocks] == [6, 12, 24, 16]


def _is_efficientnet_b0(model: nn.Module) -> bool:
    from efficientnet_pytorch import EfficientNet

    return isinstance(model, EfficientNet) and len(model._blocks) == 16


def _lite_rows() -> list[NetworkSpec]:
    """EfficientNet-Lite0..4 (``empirical.models.lite``): the B0 schedule rule (the classifier, then back to
    each ``_depthwise_conv``; 16 steps of blocks for Lite0), its own canonisation and preprocessing."""
    from functools import partial

    from empirical.models import lite

    return [NetworkSpec(name, classifier="_fc", classes=1000, block_rule=BlockRule("._depthwise_conv"),
                        canonization="lite",
                        preprocessing=Preprocessing(*lite.lite_sizes(name), *lite.LITE_SCALING, "bilinear"),
                        build=partial(lite.build_lite, name), recognise=partial(lite.is_lite, name=name),
                        builtin=True, packaged_weights=partial(lite.wheel_weights, name))
            for name in lite.LITE_NAMES]


def _spec_rows() -> dict[str, NetworkSpec]:
    rows = [
        # ResNet-50: the classifier, then down to each *.conv1, 16 of them -> 17 steps
        NetworkSpec("resnet50", classifier="fc", classes=1000, block_rule=BlockRule(".conv1", 1, 16),
                    canonization="resnet", preprocessing=IMAGENET_PREPROCESSING, build=_resnet50,
                    hub_pattern="resnet50-*.pth", recognise=_is_resnet50, builtin=True,
                    seed_figure="figure 9 (levels 6, 9, 12 named in section I) and figure 10",
                    seed_levels_shown=(6, 9, 12)),
        # DenseNet-121: every third *.conv1 ends a step; the network has 58, not the 63 A.1 names
        NetworkSpec("densenet121", classifier="classifier", classes=1000, block_rule=BlockRule(".conv1", 3),
                    canonization="densenet", preprocessing=IMAGENET_PREPROCESSING, build=_densenet121,
                    hub_pattern="densenet121-*.pth", recognise=_is_densenet121, builtin=True,
                    seed_figure="figure 7 and figure 10", seed_levels_shown=(0, 10, 20, 73)),
        # EfficientNet-B0: each *._depthwise_conv ends a step; 16 of them, not the 17 A.1 names
        NetworkSpec("efficientnet-b0", classifier="_fc", classes=1000,
                    block_rule=BlockRule("._depthwise_conv"), canonization="efficientnet",
                    preprocessing=IMAGENET_PREPROCESSING, build=_efficientnet_b0,
                    hub_pattern="efficientnet-b0-*.pth", recognise=_is_efficientnet_b0, builtin=True,
                    seed_figure="figure 8 and figure 10 (layers 0, 1, 3, 5 and 11 in section J)",
                    seed_levels_shown=(0, 1, 3, 5, 11, 12)),
        NetworkSpec("demo", classifier="fc", classes=10, block_rule=BlockRule(".conv1"),
                    canonization="resnet", preprocessing=Preprocessing(None, None),
                    input_range=DEMO_INPUT_RANGE, build=DemoResNet,
                    recognise=lambda model: isinstance(model, DemoResNet), builtin=True),
        *_lite_rows(),
    ]
    return {row.name: row for row in rows}


#: the built-in networks, by name
NETWORKS: dict[str, NetworkSpec] = _spec_rows()


def spec_of(model: nn.Module) -> NetworkSpec | None:
    """The built-in row of ``NETWORKS`` that ``model`` is an instance of, or None for any other network."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for spec in NETWORKS.values():
        if spec.recognise is not None and spec.recognise(model):
            return spec
    return None


def _default_name(model: nn.Module) -> str:
    """A name for a user's network from its class, usable in file names (letters, digits, ``_.=+-``)."""
    cleaned = re.sub(r"[^a-z0-9_.=+-]", "", type(model).__name__.lower()).lstrip("_.=+-")
    return cleaned or "network"


def network_spec(model: nn.Module | None = None, *, name: str | None = None, classifier: str | None = None,
                 blocks: Sequence[str] | None = None, input_range=None,
                 preprocessing: Preprocessing | None = None, classes: int | None = None) -> NetworkSpec:
    """The spec of ``model``: its built-in row (facts given here override it), or a row for a user's network.

    ``blocks``: module-name prefixes of the block schedule (see ``empirical.experiments.schedules``);
    ``classifier``: the output layer's module name (default: the last linear or convolution layer that owns
    parameters); ``input_range``: (low, high) of the inputs, scalars or per channel, for the z^B rule.
    Raises ValueError naming a fact that does not fit ``model``.
    """
    base = spec_of(model) if model is not None else None
    if base is None:
        base = NetworkSpec(name or (_default_name(model) if model is not None else "network"))
    names = dict(model.named_modules()) if model is not None else {}
    if classifier is not None and names and classifier not in names:
        raise ValueError(f"classifier {classifier!r} is no module of the model; modules end with "
                         f"{list(names)[-3:]}")
    if classifier is None and base.classifier is None and names:
        heads = [n for n, m in names.items() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
        classifier = heads[-1] if heads else None
    if blocks is not None:
        if isinstance(blocks, str) or not all(isinstance(b, str) and b for b in blocks) or not blocks:
            raise ValueError(f"blocks must be a non-empty list of module-name prefixes, got {blocks!r}")
        blocks = tuple(blocks)
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    changes = {key: value for key, value in (("name", name), ("classifier", classifier), ("blocks", blocks),
                                             ("input_range", input_range), ("preprocessing", preprocessing),
                                             ("classes", classes)) if value is not None}
    return replace(base, **changes)
