"""Section 3b's account of the fine-tuning (seed A.3): the test mAP is the held-out figure, the validation
mAP is named as the one that picked the epoch, and a checkpoint recorded relative to the run folder is read
back against the folder the run lies in now.

Oracle: the numbers of a hand-written manifest, formatted to three places, appear in the paragraph.
"""

from __future__ import annotations

from types import SimpleNamespace

from reports.multilabel import multilabel_section
from reports.render import Paragraph


def _paragraph(tmp_path, finetune: dict, **context) -> str:
    manifest = {"profile": "demo-multilabel", "dataset": {"name": "digit-canvases", "images": 16},
                "finetune": finetune}
    run = SimpleNamespace(manifest=manifest, path=tmp_path / "empirical-multilabel", table=lambda name: None)
    section = multilabel_section(SimpleNamespace(multilabel=run, missing=[], **context))
    return next(block.text for block in section.blocks if isinstance(block, Paragraph))


def test_the_test_map_is_the_held_out_figure_and_the_validation_map_the_one_that_picked_the_epoch(tmp_path):
    checkpoint = tmp_path / "empirical-multilabel" / "multilabel-demo" / "finetune" / "best.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    record = {"best_epoch": 6, "best_val_map": 0.6444, "untrained_head_val_map": 0.269, "test_map": 0.6407,
              "untrained_head_test_map": 0.2733, "checkpoint": "multilabel-demo/finetune/best.pt"}
    text = _paragraph(tmp_path, record, out=tmp_path)
    assert "held-out test mAP of 0.641, against 0.273 for the untrained head" in text
    assert "validation mAP, which picked epoch 6 and is biased upwards by that choice, is 0.644" in text
    assert "(untrained head 0.269)" in text
    # the relative record, resolved against the run's folder, shown relative to the report folder (which the
    # report builds under another name and then renames)
    assert "Checkpoint: empirical-multilabel/multilabel-demo/finetune/best.pt in the report folder." in text
    assert f"Checkpoint: {checkpoint}." in _paragraph(tmp_path, record)  # no report folder: the path itself


def test_a_record_without_a_test_split_says_so_and_a_checkpoint_not_kept_is_named(tmp_path):
    text = _paragraph(tmp_path, {"best_epoch": 2, "best_val_map": 0.5, "untrained_head_val_map": 0.25,
                                 "checkpoint": "multilabel-demo/finetune/best.pt"})
    assert "no test split recorded" in text and "held-out test mAP" not in text
    assert "(not kept with this copy of the run)" in text
    assert "Fine-tuned" not in _paragraph(tmp_path, {})  # coco/voc runs: the fine-tuning is not recorded
