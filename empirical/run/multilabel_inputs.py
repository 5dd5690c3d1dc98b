"""Networks and images of the multi-label profiles (seed A.3): ``demo-multilabel``, ``coco``, ``voc``.

- ``demo-multilabel``: the digit canvases are written and the demo network fine-tuned on them inside the run
  folder (``OUT/multilabel-demo/{data,finetune}``, ``empirical.multilabel.demo.finetune_demo``); a run
  started again finds the finished fine-tuning there and does not refit (``finetune`` resumes from its
  ``last.pt``). ``weights`` (a ``best.pt`` of the same settings) skips the fine-tuning altogether. The
  experiments see the first test canvases: digits that neither trained the network nor picked its epoch
  (that was the validation split). The manifest's ``finetune`` record holds the validation mAP that picked
  the epoch, the test mAP of the best checkpoint and of the untrained head, and the ``checkpoint``: relative
  to the run folder when it lies inside it (so the record survives the folder being moved, as
  ``python -m reports`` moves its staging folder into place), absolute otherwise; ``recorded_checkpoint``
  reads it back.
- ``coco`` / ``voc``: the validation split of ``data`` (COCO ``val2017``, VOC ``val``) and the fine-tuned
  checkpoints given as ``weights`` (``best.pt`` of ``python -m empirical finetune``), one per network.

The images carry no labels: the experiments explain each image's highest predicted label (seed A.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from empirical.multilabel.annotations import read_coco_split, read_voc
from empirical.multilabel.cli import DEFAULT_SPLITS
from empirical.multilabel.dataset import multilabel_image_set
from empirical.multilabel.demo import DEMO_SETTINGS, finetune_demo, write_demo_data
from empirical.multilabel.finetune import load_finetuned
from empirical.storage.data import ImageSet

__all__ = ["DEMO_FOLDER", "FINETUNE_RESULT_KEYS", "MultilabelInputs", "check_finetune_settings", "prepare",
           "recorded_checkpoint", "relative_to_run"]

#: the folder of a ``demo-multilabel`` run that holds its canvases and its fine-tuning
DEMO_FOLDER = "multilabel-demo"
#: the results of the demo's fine-tuning copied from its ``finetune.json`` into the manifest
FINETUNE_RESULT_KEYS = ("best_epoch", "best_val_map", "untrained_head_val_map", "test_map",
                        "untrained_head_test_map")


@dataclass(frozen=True)
class MultilabelInputs:
    """The images of a multi-label run, its classes, each network's fine-tuned checkpoint and (demo) the
    fine-tuning's record for the manifest."""

    images: ImageSet
    classes: tuple[str, ...]
    checkpoints: dict
    finetune: dict | None = None

    def load(self, name: str, device: str):
        """The fine-tuned network ``name`` (``weights_only=True``), in eval mode on ``device``."""
        return load_finetuned(name, self.checkpoints[name], len(self.classes), device=device)


def check_finetune_settings(settings) -> dict:
    """``settings`` (None or a dict of ``DEMO_SETTINGS`` keys) completed with the demo's defaults; ValueError
    naming an unknown key."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEMO_SETTINGS))
    if unknown:
        raise ValueError(f"finetune_settings: unknown demo setting {unknown[0]!r}; known: "
                         f"{', '.join(DEMO_SETTINGS)}")
    return {**DEMO_SETTINGS, **settings}


def prepare(profile, *, out, models, images: int, data, weights: dict, device: str, seed: int,
            progress: bool, finetune_settings=None) -> MultilabelInputs:
    """The :class:`MultilabelInputs` of a run of the multi-label ``profile`` (module docstring);
    ``weights``: model -> checkpoint path or None."""
    if profile.dataset == "digit-canvases":
        return _demo(out=Path(out), images=images, checkpoint=weights.get("demo"), device=device, seed=seed,
                     progress=progress, settings=check_finetune_settings(finetune_settings))
    if finetune_settings:
        raise ValueError(f"finetune_settings is only read by the 'demo-multilabel' profile, not "
                         f"{profile.name!r}; got {finetune_settings!r}")
    if data is None:
        raise ValueError(f"profile {profile.name!r} needs data: pass --data with the {profile.dataset} "
                         "folder that python -m empirical finetune read")
    missing = [name for name in models if weights.get(name) in (None, "random")]
    if missing:
        raise ValueError(f"profile {profile.name!r} needs the fine-tuned weights of {missing[0]!r}: pass "
                         f"--weights {missing[0]}=OUT/best.pt from python -m empirical finetune")
    data = Path(data)
    if not data.is_dir():
        raise ValueError(f"data must be the {profile.dataset} folder, got {str(data)!r}")
    split = DEFAULT_SPLITS[profile.dataset][1]
    annotations = read_coco_split(data, split) if profile.dataset == "coco" else read_voc(data, split)
    image_set = multilabel_image_set(annotations, models[0], images)
    return MultilabelInputs(image_set, annotations.class_names, {name: str(weights[name]) for name in models})


def relative_to_run(path, run_folder) -> str:
    """``path`` as recorded in a run's manifest: relative to ``run_folder`` (POSIX separators) when it lies
    inside it, else absolute. Returns the string."""
    path, run_folder = Path(path).resolve(), Path(run_folder).resolve()
    try:
        return path.relative_to(run_folder).as_posix()
    except ValueError:
        return str(path)


def recorded_checkpoint(record: dict | None, run_folder) -> Path | None:
    """The fine-tuned checkpoint a manifest's ``finetune`` ``record`` names, a relative path resolved against
    ``run_folder`` (where the manifest now lies). Returns None when the record names none."""
    checkpoint = (record or {}).get("checkpoint")
    if not checkpoint:
        return None
    checkpoint = Path(checkpoint)
    return checkpoint if checkpoint.is_absolute() else Path(run_folder) / checkpoint


def _demo(*, out: Path, images: int, checkpoint, device: str, seed: int, progress: bool,
          settings: dict) -> MultilabelInputs:
    folder = out / DEMO_FOLDER
    record = {"settings": settings}
    if checkpoint in (None, "random"):
        result = finetune_demo(folder, seed=seed, device=device, progress=progress, **settings)
        checkpoint = result.best_path
        record.update(best_epoch=result.best_epoch, best_val_map=result.best_map,
                      untrained_head_val_map=result.untrained_map, test_map=result.test_map,
                      untrained_head_test_map=result.untrained_test_map)
    elif (Path(checkpoint).parent / "finetune.json").is_file():  # the record the fine-tuning left beside it
        saved = json.loads((Path(checkpoint).parent / "finetune.json").read_text())
        record.update({key: saved.get(key) for key in FINETUNE_RESULT_KEYS})
    data = write_demo_data(folder / "data", seed=seed, train_canvases=settings["train_canvases"],
                           val_canvases=settings["val_canvases"], test_canvases=settings["test_canvases"])
    test = read_coco_split(data, "test")
    record["checkpoint"] = relative_to_run(checkpoint, out)
    return MultilabelInputs(multilabel_image_set(test, "demo", images), test.class_names,
                            {"demo": str(checkpoint)}, record)
