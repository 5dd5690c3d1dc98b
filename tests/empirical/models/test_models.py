"""empirical.models: construction, offline weight loading and its errors, preprocessing."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from empirical import models
from empirical.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODEL_NAMES,
    architecture_of,
    build_model,
    digits_to_demo_input,
    imagenet_transform,
    input_bounds,
    layer_names,
    load_model,
    weights_checksum,
)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_random_model_round_trips_architecture_name(name):
    model = load_model(name, weights="random")
    assert architecture_of(model) == name
    assert not model.training


def test_demo_network_is_small_and_resnet_shaped(demo_model, demo_batch):
    assert demo_model(demo_batch).shape == (3, 10)
    n_bytes = sum(p.numel() * p.element_size() for p in demo_model.parameters())
    assert n_bytes < 600_000  # "a few hundred KB"
    convs = layer_names(demo_model, torch.nn.Conv2d)
    assert convs[0] == "conv1" and "layer3.1.conv1" in convs and layer_names(demo_model)[-1] == "fc"


def test_unknown_names_and_models_are_rejected():
    with pytest.raises(ValueError, match="unknown model name 'vgg16'.*resnet50"):
        load_model("vgg16", weights="random")
    with pytest.raises(ValueError, match="none of"):
        architecture_of(torch.nn.Linear(2, 2))


def test_state_dict_file_round_trip_with_wrappers(tmp_path, demo_model):
    reference = demo_model.state_dict()
    variants = {
        "plain.pt": reference,
        "wrapped.pt": {"state_dict": reference, "epoch": torch.tensor(3)},
        "model.pt": {"model": reference},
        "parallel.pt": {f"module.{key}": value for key, value in reference.items()},
    }
    for file_name, content in variants.items():
        torch.save(content, tmp_path / file_name)
        loaded = load_model("demo", weights=tmp_path / file_name)
        assert not loaded.training
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in reference.items()), file_name


def test_mismatched_weights_give_one_clear_value_error(tmp_path, demo_model):
    broken = dict(demo_model.state_dict())
    broken.pop("fc.weight")
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match=r"broken\.pt do not fit 'demo': 1 missing \(fc\.weight\).*weights="):
        load_model("demo", weights=tmp_path / "broken.pt")
    wrong_shape = dict(demo_model.state_dict())
    wrong_shape["fc.weight"] = torch.zeros(3, 3)
    torch.save(wrong_shape, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="size mismatch"):
        load_model("demo", weights=tmp_path / "shape.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds no state dict"):
        load_model("demo", weights=tmp_path / "list.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not read weights"):
        load_model("demo", weights=tmp_path / "garbage.pt")


def test_missing_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"nothere\.pt"):
        load_model("demo", weights=tmp_path / "nothere.pt")
    monkeypatch.setattr(models, "DEMO_WEIGHTS_PATH", tmp_path / "demo_digits.pt")
    with pytest.raises(FileNotFoundError, match="demo_digits.pt.*train the demo network"):
        load_model("demo")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match=r"resnet50-\*\.pth in .*hub.checkpoints.*weights='random'"):
        load_model("resnet50")


@pytest.mark.slow
def test_densenet_checkpoint_from_hub_cache_with_old_key_names(tmp_path, monkeypatch):
    model = build_model("densenet121")
    reference = model.state_dict()
    # torchvision's published file spells "features.denseblock1.denselayer1.norm.1.weight"
    old_style = {}
    for key, value in reference.items():
        if key.endswith("num_batches_tracked"):
            continue  # the published file predates these counters
        for part in ("norm1", "norm2", "conv1", "conv2", "relu1", "relu2"):
            key = key.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        old_style[key] = value
    assert "features.denseblock1.denselayer1.norm.1.weight" in old_style
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(old_style, checkpoints / "densenet121-a639ec97.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    loaded = load_model("densenet121")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in reference.items())


def test_weights_checksum_against_hashlib(tmp_path):
    path = tmp_path / "w.bin"
    content = bytes(range(256)) * 5000
    path.write_bytes(content)
    assert weights_checksum(path) == hashlib.sha256(content).hexdigest()


def test_imagenet_transform_against_hand_computed_normalisation():
    value = 77
    image = Image.fromarray(np.full((300, 400, 3), value, dtype=np.uint8))
    out = imagenet_transform()(image)
    assert out.shape == (3, 224, 224)
    expected = (value / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)


def test_input_bounds_are_the_transformed_black_and_white_images():
    black = imagenet_transform()(Image.fromarray(np.zeros((256, 256, 3), dtype=np.uint8)))
    white = imagenet_transform()(Image.fromarray(np.full((256, 256, 3), 255, dtype=np.uint8)))
    low, high = input_bounds("resnet50")
    torch.testing.assert_close(black[:, 0, 0], low)
    torch.testing.assert_close(white[:, 0, 0], high)
    low, high = input_bounds("demo")
    assert low.tolist() == [0.0] * 3 and high.tolist() == [1.0] * 3


def test_digits_to_demo_input_shape_range_and_errors():
    digits = np.arange(2 * 64).reshape(2, 64) % 17
    x = digits_to_demo_input(digits)
    assert x.shape == (2, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x[:, 0], x[:, 2])
    with pytest.raises(ValueError, match="images must have shape"):
        digits_to_demo_input(np.zeros((2, 7, 7)))


def test_find_weights_names_the_file_load_model_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "DEMO_WEIGHTS_PATH", tmp_path / "demo_digits.pt")
    assert models.find_weights("demo") == tmp_path / "demo_digits.pt"
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    for stamp in ("0a", "9f"):
        (tmp_path / "hub" / "checkpoints" / f"efficientnet-b0-{stamp}.pth").write_bytes(b"")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert models.find_weights("efficientnet-b0").name == "efficientnet-b0-9f.pth"
    with pytest.raises(ValueError, match="unknown model name"):
        models.find_weights("alexnet")


def test_seeded_random_models_are_reproducible_and_leave_global_state_alone():
    state = torch.random.get_rng_state()
    first = build_model("demo", rng=torch.Generator().manual_seed(4))
    again = load_model("demo", weights="random", rng=torch.Generator().manual_seed(4))
    other = build_model("demo", rng=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert not torch.equal(first.conv1.weight, other.conv1.weight)
    with pytest.raises(ValueError, match="rng must be"):
        build_model("demo", rng="seed")
