"""The command line never hands back a table of other inputs: `python -m empirical faithfulness --profile
imagenet --model resnet50 --weights W.pt --data D --images 2 --methods gradient --out O`, run again after one
image of D changed (a 40x40 patch inverted) or one weight tensor of W.pt scaled by 1.5.

Oracle: a run of the same command into an empty folder. Before chunks were fingerprinted the second run
returned the first run's table unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from empirical.__main__ import main

pytestmark = pytest.mark.slow


def _command(root, out):
    return ["faithfulness", "--profile", "imagenet", "--model", "resnet50", "--weights", str(root / "W.pt"),
            "--data", str(root / "D"), "--images", "2", "--methods", "gradient", "--out", str(out),
            "--quiet", "--workers", "0"]


def _run(root, out) -> tuple[bytes, dict]:
    """The faithfulness table's bytes and {chunk file: modification time in ns} after the command."""
    assert main(_command(root, out)) == 0
    chunks = sorted((out / "chunks" / "faithfulness").glob("*.csv"))
    return (out / "faithfulness.csv").read_bytes(), {p.name: p.stat().st_mtime_ns for p in chunks}


@pytest.fixture
def inputs(tmp_path):
    """W.pt: a seeded ResNet-50 state dict (torch.save); D: two 64x64 PNG images of ImageNet class 0."""
    folder = tmp_path / "D" / "n01440764"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"image{k}.png")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "W.pt")
    return tmp_path


def test_changed_image_or_weights_are_recomputed_and_an_unchanged_run_is_reused(inputs):
    out = inputs / "O"
    first, _ = _run(inputs, out)

    path = inputs / "D" / "n01440764" / "image1.png"
    pixels = np.array(Image.open(path))
    pixels[:40, :40] = 255 - pixels[:40, :40]
    Image.fromarray(pixels).save(path)
    after_image, _ = _run(inputs, out)
    assert after_image != first
    assert after_image == _run(inputs, inputs / "fresh-image")[0]

    state = torch.load(inputs / "W.pt", weights_only=True)
    state["fc.weight"] *= 1.5
    torch.save(state, inputs / "W.pt")
    after_weights, chunks = _run(inputs, out)
    assert after_weights != after_image

    unchanged, chunks_again = _run(inputs, out)
    assert unchanged == after_weights
    assert chunks_again == chunks  # no chunk written again
