"""``python -m empirical finetune``: the seed's multi-label fine-tuning (section A.3) from the command line.

    python -m empirical finetune --data coco /data/coco --model resnet50 --weights W --out runs/coco-resnet50
    python -m empirical finetune --data voc /data/VOCdevkit/VOC2012 --model densenet121 --out runs/voc

COCO: ``PATH/annotations/instances_{split}.json`` with images in ``PATH/{split}/`` (splits ``train2017`` and
``val2017`` unless ``--train-split``/``--val-split`` say otherwise; the demo canvases use ``train``/``val``).
VOC: ``PATH/Annotations``, ``PATH/JPEGImages`` and ``PATH/ImageSets/Main/{split}.txt`` (``train``, ``val``).
A bad argument ends with one message naming it and its value, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from empirical.models import MODEL_NAMES, load_model
from empirical.multilabel.annotations import read_coco_split, read_voc
from empirical.multilabel.finetune import (
    PAPER_BATCH_SIZE,
    PAPER_EPOCHS,
    PAPER_LEARNING_RATE,
    finetune,
    resolve_device,
)
from theory.cli_options import (
    add_device,
    add_no_progress,
    add_out,
    add_seed,
    default_help,
    int_at_least,
    non_negative_int,
    positive_float,
    positive_int,
)

__all__ = ["DEFAULT_SPLITS", "build_parser", "main"]

DEFAULT_SPLITS = {"coco": ("train2017", "val2017"), "voc": ("train", "val")}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m empirical finetune``."""
    parser = argparse.ArgumentParser(prog="python -m empirical finetune",
                                     description="Fine-tune on COCO/VOC centre-crop labels (seed A.3).")
    parser.add_argument("--data", nargs=2, metavar=("FORMAT", "PATH"), required=True,
                        help="coco or voc, and the data folder")
    parser.add_argument("--model", required=True, choices=MODEL_NAMES, help="network to fine-tune")
    parser.add_argument("--weights", default=None, metavar="W",
                        help=default_help("pretrained weights",
                                          "the torch hub cache; demo: the digit weights"))
    add_out(parser, "output folder (resumes a run found there)", required=True)
    parser.add_argument("--epochs", type=positive_int, default=PAPER_EPOCHS, metavar="N",
                        help=default_help("training epochs", PAPER_EPOCHS))
    parser.add_argument("--batch-size", type=int_at_least(2), default=PAPER_BATCH_SIZE, metavar="B",
                        help=default_help("images per batch, at least 2", PAPER_BATCH_SIZE))
    parser.add_argument("--lr", type=positive_float, default=PAPER_LEARNING_RATE,
                        help=default_help("AdamW learning rate", PAPER_LEARNING_RATE))
    add_device(parser)
    add_seed(parser)
    parser.add_argument("--images", type=positive_int, default=None, metavar="N",
                        help=default_help("use only the first N images of each split", "all"))
    parser.add_argument("--train-split", default=None, metavar="SPLIT",
                        help=default_help("training split", "train2017 (coco), train (voc)"))
    parser.add_argument("--val-split", default=None, metavar="SPLIT",
                        help=default_help("validation split", "val2017 (coco), val (voc)"))
    parser.add_argument("--workers", type=non_negative_int, default=0, metavar="W",
                        help=default_help("data-loading processes", 0))
    add_no_progress(parser)
    return parser


def _read_split(data_format: str, path: Path, split: str, images: int | None):
    if data_format == "coco":
        return read_coco_split(path, split, max_images=images)
    return read_voc(path, split, max_images=images)


def main(argv=None) -> int:
    """Parse ``argv``, fine-tune, print the best and the untrained head's validation mAP; returns 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    data_format, data_path = args.data[0], Path(args.data[1])
    if data_format not in DEFAULT_SPLITS:
        parser.error(f"argument --data: FORMAT must be coco or voc, got {data_format!r}")
    if not data_path.is_dir():
        parser.error(f"argument --data: PATH must be a folder, got {str(data_path)!r}")
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(f"argument --device: {error}")
    train_split, val_split = DEFAULT_SPLITS[data_format]
    train_split, val_split = args.train_split or train_split, args.val_split or val_split
    splits = {}
    for flag, split in (("--train-split", train_split), ("--val-split", val_split)):
        try:
            splits[flag] = _read_split(data_format, data_path, split, args.images)
        except (ValueError, FileNotFoundError) as error:
            parser.error(f"argument --data ({flag} {split!r}): {error}")
        if len(splits[flag]) == 0:
            parser.error(f"argument --data ({flag} {split!r}): no image with boxes in {data_path}")
    try:
        load_model(args.model, weights=args.weights)  # a bad weights file is the user's error, not a crash
    except (ValueError, FileNotFoundError) as error:
        parser.error(f"argument --weights: {error}")
    result = finetune(args.model, splits["--train-split"], splits["--val-split"], weights=args.weights,
                      out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=device,
                      seed=args.seed, workers=args.workers, progress=not args.no_progress)
    print(f"best validation mAP {result.best_map:.4f} at epoch {result.best_epoch} (untrained head "
          f"{result.untrained_map:.4f}); best checkpoint {result.best_path}, "
          f"metrics {args.out / 'metrics.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
