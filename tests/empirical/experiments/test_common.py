"""What the experiments' kernels share: method resolution, the one seeding rule, targets.

Oracles: numpy's SeedSequence and torch.rand written out here for the random control; the faithfulness and
randomisation chunks of one batch, which must hold the same random-control maps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empirical.experiments._common import (
    NamedMethod,
    draw_generator,
    explain,
    explained_classes,
    resolve_methods,
)


def test_the_random_control_is_drawn_from_the_seed_sequence_of_its_key(demo_model, demo_batch):
    key = (7, 32, 3)  # (seed, first image of the batch, step)
    state = np.random.SeedSequence([7, 32, 3]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator().manual_seed(int(state) >> 1)
    expected = torch.rand((demo_batch.shape[0], *demo_batch.shape[2:]), generator=generator)
    method = resolve_methods(["random-uniform"])["random-uniform"]
    assert isinstance(method, NamedMethod)
    maps = explain(method, demo_model, demo_batch, torch.zeros(3, dtype=torch.long), key)
    assert torch.equal(maps, expected)
    assert draw_generator(key).initial_seed() == generator.initial_seed()
    assert not torch.equal(maps, explain(method, demo_model, demo_batch, torch.zeros(3, dtype=torch.long),
                                         (7, 32, 4)))


def test_faithfulness_and_randomization_seed_the_control_by_one_rule(tmp_path, demo_model, demo_batch,
                                                                     monkeypatch):
    from empirical.run.faithfulness import run_faithfulness
    from empirical.run.randomization import run_randomization
    from empirical.storage.chunks import ChunkStore

    keys = []
    original = NamedMethod.__call__

    def recording(self, model, x, target, *, draw_key=None):
        keys.append(draw_key)
        return original(self, model, x, target, draw_key=draw_key)

    monkeypatch.setattr(NamedMethod, "__call__", recording)
    options = dict(methods=["random-uniform"], batch_size=3, seed=4, progress=False, model_name="demo")
    run_faithfulness(demo_model, demo_batch, None, store=ChunkStore(tmp_path, "faithfulness"), patch_sizes=8,
                     blur_kernel=3, steps=2, **options)
    run_randomization(demo_model, demo_batch, None, store=ChunkStore(tmp_path, "randomization"), **options)
    # faithfulness explains the original model: key (seed, first image, 0), as randomisation's reference
    assert keys[0] == keys[1] == (4, 0, 0)
    assert keys[1:] == [(4, 0, step) for step in range(len(keys) - 1)]


def test_resolve_methods_names_callables_and_checks_options():
    def my_map(model, x, target):
        return x.sum(1)

    resolved = resolve_methods([my_map, "gradient"], {"gradient": {}})
    assert resolved["my_map"] is my_map and resolved["gradient"] == NamedMethod("gradient", {})
    assert resolve_methods({"ig": "integrated-gradients"}, {"integrated-gradients": {"steps": 3}})["ig"] \
        == NamedMethod("integrated-gradients", {"steps": 3})
    for methods, options, message in [
        ("gradient", None, "non-empty list"), ([], None, "non-empty list"),
        (["nope"], None, "method 'nope' unknown"), ([my_map, my_map], None, "distinct names"),
        (["gradient"], {"lrp-epsilon": {}}, "not in methods"), (["gradient"], {"gradient": 3}, "must map"),
        ({"": "gradient"}, None, "non-empty strings"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_methods(methods, options)


def test_explained_classes_are_labels_or_the_top_class(demo_model, demo_batch):
    labels = torch.tensor([4, 1, 0])
    assert torch.equal(explained_classes(demo_model, demo_batch, labels), labels)
    with torch.no_grad():
        top = demo_model(demo_batch).argmax(1)
    assert torch.equal(explained_classes(demo_model, demo_batch, None), top)


def test_a_noisy_variant_is_a_method_by_name_keyed_by_the_draw_key(demo_model, demo_batch):
    from empirical.attribution import attribute
    from empirical.experiments.noisy import noise_for_images

    target = torch.zeros(3, dtype=torch.long)
    clean = attribute(demo_model, demo_batch, target, "gradient").detach()
    noisy = resolve_methods(["gradient+noise(0.5)"])["gradient+noise(0.5)"]
    maps = explain(noisy, demo_model, demo_batch, target, (7, 32, 3))
    rms = clean.flatten(1).square().mean(1).sqrt().view(-1, 1, 1)
    # oracle: the noise of images 32, 33, 34 in stream (run seed 7, step 3)
    expected = clean + 0.5 * rms * noise_for_images(clean.shape[1:], [32, 33, 34], seed=0, stream=(7, 3))
    torch.testing.assert_close(maps, expected)
    assert not torch.allclose(maps, explain(noisy, demo_model, demo_batch, target, (7, 32, 4)))
    zero = resolve_methods(["gradient+noise(0)"])["gradient+noise(0)"]
    torch.testing.assert_close(explain(zero, demo_model, demo_batch, target, (7, 32, 3)), clean)


def test_noisy_variants_take_their_base_methods_options_and_need_a_known_base():
    resolved = resolve_methods(["integrated-gradients+noise(1)"], {"integrated-gradients": {"steps": 4}})
    assert resolved["integrated-gradients+noise(1)"].options == {"steps": 4}
    with pytest.raises(ValueError, match="no-such-method"):
        resolve_methods(["no-such-method+noise(1)"])


def test_known_methods_admit_noisy_variants_of_available_methods_only():
    from empirical.experiments._common import known_methods

    known = known_methods(["gradient+noise(0.25)", "nothing+noise(1)", "gradient+noise(-1)"])
    assert "gradient+noise(0.25)" in known and "gradient" in known
    assert "nothing+noise(1)" not in known and "gradient+noise(-1)" not in known


def test_declared_choices_name_each_methods_noise_level_and_the_run_options():
    from empirical.run.choices import experiment_choices

    choices = experiment_choices("faithfulness", {"patch_sizes": (2, 4), "order": "lerf"},
                                 ["gradient", "gradient+noise(0.5)"])
    assert choices["noise_level"] == {"gradient": 0.0, "gradient+noise(0.5)": 0.5}
    assert choices["order"] == "lerf" and choices["patch_grid"]["patch_sizes"] == [2, 4]
    randomization = experiment_choices("randomization", {"schedule": "per-layer"})
    assert randomization["granularity"] == "layer" and randomization["reinitialisation"].startswith("kaiming")
    with pytest.raises(ValueError, match="experiment"):
        experiment_choices("nope", {})
