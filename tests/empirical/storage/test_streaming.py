"""Image streams (empirical.storage.streaming): the same images, labels and skipped files as loading the whole
folder, and host memory bounded by a few batches whatever the number of images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from empirical.storage.data import load_image_folder, random_images
from empirical.storage.streaming import RandomStream, check_workers, scan_image_folder

ROOT = Path(__file__).resolve().parents[3]


def _write_images(folder: Path, count: int, *, broken=(), size: int = 64) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        path = folder / f"img{k:04d}.png"
        if k in broken:
            path.write_text("not an image")
        else:
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return folder


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_stream_gives_the_images_and_skips_of_the_whole_folder(tmp_path, workers):
    folder = _write_images(tmp_path / "val", 9, broken=(1, 4), size=16)
    whole = load_image_folder(folder, 5)
    stream = scan_image_folder(folder, 5, workers=workers)
    assert stream.describe() == whole.describe()
    batches = list(stream.batches(2))
    assert [(b.start, b.stop) for b in batches] == [(0, 2), (2, 4), (4, 5)]
    assert torch.equal(torch.cat([b.images for b in batches]), whole.images)
    later = list(stream.batches(2, [4, 0]))  # any batches, in the order asked
    assert torch.equal(later[0].images, whole.images[4:5]) and torch.equal(later[1].images, whole.images[:2])


def test_random_stream_draws_the_values_of_one_draw():
    stream = RandomStream(count=7, labels=None, names=(), source="random", size=8, seed=3)
    whole = random_images(7, 8, rng=3).images
    assert torch.equal(torch.cat([b.images for b in stream.batches(3)]), whole)
    assert torch.equal(next(stream.batches(3, [6])).images, whole[6:])


def test_workers_must_be_a_count():
    with pytest.raises(ValueError, match="--workers must be an integer >= 0.*-1"):
        check_workers(-1)
    assert check_workers(0) == 0 and check_workers(None) >= 0


# the child runs the imagenet profile (resize 256, crop 224, ImageNet mean/std, 64 images a batch) with a
# small random network standing in for the three (their quantiles take seconds an image on two cores)
_CHILD = """
import json, resource, sys
import torch
from torch import nn
from empirical.run import runner
from empirical.run.profiles import PROFILES

def tiny(name, argument, device, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 16, stride=16), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))

runner._load = tiny
runner._weights_record = lambda name, argument, out: "random"
profile = PROFILES["imagenet"]
runner.run(["activations"], profile=profile, models=["resnet50"], out=sys.argv[2], data=sys.argv[1],
           images=int(sys.argv[3]), weights="random", progress=False, workers=0)
print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _peak_memory_mb(folder: Path, out: Path, images: int) -> float:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(out), str(images)], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["maxrss_mb"]


@pytest.mark.slow
def test_peak_host_memory_hardly_grows_from_100_to_800_images(tmp_path):
    folder = _write_images(tmp_path / "val", 801, broken=(3,))
    small = _peak_memory_mb(folder, tmp_path / "run100", 100)
    large = _peak_memory_mb(folder, tmp_path / "run800", 800)
    # all 800 preprocessed images at once would be 800 x 3 x 224 x 224 x 4 bytes = 482 MB
    assert large - small < 300, (small, large)
    manifest = json.loads((tmp_path / "run800" / "manifest.json").read_text())
    assert manifest["dataset"]["images"] == 800 and manifest["dataset"]["skipped_files"] == ["img0003.png"]


def test_cli_names_a_bad_workers_value(tmp_path, capsys):
    from empirical.__main__ import main

    with pytest.raises(SystemExit) as exit_info:  # an argparse error, before any work
        main(["all", "--workers", "-1", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "argument --workers: must be a non-negative integer, got '-1'" in capsys.readouterr().err
