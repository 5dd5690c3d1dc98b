"""Profiles: the paper's settings for ImageNet, their stated scaling for the demo, clear errors."""

from __future__ import annotations

import pytest

from empirical.run.profiles import PROFILES, get_profile, load_images, table_model_name


def test_imagenet_uses_exactly_the_papers_faithfulness_settings():
    options = get_profile("imagenet").options("faithfulness", "resnet50")
    assert options == {"patch_sizes": (8, 15), "blur_kernel": 15, "steps": 30}
    assert get_profile("imagenet").images == 1000
    assert get_profile("imagenet").models == ("resnet50", "densenet121", "efficientnet-b0")


def test_demo_scales_patches_by_one_seventh_and_blurs_on_the_digit_scale():
    options = get_profile("demo").options("faithfulness", "demo")
    assert options["steps"] == 30
    assert options["patch_sizes"] == (2, 4)  # 8/7 and 15/7, rounded up to keep patches larger than a pixel
    assert options["blur_kernel"] == 11  # about 3 pixels of the 8x8 digits (see the profiles docstring)
    # the demo network gets the scaled settings under every profile (bench may run it at 32x32)
    assert get_profile("bench").options("faithfulness", "demo") == options


def test_every_profile_method_is_registered():
    from empirical.attribution import available_methods

    for profile in PROFILES.values():
        assert set(profile.methods) <= set(available_methods()), profile.name
        assert set(profile.models) <= set(profile.allowed_models)


def test_bench_marks_model_names_and_draws_random_images():
    bench = get_profile("bench")
    assert table_model_name(bench, "resnet50") == "bench-random-resnet50"
    assert table_model_name(get_profile("demo"), "demo") == "demo"
    images = load_images(bench, images=2, model="demo", seed=1)
    assert images.images.shape == (2, 3, 32, 32) and images.labels is None


def test_demo_images_are_labelled_held_out_digits():
    images = load_images(get_profile("demo"), images=3)
    assert images.images.shape == (3, 3, 32, 32) and images.labels is not None
    assert "test split" in images.source


def test_unknown_profile_and_misplaced_data_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'fast'; known: demo, imagenet, bench"):
        get_profile("fast")
    with pytest.raises(ValueError, match="needs data: pass --data"):
        load_images(get_profile("imagenet"), images=2)
    with pytest.raises(ValueError, match="only read by the 'imagenet' profile"):
        load_images(get_profile("demo"), images=2, data=tmp_path)
