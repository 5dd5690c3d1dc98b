"""Fine-tuning (seed A.3): recipe pieces, mAP, checkpoints, resume of a killed run, and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from empirical.models import DEMO_WEIGHTS_PATH, build_model
from empirical.multilabel.annotations import read_coco_split
from empirical.multilabel.cli import main
from empirical.multilabel.finetune import (
    CLASSIFIER_ATTRIBUTE,
    finetune,
    load_finetuned,
    mean_average_precision,
    replace_classifier,
)


class Killed(Exception):
    """Stands for the process being killed after an epoch."""


def _splits(root):
    return read_coco_split(root, "train"), read_coco_split(root, "val")


def _run(root, out, **options):
    train, validation = _splits(root)
    settings = {"weights": DEMO_WEIGHTS_PATH, "epochs": 2, "batch_size": 4, "lr": 1e-3, "progress": False}
    return finetune("demo", train, validation, out=out, **{**settings, **options})


def _state(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state["model"] if "model" in state else state


def _without_times(metrics):
    """The metrics rows without their timings, NaN (epoch 0's training loss) as None so that rows compare."""
    return [{key: None if isinstance(value, float) and math.isnan(value) else value
             for key, value in row.items() if key != "seconds"} for row in metrics]


def test_mean_average_precision_is_sklearns_macro_over_classes_with_positives():
    from sklearn.metrics import average_precision_score

    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.5], [0.3, 0.8, 0.1], [0.4, 0.3, 0.2], [0.6, 0.1, 0.9]])
    value, used = mean_average_precision(labels, scores)
    assert used == 2  # class 2 has no positive: its AP is undefined and it is left out
    assert value == pytest.approx(average_precision_score(labels[:, :2], scores[:, :2], average="macro"))
    assert math.isnan(mean_average_precision(np.zeros((2, 2)), np.ones((2, 2)))[0])
    with pytest.raises(ValueError, match="same shape"):
        mean_average_precision(labels, scores[:, :2])


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_finished_epoch_and_ends_as_an_uninterrupted_one(tiny_canvases,
                                                                                         tmp_path):
    test = read_coco_split(tiny_canvases, "test")
    whole = _run(tiny_canvases, tmp_path / "whole", epochs=3, test=test)

    def kill_after_first(epoch, row):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        _run(tiny_canvases, tmp_path / "killed", epochs=3, on_epoch_end=kill_after_first)
    finished = []
    resumed = _run(tiny_canvases, tmp_path / "killed", epochs=3, on_epoch_end=lambda e, r: finished.append(e),
                   test=test)
    assert finished == [2, 3]  # epoch 1 was not redone
    assert _without_times(resumed.metrics) == _without_times(whole.metrics)
    assert (resumed.best_epoch, resumed.best_map) == (whole.best_epoch, whole.best_map)
    # the test set is no part of the resumed configuration, and scores the same networks
    assert (resumed.test_map, resumed.untrained_test_map) == (whole.test_map, whole.untrained_test_map)
    for name in ("best.pt", "last.pt"):
        expected, actual = _state(tmp_path / "whole" / name), _state(tmp_path / "killed" / name)
        assert all(torch.equal(expected[key], actual[key]) for key in expected)
    last = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    assert set(last) == {"model", "optimizer", "history", "config"}
    rows = (tmp_path / "killed" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,val_loss,val_map,val_classes,seconds" and len(rows) == 5  # epochs 0-3
    # a finished run asked again does nothing; asked for more epochs it continues
    assert _without_times(_run(tiny_canvases, tmp_path / "killed", epochs=3).metrics) == \
        _without_times(whole.metrics)


def test_best_checkpoint_loads_with_weights_only_and_reproduces_the_best_epochs_map(tiny_canvases, tmp_path):
    from empirical.multilabel.dataset import MultiLabelDataset, input_geometry

    result = _run(tiny_canvases, tmp_path / "run", epochs=2)
    model = load_finetuned("demo", result.best_path, 10, "cpu")
    validation = MultiLabelDataset(_splits(tiny_canvases)[1], **input_geometry("demo"))
    images = torch.stack([validation[k][0] for k in range(len(validation))])
    with torch.no_grad():
        scores = model(images).numpy()
    assert mean_average_precision(validation.labels.numpy(), scores)[0] == pytest.approx(result.best_map)
    assert result.metrics[0]["epoch"] == 0 and result.untrained_map == result.metrics[0]["val_map"]
    assert (tmp_path / "run" / "finetune.json").is_file()
    with pytest.raises(ValueError, match="do not fit 'demo' with 7 classes"):
        load_finetuned("demo", result.best_path, 7)
    with pytest.raises(FileNotFoundError, match="fine-tuned weights not found"):
        load_finetuned("demo", tmp_path / "none.pt", 10)


def _sklearn_map(model, annotations) -> float:
    """The oracle: scikit-learn's average_precision_score per class with a positive, averaged, written out
    here rather than through ``mean_average_precision``."""
    from sklearn.metrics import average_precision_score

    from empirical.multilabel.dataset import MultiLabelDataset, input_geometry

    dataset = MultiLabelDataset(annotations, **input_geometry("demo"))
    images = torch.stack([dataset[k][0] for k in range(len(dataset))])
    labels = torch.stack([dataset[k][1] for k in range(len(dataset))]).numpy()
    with torch.no_grad():
        scores = model.eval()(images).double().numpy()
    return float(np.mean([average_precision_score(labels[:, k], scores[:, k])
                          for k in range(labels.shape[1]) if labels[:, k].any()]))


def test_test_map_is_sklearns_average_precision_of_the_saved_best_checkpoint_and_the_untrained_head(
        tiny_canvases, tmp_path):
    import json

    from empirical.models import load_model

    test = read_coco_split(tiny_canvases, "test")
    result = _run(tiny_canvases, tmp_path / "run", epochs=2, test=test, seed=3)
    state = torch.load(result.best_path, map_location="cpu", weights_only=True)
    best = build_model("demo", rng=0)
    best.fc = torch.nn.Linear(best.fc.in_features, 10)
    best.load_state_dict(state)
    assert result.test_map == pytest.approx(_sklearn_map(best, test), abs=1e-12)
    # the untrained head: the shipped weights and the fresh head drawn from the run's seed, as at epoch 0
    untrained = replace_classifier(load_model("demo", weights=DEMO_WEIGHTS_PATH), "demo", 10,
                                   rng=torch.Generator().manual_seed(3))
    assert result.untrained_test_map == pytest.approx(_sklearn_map(untrained, test), abs=1e-12)
    validation = _splits(tiny_canvases)[1]
    assert result.untrained_map == pytest.approx(_sklearn_map(untrained, validation), abs=1e-12)
    record = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert (record["test_map"], record["untrained_head_test_map"]) == (result.test_map,
                                                                       result.untrained_test_map)
    assert record["test"]["images"] == len(test)
    # without a test set (python -m empirical finetune for COCO/VOC) nothing about a test is recorded
    plain = _run(tiny_canvases, tmp_path / "plain", epochs=1)
    assert plain.test_map is None and plain.untrained_test_map is None
    assert "test_map" not in json.loads((tmp_path / "plain" / "finetune.json").read_text())


def test_same_seed_same_result_other_seed_other_result_and_a_different_run_in_out_is_refused(tiny_canvases,
                                                                                             tmp_path):
    first = _run(tiny_canvases, tmp_path / "a", epochs=1)
    second = _run(tiny_canvases, tmp_path / "b", epochs=1)
    third = _run(tiny_canvases, tmp_path / "c", epochs=1, seed=1)
    assert _without_times(first.metrics) == _without_times(second.metrics)
    assert first.metrics[1]["train_loss"] != third.metrics[1]["train_loss"]
    with pytest.raises(ValueError, match=r"holds a fine-tuning run with seed = 0, not 1"):
        _run(tiny_canvases, tmp_path / "a", epochs=1, seed=1)


@pytest.mark.parametrize(("options", "message"), [
    ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
    ({"batch_size": 1}, "batch_size must be an integer >= 2, got 1"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
    ({"device": "gpu7"}, "device must be a torch device"),
])
def test_bad_arguments_name_themselves(tiny_canvases, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        _run(tiny_canvases, tmp_path, **options)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "densenet121", "efficientnet-b0", "demo"])
def test_classifier_is_replaced_by_one_output_per_class(name):
    model = replace_classifier(build_model(name, rng=0), name, 5, rng=torch.Generator().manual_seed(0))
    head = getattr(model, CLASSIFIER_ATTRIBUTE[name])
    assert head.out_features == 5 and torch.equal(head.bias, torch.zeros(5))
    size = 32 if name == "demo" else 64
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, size, size)).shape == (1, 5)


def test_command_line_fine_tunes_the_demo(tiny_canvases, tmp_path, capsys):
    code = main(["--data", "coco", str(tiny_canvases), "--model", "demo", "--out", str(tmp_path / "cli"),
                 "--epochs", "1", "--batch-size", "4", "--train-split", "train", "--val-split", "val",
                 "--images", "6", "--no-progress"])
    assert code == 0 and "best validation mAP" in capsys.readouterr().out
    assert (tmp_path / "cli" / "best.pt").is_file()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--data", "yolo", "{root}"], "argument --data: FORMAT must be coco or voc, got 'yolo'"),
    (["--data", "coco", "{root}/absent"], "argument --data: PATH must be a folder"),
    (["--data", "coco", "{root}"], "(--train-split 'train2017'): COCO annotation file not found"),
    (["--data", "voc", "{root}"], "argument --data (--train-split 'train'): VOC annotation folder not found"),
    (["--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    (["--batch-size", "1"], "argument --batch-size: must be an integer >= 2, got '1'"),
    (["--images", "0"], "argument --images: must be a positive integer, got '0'"),
    (["--lr", "-1"], "argument --lr: must be a positive number, got '-1'"),
    (["--device", "gpu7"], "argument --device: must be cpu, cuda or cuda:N, got 'gpu7'"),
    (["--weights", "{root}/none.pt"], "argument --weights: weights file for 'demo' not found"),
    (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
    (["--epochs", "many"], "argument --epochs: must be a positive integer, got 'many'"),
])
def test_command_line_bad_input_gives_one_message_and_exit_2(tiny_canvases, tmp_path, capsys, arguments,
                                                             message):
    base = {"--data": ["coco", str(tiny_canvases)], "--model": ["demo"], "--out": [str(tmp_path / "out")],
            "--train-split": ["train"], "--val-split": ["val"]}
    given = [a.format(root=tiny_canvases) for a in arguments]
    if given[0] == "--data":
        base.pop("--train-split"), base.pop("--val-split")
    base[given[0]] = given[1:]
    with pytest.raises(SystemExit) as caught:
        main([item for flag, values in base.items() for item in (flag, *values)])
    error = capsys.readouterr().err
    assert caught.value.code == 2 and message in error and "Traceback" not in error


def test_demo_writes_its_canvases_once_and_fine_tunes_from_the_digit_weights(tmp_path):
    from empirical.multilabel.demo import finetune_demo

    tiny = {"train_canvases": 6, "val_canvases": 4, "test_canvases": 4, "epochs": 1, "batch_size": 4}
    result = finetune_demo(tmp_path, progress=False, **tiny)
    assert (tmp_path / "data" / "annotations" / "instances_test.json").is_file()
    assert result.best_path == tmp_path / "finetune" / "best.pt" and len(result.metrics) == 2
    assert 0 <= result.test_map <= 1 and 0 <= result.untrained_test_map <= 1
    stamp = (tmp_path / "data" / "train" / "canvas_00000.png").stat().st_mtime_ns
    finetune_demo(tmp_path, progress=False, **tiny)  # same settings: data kept, the finished run not redone
    assert (tmp_path / "data" / "train" / "canvas_00000.png").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="unknown demo setting 'epoch'"):
        finetune_demo(tmp_path, epoch=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fine_tuning_runs_on_cuda_when_asked(tiny_canvases, tmp_path):
    result = _run(tiny_canvases, tmp_path / "cuda", epochs=1, device="cuda")
    assert load_finetuned("demo", result.best_path, 10, "cuda").fc.weight.is_cuda


def test_asking_for_cuda_without_it_names_the_device(tiny_canvases, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="device 'cuda' was asked for, but CUDA is not available"):
        _run(tiny_canvases, tmp_path, device="cuda")


def test_image_set_for_the_experiments_explains_predicted_labels(tiny_canvases):
    from empirical.multilabel.dataset import multilabel_image_set

    image_set = multilabel_image_set(_splits(tiny_canvases)[1], "demo", n=3)
    assert image_set.images.shape == (3, 3, 32, 32) and image_set.labels is None
    assert image_set.names == ("canvas_00000.png", "canvas_00001.png", "canvas_00002.png")
    assert 0.0 <= float(image_set.images.min()) and float(image_set.images.max()) <= 1.0


def test_command_line_prints_the_estimate_before_the_bar(tiny_canvases, tmp_path, capsys):
    """Oracle: 6 training images in batches of 4 are 2 batches an epoch (``_batches``: none of one image),
    so 2 epochs are 4 batches; the estimate's line comes before anything of the bar."""
    code = main(["--data", "coco", str(tiny_canvases), "--model", "demo", "--out", str(tmp_path / "cli"),
                 "--epochs", "2", "--batch-size", "4", "--train-split", "train", "--val-split", "val",
                 "--images", "6"])
    err = capsys.readouterr().err
    line = err.lstrip("\r").splitlines()[0]
    assert code == 0 and line.startswith("finetune demo (2 epochs): estimated time "), err
    assert "for 4 batches" in line and "4/4" in err[err.index(line) + len(line):]
