"""The runner: documented files and columns, resumption with identical bytes, refused mixes, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from empirical.models import DEMO_WEIGHTS_PATH
from empirical.run.runner import _load, run
from empirical.storage.tables import TABLE_COLUMNS

SMALL = dict(images=3, methods=["gradient", "gradient-x-input"], batch_size=2, progress=False)
EXPERIMENTS = ["randomization", "faithfulness"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return run(EXPERIMENTS, out=tmp_path_factory.mktemp("run"), **SMALL)


def test_tables_have_the_documented_columns(finished):
    import pandas as pd

    for experiment in EXPERIMENTS:
        table = pd.read_csv(finished / f"{experiment}.csv")
        assert tuple(table.columns) == TABLE_COLUMNS[f"{experiment}.csv"]
        assert set(table["model"]) == {"demo"} and set(table["method"]) == {"gradient", "gradient-x-input"}
    faithfulness = pd.read_csv(finished / "faithfulness.csv")
    assert len(faithfulness) == 2 * 2 * 3 * 31  # methods x patch sizes x images x steps 0..30
    assert sorted(faithfulness["patch_size"].unique()) == [2, 4]
    area = pd.read_csv(finished / "faithfulness_area.csv")
    assert list(area.columns) == ["model", "method", "patch_size", "image", "area"] and len(area) == 12


def test_manifest_records_weights_data_and_settings(finished):
    manifest = json.loads((finished / "manifest.json").read_text())
    record = json.loads(DEMO_WEIGHTS_PATH.with_suffix(".json").read_text())
    assert manifest["weights"]["demo"]["sha256"] == record["sha256"]
    assert manifest["profile"] == "demo" and manifest["bench"] is False and manifest["seed"] == 0
    assert manifest["dataset"]["images"] == 3 and manifest["dataset"]["skipped"] == 0
    assert manifest["config"]["methods"] == ["gradient", "gradient-x-input"]
    assert manifest["experiments"] == EXPERIMENTS and manifest["device"] == "cpu"
    assert manifest["elapsed_s"] >= 0 and manifest["versions"]["torch"]


@pytest.mark.slow
def test_resumed_run_gives_the_same_bytes(finished, tmp_path):
    """Oracle: an uninterrupted run. A killed run keeps some chunks and no final tables."""
    first = run(EXPERIMENTS, out=tmp_path, **SMALL)
    for name in ("randomization.csv", "faithfulness.csv", "faithfulness_area.csv", "manifest.json"):
        (first / name).unlink()
    chunks = sorted((tmp_path / "chunks").rglob("*.csv"))
    for chunk in chunks[::2]:
        chunk.unlink()
    run(EXPERIMENTS, out=tmp_path, **SMALL)
    for name in ("randomization.csv", "faithfulness.csv", "faithfulness_area.csv"):
        assert (tmp_path / name).read_bytes() == (finished / name).read_bytes(), name


@pytest.mark.parametrize("experiment", ["faithfulness", "randomization"])
def test_random_control_repeats_with_the_seed_and_resumes(tmp_path, experiment):
    options = dict(images=2, methods=["random-uniform"], batch_size=1, progress=False)
    first = run([experiment], out=tmp_path / "a", **options)
    other = run([experiment], out=tmp_path / "c", seed=5, **options)
    again = run([experiment], out=tmp_path / "b", **options)
    (again / f"{experiment}.csv").unlink()
    sorted((again / "chunks" / experiment).glob("*.csv"))[-1].unlink()
    run([experiment], out=tmp_path / "b", **options)  # resumed: the last chunk is drawn again
    table = (first / f"{experiment}.csv").read_bytes()
    assert table == (again / f"{experiment}.csv").read_bytes()
    assert table != (other / f"{experiment}.csv").read_bytes()


def test_all_writes_exactly_the_documented_files(tmp_path):
    import numpy as np
    import pandas as pd

    out = run("all", out=tmp_path, images=2, methods=["gradient"], batch_size=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "activation_samples.npz", "activations.choices.json", "activations.csv", "chunks",
        "faithfulness.choices.json", "faithfulness.csv", "faithfulness_area.csv",
        "faithfulness_lerf.choices.json", "faithfulness_lerf.csv", "faithfulness_lerf_area.csv",
        "manifest.json", "randomization.choices.json", "randomization.csv", "rewards.choices.json",
        "rewards.csv"]
    choices = json.loads((out / "randomization.choices.json").read_text())["models"]["demo"]
    assert choices["granularity"] == "block" and choices["noise_level"] == {"gradient": 0.0}
    faithfulness_choices = json.loads((out / "faithfulness.choices.json").read_text())["models"]["demo"]
    assert faithfulness_choices["order"] == "morf"
    assert faithfulness_choices["patch_grid"]["patch_sizes"] == [2, 4]
    assert tuple(pd.read_csv(out / "activations.csv").columns) == TABLE_COLUMNS["activations.csv"]
    with np.load(out / "activation_samples.npz") as samples:
        assert samples.files and all(key.startswith("demo/") for key in samples.files)
    lerf_choices = json.loads((out / "faithfulness_lerf.choices.json").read_text())["models"]["demo"]
    assert lerf_choices["order"] == "lerf" and lerf_choices["patch_grid"]["patch_sizes"] == [4]
    lerf, morf = (pd.read_csv(out / f"{name}_area.csv") for name in ("faithfulness_lerf", "faithfulness"))
    assert tuple(lerf.columns) == TABLE_COLUMNS["faithfulness_lerf_area.csv"]
    # the same images and settings in the other order: different curves at patch 4
    both = morf[morf["patch_size"] == 4].merge(lerf, on=["model", "method", "patch_size", "image"])
    assert len(both) == 2 and not np.allclose(both["area_x"], both["area_y"])
    rewards = pd.read_csv(out / "rewards.csv")
    assert tuple(rewards.columns) == TABLE_COLUMNS["rewards.csv"]
    # the demo profile's base methods narrowed to the chosen one; every test at every level on both images
    assert set(rewards["method"]) == {"gradient"} and set(rewards["image"]) == {0, 1}
    assert rewards.groupby(["test", "level"]).size().eq(2).all() and rewards["level"].nunique() == 5
    reward_choices = json.loads((out / "rewards.choices.json").read_text())["models"]["demo"]
    assert reward_choices["base_methods"] == ["gradient"] and reward_choices["emprt"]["bins"] == 100
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["experiments"] == ["randomization", "faithfulness", "faithfulness_lerf", "activations",
                                       "rewards"]


@pytest.mark.slow
def test_imagenet_folder_run_reports_skipped_files(tmp_path):
    from PIL import Image

    data = tmp_path / "val"
    for k, folder in enumerate(("n01", "n02", "n01")):
        (data / folder).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (40 * k, 90, 200)).save(data / folder / f"val_{k:04d}.JPEG")
    (data / "n02" / "val_0003.JPEG").write_bytes(b"truncated")
    out = run(["activations"], profile="imagenet", data=data, models=["resnet50"], weights="random", images=2,
              out=tmp_path / "out", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["images"] == 2 and manifest["dataset"]["skipped"] == 0
    assert manifest["weights"] == {"resnet50": "random"} and manifest["bench"] is False
    run(["activations"], profile="imagenet", data=data, models=["resnet50"], weights="random", images=4,
        out=tmp_path / "out3", progress=False)
    dataset = json.loads((tmp_path / "out3" / "manifest.json").read_text())["dataset"]
    assert dataset["images"] == 3 and dataset["skipped_files"] == ["n02/val_0003.JPEG"]


def test_other_settings_in_the_same_folder_are_refused(finished):
    with pytest.raises(ValueError, match="other settings .*seed: 0 before, 1 now"):
        run(["faithfulness"], out=finished, **{**SMALL, "seed": 1})


def test_bench_profile_marks_every_table(tmp_path):
    out = run(["faithfulness"], profile="bench", models=["demo"], out=tmp_path, images=2,
              methods=["gradient"], batch_size=2, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["bench"] is True and manifest["weights"] == {"demo": "random"}
    assert (out / "faithfulness.csv").read_text().splitlines()[1].startswith("bench-random-demo,")


def test_random_networks_are_drawn_from_the_seed():
    first, again, other = (_load("demo", "random", "cpu", seed) for seed in (0, 0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(),
                                                 strict=True))
    assert not torch.equal(first.fc.weight, other.fc.weight)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"experiments": ["everything"]}, "unknown experiment 'everything'"),
    ({"profile": "fast"}, "unknown profile 'fast'"),
    ({"models": ["resnet50"]}, "unknown model 'resnet50' for this profile"),
    ({"methods": ["saliency"]}, "unknown method 'saliency'"),
    ({"methods": []}, "method must name at least one"),
    ({"images": 0}, "images must be a positive integer"),
    ({"batch_size": -2}, "batch_size must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"device": "tpu"}, "device must be 'cpu' or 'cuda"),
    ({"profile": "imagenet"}, "needs data"),
    ({"data": "somewhere"}, "only read by the 'imagenet' profile"),
    ({"weights": 3}, "weights must be None, 'random', a path"),
    ({"profile": "imagenet", "weights": "w.pt"}, "one weights file 'w.pt' cannot serve 3 models"),
    ({"weights": {"resnet50": "w.pt"}}, "weights given for unknown model 'resnet50'"),
])
def test_bad_arguments_are_named(tmp_path, arguments, message):
    options = {"experiments": ["faithfulness"], "out": tmp_path, **SMALL, **arguments}
    with pytest.raises(ValueError, match=message):
        run(options.pop("experiments"), **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        run(["faithfulness"], out=tmp_path, device="cuda", **SMALL)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        run(["faithfulness"], out=tmp_path, weights=tmp_path / "nothing.pt", **SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["rows removed", "cut mid-row"])
def test_a_damaged_chunk_is_recomputed_to_the_same_tables(tmp_path, damage):
    """Oracle: the tables of the run before its chunk was damaged. Before chunks carried a checksum, a chunk
    with rows removed was reused (different tables, exit 0) and one cut mid-row failed in pandas."""
    options = dict(images=2, methods=["gradient"], batch_size=1, progress=False)
    out = run(["faithfulness"], out=tmp_path, **options)
    expected = {name: (out / name).read_bytes() for name in ("faithfulness.csv", "faithfulness_area.csv")}
    chunk = sorted((out / "chunks" / "faithfulness").glob("*.csv"))[0]
    text = chunk.read_text()
    lines = text.splitlines(keepends=True)
    chunk.write_text("".join(lines[:1] + lines[4:]) if damage == "rows removed" else text[: len(text) // 2])
    with pytest.warns(UserWarning, match=f"{chunk.name} is damaged"):
        run(["faithfulness"], out=tmp_path, **options)
    for name, content in expected.items():
        assert (out / name).read_bytes() == content, name


@pytest.mark.parametrize("methods", [["random-uniform"], ["gradient"]])
def test_a_label_outside_the_models_classes_stops_the_run_before_any_work(tmp_path, methods):
    """Before: 'RuntimeError: index 5000 is out of bounds' from inside random-uniform's faithfulness run."""
    from PIL import Image

    data = tmp_path / "val"
    data.mkdir()
    for k in range(2):
        Image.new("RGB", (8, 8), (40 * k, 90, 200)).save(data / f"img{k}.png")
    (data / "labels.txt").write_text("img0.png 0\nimg1.png 5000\n")
    with pytest.raises(ValueError, match=r"label 5000 of image 'img1.png' .* outside the 1000 classes"):
        run(["faithfulness"], profile="imagenet", data=data, models=["resnet50"], weights="random", images=2,
            methods=methods, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_output_classes_match_the_networks():
    """The label check reads each network's classes from its spec row: every built-in network has them."""
    from empirical.models import NETWORKS, build_model

    assert build_model("demo", rng=0)(torch.zeros(1, 3, 32, 32)).shape == (1, NETWORKS["demo"].classes)
    assert set(NETWORKS) == {"resnet50", "densenet121", "efficientnet-b0", "demo",
                             *(f"efficientnet-lite{k}" for k in range(5))}
    assert {name: spec.classes for name, spec in NETWORKS.items()} == {
        name: 10 if name == "demo" else 1000 for name in NETWORKS}


def test_one_dispatch_table_serves_the_runner_and_the_choices():
    from empirical.run import choices, runner
    from empirical.storage.tables import EXPERIMENTS

    assert runner.EXPERIMENT_FUNCTIONS is choices.EXPERIMENT_FUNCTIONS
    assert tuple(choices.EXPERIMENT_FUNCTIONS) == EXPERIMENTS


@pytest.mark.parametrize("content", ['{"profile": ', "[1, 2]", "\udcff"])
def test_damaged_saved_settings_are_named(tmp_path, content):
    """Before: 'Expecting value: line 1 column 1' (json's message, naming no file)."""
    settings = tmp_path / "chunks" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError, match=r"saved settings .*settings\.json .* are damaged"):
        run(["faithfulness"], out=tmp_path, **SMALL)


def test_a_seed_beyond_torchs_range_is_named(tmp_path):
    """Before: 'Overflow when unpacking long long' from torch."""
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer up to 4294967295.*got 9999"):
        run(["activations"], out=tmp_path, seed=99999999999999999999999, **SMALL)
