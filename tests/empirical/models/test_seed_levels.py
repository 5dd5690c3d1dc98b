"""The seed's level numbering of sections I and J (figures 7-10) as a per-network fact of ``NETWORKS``.

Oracle: the seed's numbering, written out here from its figures and text, independently of the code:
figure 7 (DenseNet-121) has panels "DenseNet121 Level0", "Level10", "Level20" and "Level73"; figure 8
(EfficientNet-B0) "EfficientNet-B0 Level3" and "Level12"; section I names ResNet-50 levels 6, 9 and 12 (its
figure 9, the third figure the section names); section J names EfficientNet-B0 layers 0, 1, 3, 5 and 11
(figure 10). Levels count from 0 ("Level0"): the seed's level n is the n-th layer input from 0, as ours.
The counts of our levels are the convolution and linear layers of each network, counted here by module type.
"""

from __future__ import annotations

import pytest
from torch import nn

from empirical.models.specs import NETWORKS

SEED_NUMBERING = {
    # network: (the seed's figure, the levels the seed names, in its numbering)
    "densenet121": ("figure 7", (0, 10, 20, 73)),
    "efficientnet-b0": ("figure 8", (3, 12, 0, 1, 5, 11)),
    "resnet50": ("figure 9", (6, 9, 12)),
}
#: convolutions plus the linear classifier of each network, the levels we number (torchvision / lukemelas)
OUR_LEVEL_COUNTS = {"resnet50": 53 + 1, "densenet121": 120 + 1, "efficientnet-b0": 81 + 1}


@pytest.mark.parametrize("name", sorted(SEED_NUMBERING))
def test_seed_level_of_each_shown_network_is_the_figures_number(name):
    spec = NETWORKS[name]
    figure, shown = SEED_NUMBERING[name]
    assert spec.seed_figure.startswith(figure) and "figure 10" in spec.seed_figure
    assert set(spec.seed_levels_shown) == set(shown)
    for level in shown:
        assert level < OUR_LEVEL_COUNTS[name]  # the seed's panel is one of our levels
        assert spec.seed_level(level) == level
    counted = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in spec.build().modules())
    assert counted == OUR_LEVEL_COUNTS[name]


@pytest.mark.parametrize("name", ["demo", *(n for n in NETWORKS if n.startswith("efficientnet-lite"))])
def test_networks_the_seed_does_not_show_have_no_seed_level(name):
    spec = NETWORKS[name]
    assert spec.seed_figure is None and spec.seed_levels_shown == () and spec.seed_level(0) is None


@pytest.mark.parametrize("level", [-1, 1.5, True, "3"])
def test_seed_level_rejects_what_is_no_level(level):
    with pytest.raises(ValueError, match="level must be a non-negative integer"):
        NETWORKS["resnet50"].seed_level(level)
