"""The multi-label arm of the audit (seed section A.3).

- ``annotations``: COCO detection JSON and PASCAL VOC XML, read offline into one validated form.
- ``crop_labels``: the seed's centre-crop labels (a class is positive when the crop holds >= 40% of a box).
- ``digit_canvases``: an embedded multi-digit demo data set written in COCO format; ``demo``: its sizes and
  ``finetune_demo`` (profile ``demo-multilabel``).
- ``dataset``: images and crop labels as a ``torch.utils.data.Dataset``; the seeded horizontal flip.
- ``finetune``: the seed's fine-tuning recipe (sigmoid + BCE, AdamW lr 1e-4, batch 64, best of 20 epochs),
  ``load_finetuned``; ``cli.main``: ``python -m empirical finetune``.
- ``targets``: the explained label (highest predicted) and its score (sigmoid instead of softmax).
"""
