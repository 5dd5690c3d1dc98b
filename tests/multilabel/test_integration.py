"""The multi-label arm wired into the rest (seed A.3): ``python -m empirical finetune``, the score hook of the
faithfulness curves, and the ``demo-multilabel``, ``coco`` and ``voc`` profiles.

Oracles: the sigmoid and softmax written out with ``math`` for fixed logits; the fine-tuned network's own
arg-max for the explained label; the files of a finished fine-tuning left untouched by a resumed run.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

import empirical.multilabel.cli
from empirical.__main__ import main
from empirical.experiments.faithfulness import perturbation_curves
from empirical.multilabel.annotations import read_coco_split
from empirical.multilabel.dataset import multilabel_image_set
from empirical.multilabel.finetune import load_finetuned
from empirical.run.faithfulness import run_faithfulness
from empirical.run.multilabel_inputs import recorded_checkpoint, relative_to_run
from empirical.run.profiles import DEMO_FAITHFULNESS, get_profile
from empirical.run.runner import run
from empirical.storage.chunks import ChunkStore

TINY_FINETUNE = {"train_canvases": 8, "val_canvases": 4, "test_canvases": 3, "epochs": 1, "batch_size": 4}
LOGITS = (2.0, -1.0, 0.5)


class _FixedLogits(nn.Module):
    """Logits LOGITS for every image, whatever it shows (the perturbation then changes nothing)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.tensor(LOGITS) + self.scale * x.mean(dim=(1, 2, 3))[:, None]


def test_finetune_subcommand_dispatches_to_the_multilabel_command_line(monkeypatch):
    seen = []
    monkeypatch.setattr(empirical.multilabel.cli, "main", lambda argv: seen.append(argv) or 7)
    assert main(["finetune", "--data", "coco", "somewhere"]) == 7
    assert seen == [["--data", "coco", "somewhere"]]


def test_finetune_subcommand_bad_input_is_one_message_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--data", "coco", str(tmp_path / "absent"), "--model", "demo",
              "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "argument --data: PATH must be a folder" in capsys.readouterr().err


@pytest.mark.parametrize(("score", "expected"), [
    ("sigmoid", 1 / (1 + math.exp(-LOGITS[0]))),
    ("softmax", math.exp(LOGITS[0]) / sum(math.exp(v) for v in LOGITS)),
])
def test_score_hook_against_a_hand_computation(score, expected):
    images, maps = torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8)
    curves = perturbation_curves(_FixedLogits(), images, torch.zeros(2, dtype=torch.long), maps, patch_size=2,
                                 steps=3, blur_kernel=3, score=score)
    assert curves.shape == (2, 4)
    assert torch.allclose(curves, torch.full((2, 4), expected, dtype=torch.float64), atol=1e-7)


def test_a_bad_score_is_named_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="score must be one of softmax, sigmoid or a callable.*got 'tanh'"):
        run_faithfulness(_FixedLogits(), torch.rand(2, 3, 8, 8), None, model_name="m",
                         store=ChunkStore(tmp_path, "faithfulness"), methods=["gradient"], score="tanh")


def test_the_demo_profile_keeps_the_softmax_and_its_settings():
    assert get_profile("demo").options("faithfulness", "demo") == DEMO_FAITHFULNESS
    assert get_profile("demo-multilabel").options("faithfulness", "demo") == {**DEMO_FAITHFULNESS,
                                                                              "score": "sigmoid"}
    assert get_profile("coco").options("faithfulness", "resnet50")["score"] == "sigmoid"


def test_demo_multilabel_profile_end_to_end_explains_the_top_label_by_its_sigmoid(tmp_path):
    options = dict(profile="demo-multilabel", out=tmp_path, images=2, methods=["gradient"], progress=False,
                   finetune_settings=TINY_FINETUNE)
    run(["faithfulness", "randomization"], **options)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "digit-canvases" and manifest["dataset"]["labels"] is False
    assert manifest["classes"] == [str(d) for d in range(10)]
    assert manifest["finetune"]["settings"] == {**manifest["finetune"]["settings"], **TINY_FINETUNE}
    saved = json.loads((tmp_path / "multilabel-demo" / "finetune" / "finetune.json").read_text())
    for key in ("best_val_map", "untrained_head_val_map", "test_map", "untrained_head_test_map"):
        assert manifest["finetune"][key] == saved[key] and 0 <= saved[key] <= 1
    checkpoint = tmp_path / "multilabel-demo" / "finetune" / "best.pt"
    assert manifest["finetune"]["checkpoint"] == "multilabel-demo/finetune/best.pt"  # inside the run folder
    assert recorded_checkpoint(manifest["finetune"], tmp_path) == checkpoint
    # the weights record too: the report renames its staging folder, so an absolute path would go stale
    assert manifest["weights"]["demo"]["path"] == "multilabel-demo/finetune/best.pt"
    model = load_finetuned("demo", checkpoint, 10)
    # the experiments explain the first test canvases: digits that neither trained nor picked the epoch
    images = multilabel_image_set(read_coco_split(tmp_path / "multilabel-demo" / "data", "test"), "demo", 2)
    with torch.no_grad():
        logits = model(images.images)
    curves = pd.read_csv(tmp_path / "faithfulness.csv")
    start = curves[curves["step"] == 0].sort_values(["patch_size", "image"])
    top = logits.argmax(dim=1)
    assert start["label"].tolist() == top.tolist() * 2
    assert start["score"].to_numpy() == pytest.approx(logits[range(2), top].sigmoid().tolist() * 2, abs=1e-6)
    assert set(pd.read_csv(tmp_path / "randomization.csv")["image"]) == {0, 1}
    # a resumed run finds the finished fine-tuning and does not refit
    stamps = {p.name: p.stat().st_mtime_ns for p in checkpoint.parent.glob("*.pt")}
    run(["faithfulness", "randomization"], **options)
    assert {p.name: p.stat().st_mtime_ns for p in checkpoint.parent.glob("*.pt")} == stamps
    with pytest.raises(ValueError, match="finetune_settings"):
        run(["faithfulness"], **{**options, "finetune_settings": {**TINY_FINETUNE, "epochs": 2}})


def test_checkpoint_is_recorded_relative_to_the_run_folder_when_inside_it_and_read_back_after_a_move(
        tmp_path):
    run_folder, outside = tmp_path / "run", tmp_path / "elsewhere" / "best.pt"
    inside = run_folder / "multilabel-demo" / "finetune" / "best.pt"
    for path in (inside, outside):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"weights")
    record = {"checkpoint": relative_to_run(inside, run_folder)}
    assert record["checkpoint"] == "multilabel-demo/finetune/best.pt"
    moved = run_folder.rename(tmp_path / "moved")  # as python -m reports renames its staging folder
    assert recorded_checkpoint(record, moved) == moved / "multilabel-demo" / "finetune" / "best.pt"
    assert recorded_checkpoint(record, moved).read_bytes() == b"weights"
    assert relative_to_run(outside, moved) == str(outside.resolve())  # outside: absolute, read as it is
    assert recorded_checkpoint({"checkpoint": str(outside.resolve())}, moved) == outside.resolve()
    assert recorded_checkpoint({}, moved) is None and recorded_checkpoint(None, moved) is None


@pytest.mark.parametrize(("options", "message"), [
    ({}, "profile 'coco' needs data: pass --data"),
    ({"data": "DATA"}, "needs the fine-tuned weights of 'resnet50'"),
    ({"finetune_settings": {"epochs": 1}}, "finetune_settings is only read by the 'demo-multilabel' profile"),
])
def test_real_data_profiles_name_what_they_lack(tmp_path, options, message):
    options = {key: (str(tmp_path) if value == "DATA" else value) for key, value in options.items()}
    with pytest.raises(ValueError, match=message):
        run(["faithfulness"], profile="coco", out=tmp_path / "out", models=["resnet50"], progress=False,
            **options)


def test_unknown_demo_setting_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown demo setting 'canvases'"):
        run(["faithfulness"], profile="demo-multilabel", out=tmp_path, finetune_settings={"canvases": 3})
