"""Fixtures of the multi-label tests (seed A.3): tiny COCO and VOC folders written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every multi-label test runs on one torch thread (the machine's two cores are shared)."""


def write_png(path: Path, width: int, height: int, value: int = 128) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), value, dtype=np.uint8), mode="L").save(path)
    return path


def coco_document(images, annotations, categories=((1, "cat"), (3, "dog"))) -> dict:
    """A COCO detection document from (id, file, width, height), (image id, category id, bbox) tuples."""
    return {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": list(b), "iscrowd": 0}
                        for k, (i, c, b) in enumerate(annotations)],
        "categories": [{"id": i, "name": n} for i, n in categories],
    }


def write_coco(root: Path, document: dict, *, images=True) -> tuple[Path, Path]:
    """``root/instances_test.json`` and (when ``images``) the PNG files it names under ``root/images``."""
    root.mkdir(parents=True, exist_ok=True)
    annotation_file = root / "instances_test.json"
    annotation_file.write_text(json.dumps(document))
    if images:
        for record in document["images"]:
            write_png(root / "images" / record["file_name"], record["width"], record["height"])
    return annotation_file, root / "images"


def voc_xml(file_name: str, width, height, objects) -> str:
    """A VOC annotation; ``objects``: (name, xmin, ymin, xmax, ymax)."""
    body = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
                   f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>" for n, a, b, c, d in objects)
    return (f"<annotation><folder>VOC</folder><filename>{file_name}</filename><size><width>{width}</width>"
            f"<height>{height}</height><depth>3</depth></size>{body}</annotation>")


def write_voc(root: Path, entries, *, split=None, images=True) -> Path:
    """A VOC folder: ``entries`` are (id, width, height, objects); optional ``ImageSets/Main/{split}.txt``."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for ident, width, height, objects in entries:
        (root / "Annotations" / f"{ident}.xml").write_text(voc_xml(f"{ident}.jpg", width, height, objects))
        if images:
            write_png(root / "JPEGImages" / f"{ident}.jpg", width, height)
    if split is not None:
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{e[0]}\n" for e in entries))
    return root


@pytest.fixture
def files():
    """The writers above, for the tests (a fixture: test modules cannot import this conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(write_png=write_png, coco_document=coco_document, write_coco=write_coco,
                           voc_xml=voc_xml, write_voc=write_voc)


@pytest.fixture(scope="session")
def tiny_canvases(tmp_path_factory):
    """12 training, 8 validation and 6 test digit canvases (COCO layout), written once for the session."""
    from empirical.multilabel.digit_canvases import write_digit_canvases

    root = tmp_path_factory.mktemp("canvases")
    write_digit_canvases(root, train_canvases=12, val_canvases=8, test_canvases=6, rng=0)
    return root
