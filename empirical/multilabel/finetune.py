"""The seed's multi-label fine-tuning (section A.3): "We used AdamW, a learning rate of 0.0001 for all layers,
a batch size of 64. Data augmentation used a 224 pixel resize, a 224 pixel center crop and
RandomHorizontalFlip. We selected the model with the best validation performance within the first 20 epochs."

The classifier of the pretrained network is replaced by a fresh linear layer with one output per class
(resnet50 ``fc``, densenet121 ``classifier``, efficientnet-b0 ``_fc``, demo ``fc``), trained with sigmoid +
binary cross-entropy (``BCEWithLogitsLoss``) together with every other layer. Validation performance is the
mean average precision: scikit-learn's ``average_precision_score`` per class, averaged over the classes with
at least one positive validation label (a class without positives has no defined AP and is left out; the
count of classes used is in the metrics). Epoch 0 of the metrics is the network with its fresh, untrained
head.

The validation mAP picked the epoch, so it is biased upwards as an estimate of the network's performance. A
``test`` set, when given, is held out from both: after training, the best checkpoint and the untrained head
(the same fresh classifier as epoch 0) are scored on it by the same scikit-learn mAP, once each (the demo
does this; ``python -m empirical finetune`` for COCO/VOC has no test split and records none).

Files in ``out``: ``best.pt`` (state dict of the best epoch), ``last.pt`` (model, optimiser, epoch, history:
what a killed run resumes from), ``metrics.csv`` (one row per epoch), ``finetune.json`` (configuration and
result; with a ``test`` set also ``test_map`` and ``untrained_head_test_map``). Every file is written
atomically (temporary file, then rename) after each finished epoch. All random draws (head initialisation,
shuffling, flips, dropout) come from generators seeded by ``seed`` and the epoch, so a resumed run ends in
the same state as an uninterrupted one (same device and thread count).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from empirical.models import NETWORKS, build_model, load_model
from empirical.multilabel.annotations import AnnotationSet
from empirical.multilabel.dataset import MultiLabelDataset, input_geometry, random_horizontal_flip
from empirical.storage.progress import EstimatedBar
from empirical.storage.tables import FINETUNE_METRICS_COLUMNS

__all__ = [
    "CLASSIFIER_ATTRIBUTE",
    "PAPER_BATCH_SIZE",
    "PAPER_EPOCHS",
    "PAPER_LEARNING_RATE",
    "FinetuneResult",
    "finetune",
    "load_finetuned",
    "mean_average_precision",
    "replace_classifier",
    "resolve_device",
]

PAPER_EPOCHS = 20
PAPER_BATCH_SIZE = 64
PAPER_LEARNING_RATE = 1e-4
CLASSIFIER_ATTRIBUTE = {name: NETWORKS[name].classifier
                        for name in ("resnet50", "densenet121", "efficientnet-b0", "demo")}
_EPOCH_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class FinetuneResult:
    """Where the best checkpoint is, its epoch and validation mAP, the untrained head's validation mAP, all
    metrics, and (with a test set) the test mAP of the best checkpoint and of the untrained head."""

    best_path: Path
    best_epoch: int
    best_map: float
    untrained_map: float
    metrics: tuple[dict, ...]
    test_map: float | None = None
    untrained_test_map: float | None = None


def replace_classifier(model: nn.Module, model_name: str, num_classes: int, *,
                       rng: torch.Generator) -> nn.Module:
    """Put a fresh ``nn.Linear(features, num_classes)`` in place of ``model_name``'s classifier (in place;
    returns ``model``). Weights uniform(+-1/sqrt(features)) and zero bias, drawn from ``rng``."""
    if model_name not in CLASSIFIER_ATTRIBUTE:
        raise ValueError(f"unknown model name {model_name!r}; known: {', '.join(CLASSIFIER_ATTRIBUTE)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    old = getattr(model, CLASSIFIER_ATTRIBUTE[model_name])
    head = nn.Linear(old.in_features, num_classes)
    bound = 1.0 / math.sqrt(old.in_features)
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=rng)
        head.bias.zero_()
    setattr(model, CLASSIFIER_ATTRIBUTE[model_name], head.to(old.weight.device))
    return model


def mean_average_precision(labels, scores) -> tuple[float, int]:
    """Macro mean of scikit-learn's ``average_precision_score`` over the classes with at least one positive in
    ``labels`` (N, classes) of 0/1; ``scores`` (N, classes). Returns (mAP, classes used); NaN, 0 if none."""
    from sklearn.metrics import average_precision_score

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 2:
        raise ValueError(f"labels and scores must have the same shape (N, classes), got {labels.shape} "
                         f"and {scores.shape}")
    used = np.flatnonzero(labels.sum(axis=0) > 0)
    if used.size == 0:
        return math.nan, 0
    precisions = [average_precision_score(labels[:, k], scores[:, k]) for k in used]
    return float(np.mean(precisions)), int(used.size)


def load_finetuned(model_name: str, path, num_classes: int, device="cpu") -> nn.Module:
    """The fine-tuned network of ``path`` (``best.pt``, or ``last.pt`` whose ``model`` entry is used), with a
    ``num_classes`` head, in eval mode on ``device``; loaded with ``weights_only=True``. ValueError when the
    file does not fit the network."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fine-tuned weights not found: {path} (run `python -m empirical finetune`)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    model = replace_classifier(build_model(model_name, rng=0), model_name, num_classes,
                               rng=torch.Generator().manual_seed(0))
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"weights in {path} do not fit {model_name!r} with {num_classes} classes: "
                         f"{str(error).splitlines()[0]}") from error
    return model.eval().to(device)


def _untrained(model_name: str, weights, num_classes: int, seed: int) -> nn.Module:
    """The network of epoch 0 on the CPU: ``weights`` loaded, the classifier replaced by a fresh head drawn
    from ``seed`` (the same head every time, so the untrained head can be rebuilt after a resume)."""
    model = load_model(model_name, weights=weights, device="cpu")
    return replace_classifier(model, model_name, num_classes, rng=torch.Generator().manual_seed(seed))


def _atomic_save(obj, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def _atomic_text(text: str, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _write_metrics(history, path: Path) -> None:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FINETUNE_METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    _atomic_text(buffer.getvalue(), path)


def _batches(count: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """A random order of ``count`` indices in batches; a last batch of one joins the one before (batch-norm
    cannot train on a single image)."""
    order = torch.randperm(count, generator=generator).tolist()
    batches = [order[start:start + batch_size] for start in range(0, count, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def _evaluate(model, loader, device, loss_function) -> tuple[float, float, int]:
    model.eval()
    scores, labels, total = [], [], 0.0
    with torch.inference_mode():
        for images, targets in loader:
            logits = model(images.to(device)).float()
            total += float(loss_function(logits, targets.to(device))) * len(targets)
            scores.append(logits.cpu())
            labels.append(targets)
    scores, labels = torch.cat(scores).numpy(), torch.cat(labels).numpy()
    mean_ap, used = mean_average_precision(labels, scores)
    return total / len(labels), mean_ap, used


def resolve_device(device) -> torch.device:
    """``device`` as a ``torch.device``; ValueError for a name that is no device, or absent CUDA."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available here")
    return resolved


def finetune(model_name: str, train: AnnotationSet, validation: AnnotationSet, *, weights, out,
             epochs: int = PAPER_EPOCHS, batch_size: int = PAPER_BATCH_SIZE, lr: float = PAPER_LEARNING_RATE,
             weight_decay: float = 0.01, device="cpu", seed: int = 0, workers: int = 0,
             progress: bool = True, test: AnnotationSet | None = None,
             on_epoch_end: Callable[[int, dict], None] | None = None) -> FinetuneResult:
    """Fine-tune ``model_name`` from ``weights`` (as ``empirical.models.load_model`` takes them) on ``train``
    and select by validation mAP on ``validation`` (recipe and files: module docstring); ``test`` (optional)
    scores the best checkpoint and the untrained head on images that neither trained nor selected.

    Resumes from ``out/last.pt`` when it holds a run of the same configuration (``epochs`` may grow; the test
    set is no part of it); a different configuration there is a ValueError. ``on_epoch_end(epoch, metrics
    row)`` runs after each epoch's files are written. Returns a :class:`FinetuneResult`.
    """
    from torch.utils.data import DataLoader

    for name, value, minimum in (("epochs", epochs, 1), ("batch_size", batch_size, 2), ("seed", seed, 0),
                                 ("workers", workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    for name, data in (("train", train), ("validation", validation), ("test", test)):
        if name == "test" and data is None:
            continue
        if not isinstance(data, AnnotationSet) or len(data) == 0:
            raise ValueError(f"{name} must be a non-empty AnnotationSet, got {data!r:.80}")
        if data.class_names != train.class_names:
            raise ValueError(f"train and {name} name different classes: {train.class_names[:5]}... and "
                             f"{data.class_names[:5]}...")
    device = resolve_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    geometry = input_geometry(model_name)
    weights_name = str(Path(weights).resolve()) if isinstance(weights, (str, Path)) and weights != "random" \
        else str(weights)
    config = {"model": model_name, "weights": weights_name, "classes": list(train.class_names),
              "train_images": len(train), "validation_images": len(validation), "batch_size": batch_size,
              "lr": float(lr), "weight_decay": float(weight_decay), "seed": seed,
              "resize": geometry["resize"], "crop_size": geometry["crop_size"]}
    train_set = MultiLabelDataset(train, **geometry)
    val_loader = DataLoader(MultiLabelDataset(validation, **geometry), batch_size=batch_size,
                            num_workers=workers)
    model = _untrained(model_name, weights, train.num_classes, seed).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_function = nn.BCEWithLogitsLoss()
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.is_file():
        saved = torch.load(last_path, map_location="cpu", weights_only=True)
        differing = [key for key in config if saved["config"].get(key) != config[key]]
        if differing:
            key = differing[0]
            raise ValueError(f"out {out} holds a fine-tuning run with {key} = {saved['config'].get(key)!r}, "
                             f"not {config[key]!r}: choose another out folder or delete {last_path}")
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimizer"])
        history = list(saved["history"])
    else:
        started = time.perf_counter()
        val_loss, val_map, used = _evaluate(model, val_loader, device, loss_function)
        history = [{"epoch": 0, "train_loss": math.nan, "val_loss": val_loss, "val_map": val_map,
                    "val_classes": used, "seconds": time.perf_counter() - started}]
    done = history[-1]["epoch"]
    per_epoch = len(_batches(len(train_set), batch_size, torch.Generator()))
    # one bar over the training batches of the epochs to run: its estimate line, from the first batch (whose
    # step is kept), comes before the bar is drawn
    with EstimatedBar(max(epochs - done, 0) * per_epoch, enabled=progress, unit="batch",
                      description=f"finetune {model_name} ({max(epochs - done, 0)} epochs)") as bar:
        for epoch in range(done + 1, epochs + 1):
            started = time.perf_counter()
            epoch_seed = seed * _EPOCH_SEED_STRIDE + epoch
            generator = torch.Generator().manual_seed(epoch_seed)
            loader = DataLoader(train_set, batch_sampler=_batches(len(train_set), batch_size, generator),
                                num_workers=workers)
            model.train()
            total, seen = 0.0, 0
            # dropout and drop-connect (efficientnet) draw from torch's global generator: seeded per epoch
            # inside a fork, so the caller's global state is left as it was
            fork_devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=fork_devices):
                torch.manual_seed(epoch_seed)
                for images, targets in loader:
                    images = random_horizontal_flip(images, rng=generator).to(device)
                    optimiser.zero_grad(set_to_none=True)
                    loss = loss_function(model(images).float(), targets.to(device))
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(targets)
                    seen += len(targets)
                    bar.update(1)
            val_loss, val_map, used = _evaluate(model, val_loader, device, loss_function)
            row = {"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss, "val_map": val_map,
                   "val_classes": used, "seconds": time.perf_counter() - started}
            previous_best = max((r["val_map"] for r in history if r["epoch"] > 0), default=-math.inf)
            history.append(row)
            state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
            if val_map > previous_best or not best_path.is_file():
                _atomic_save(state, best_path)
            _atomic_save({"model": state, "optimizer": optimiser.state_dict(), "history": history,
                          "config": config}, last_path)
            _write_metrics(history, out / "metrics.csv")
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    trained = [row for row in history if 0 < row["epoch"] <= epochs]
    best = max(trained, key=lambda row: row["val_map"]) if trained else history[0]
    _write_metrics(history, out / "metrics.csv")
    record = {"config": config, "epochs": epochs, "best_epoch": int(best["epoch"]),
              "best_val_map": float(best["val_map"]), "untrained_head_val_map": float(history[0]["val_map"]),
              "train": train.describe(), "validation": validation.describe()}
    if test is not None:
        test_loader = DataLoader(MultiLabelDataset(test, **geometry), batch_size=batch_size,
                                 num_workers=workers)
        untrained = _untrained(model_name, weights, train.num_classes, seed).to(device)
        networks = {"test_map": load_finetuned(model_name, best_path, train.num_classes, device=device),
                    "untrained_head_test_map": untrained}
        for key, network in networks.items():
            record[key] = _evaluate(network, test_loader, device, loss_function)[1]
        record["test"] = test.describe()
    _atomic_text(json.dumps(record, indent=2) + "\n", out / "finetune.json")
    return FinetuneResult(best_path, record["best_epoch"], record["best_val_map"],
                          record["untrained_head_val_map"], tuple(history), record.get("test_map"),
                          record.get("untrained_head_test_map"))
