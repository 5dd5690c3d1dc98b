"""Detection annotations for the multi-label arm (seed section A.3): COCO ``instances_*.json`` and PASCAL VOC
``Annotations/*.xml``, read offline into one in-memory form.

The common form is an :class:`AnnotationSet`: the class names in a fixed order (COCO: by category id; VOC: the
20 classes in their customary order, ``VOC_CLASSES``) and one :class:`AnnotatedImage` per image (path, width,
height, boxes as ``(class index, (x0, y0, x1, y1))`` in continuous pixel coordinates, 0 <= x0 < x1 <= width).
COCO boxes ``[x, y, w, h]`` become ``(x, y, x + w, y + h)``; VOC's 1-based inclusive pixel indices
``xmin..xmax`` become ``(xmin - 1, xmax)`` so that a box covers exactly the pixels it names.

What is an error (``ValueError``, one message naming the file and the entry) and what is skipped and counted:

- errors: malformed JSON or XML, missing or ill-typed fields, an unknown category (COCO ``category_id`` not in
  ``categories``, VOC ``object/name`` not in the class list), an annotation of an unknown image, duplicate
  image or category ids, a box with negative width or height (COCO) or ``xmax < xmin`` (VOC), a box outside
  the image by more than ``ROUNDING_TOLERANCE`` pixels, a missing image file (checked for the images used);
- skipped and counted in ``AnnotationSet.skipped`` (reason -> count, with the first messages in
  ``skipped_examples``): images without any box (nothing to label; ``keep_empty=True`` keeps them), boxes of
  zero width or height (they hold no area, so the 40% rule is undefined);
- corrected and counted: box edges outside the image by at most ``ROUNDING_TOLERANCE`` pixels are clipped;
  a VOC ``size`` that is missing or zero is read from the image file.

Crowd regions (COCO ``iscrowd``) and VOC ``difficult`` objects are kept: they are boxes of the class.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ROUNDING_TOLERANCE",
    "VOC_CLASSES",
    "AnnotatedImage",
    "AnnotationSet",
    "read_coco",
    "read_coco_split",
    "read_voc",
]

#: box edges this many pixels outside the image count as rounding: clipped and counted, not an error
ROUNDING_TOLERANCE = 1.0
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
_EXAMPLES_KEPT = 10

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class AnnotatedImage:
    """One image: its file, size in pixels, and boxes ``(class index, (x0, y0, x1, y1))``."""

    path: Path
    width: int
    height: int
    boxes: tuple[tuple[int, Box], ...]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL's ``Image.size``."""
        return self.width, self.height


@dataclass(frozen=True)
class AnnotationSet:
    """Images with boxes, the class names (index = position), the source and what was skipped or corrected."""

    images: tuple[AnnotatedImage, ...]
    class_names: tuple[str, ...]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict:
        """The manifest entry: source, images, classes, and the skip counts by reason with first examples."""
        return {"source": self.source, "images": len(self.images), "classes": len(self.class_names),
                "boxes": sum(len(image.boxes) for image in self.images),
                "skipped": dict(self.skipped), "skipped_examples": list(self.skipped_examples)}


class _Tally:
    """Counts of skipped or corrected entries by reason, with the first few messages."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.examples: list[str] = []

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        if len(self.examples) < _EXAMPLES_KEPT:
            self.examples.append(message)


def _check_limit(max_images) -> int | None:
    if max_images is None:
        return None
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive integer or None, got {max_images!r}")
    return max_images


def _checked_box(box: Box, width: int, height: int, where: str, tally: _Tally) -> Box | None:
    """``box`` clipped to the image when outside only by rounding; None (counted) when of zero area."""
    x0, y0, x1, y1 = box
    outside = max(-x0, -y0, x1 - width, y1 - height)
    if outside > ROUNDING_TOLERANCE:
        raise ValueError(f"{where}: box (x0, y0, x1, y1) = {box} lies outside the {width}x{height} image "
                         f"by {outside:g} pixels (more than the rounding tolerance {ROUNDING_TOLERANCE:g})")
    if outside > 0:
        x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
        tally.add("box clipped to the image (outside by rounding)", f"{where}: box {box} clipped")
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        tally.add("box of zero width or height", f"{where}: box {box} has no area, skipped")
        return None
    return (float(x0), float(y0), float(x1), float(y1))


def _finish(entries, class_names, source, tally: _Tally, *, keep_empty: bool, max_images, check_files,
            annotation_file_of) -> AnnotationSet:
    """Drop (and count) images without boxes, keep the first ``max_images`` by file name, check files."""
    kept = []
    for image in sorted(entries, key=lambda image: (image.path.name, str(image.path))):
        if not image.boxes and not keep_empty:
            tally.add("image without boxes", f"{annotation_file_of(image)}: image {image.path.name} has no "
                                             "box, skipped")
            continue
        kept.append(image)
    kept = kept[:max_images]
    if check_files:
        for image in kept:
            if not image.path.is_file():
                raise ValueError(f"{annotation_file_of(image)}: image file of {image.path.name!r} not found: "
                                 f"{image.path}")
    return AnnotationSet(tuple(kept), tuple(class_names), source, dict(tally.counts), tuple(tally.examples))


# --------------------------------------------------------------------------- COCO

def _number(value, where: str, name: str, *, integer: bool = False, positive: bool = False):
    valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if valid and integer:
        valid = float(value).is_integer()
    if valid and positive:
        valid = value > 0
    if not valid:
        kind = ("a positive integer" if integer and positive else "an integer" if integer
                else "a finite number")
        raise ValueError(f"{where}: {name} must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


def read_coco(annotation_file, image_dir, *, max_images: int | None = None, keep_empty: bool = False,
              check_files: bool = True) -> AnnotationSet:
    """The images and boxes of a COCO detection file (``instances_*.json``) whose images lie in ``image_dir``.

    Returns an :class:`AnnotationSet` with the classes ordered by category id and the images ordered by file
    name (the first ``max_images`` of those with boxes). Raises ValueError (naming the file and the entry) for
    the errors of the module docstring, FileNotFoundError when the annotation file is missing.
    """
    max_images = _check_limit(max_images)
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    if not annotation_file.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {annotation_file}")
    try:
        data = json.loads(annotation_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{annotation_file}: malformed JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{annotation_file}: expected a JSON object with images, annotations and "
                         f"categories, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{annotation_file}: '{key}' must be a list, got {type(data.get(key)).__name__}")

    def entry(kind: str, position: int, record) -> str:
        ident = f" (id {record.get('id')!r})" if isinstance(record, dict) and "id" in record else ""
        return f"{annotation_file}: {kind}[{position}]{ident}"

    def record_of(kind: str, position: int, record, keys) -> dict:
        if not isinstance(record, dict):
            raise ValueError(f"{entry(kind, position, record)}: expected an object, got {record!r}")
        missing = [key for key in keys if key not in record]
        if missing:
            raise ValueError(f"{entry(kind, position, record)}: missing field(s) {', '.join(missing)}")
        return record

    categories = {}
    for position, record in enumerate(data["categories"]):
        where = entry("categories", position, record_of("categories", position, record, ("id", "name")))
        ident = _number(record["id"], where, "id", integer=True)
        if ident in categories:
            raise ValueError(f"{where}: duplicate category id {ident}")
        if not isinstance(record["name"], str) or not record["name"]:
            raise ValueError(f"{where}: name must be a non-empty string, got {record['name']!r}")
        categories[ident] = record["name"]
    if not categories:
        raise ValueError(f"{annotation_file}: 'categories' is empty")
    class_of = {ident: index for index, ident in enumerate(sorted(categories))}

    images = {}
    for position, record in enumerate(data["images"]):
        record = record_of("images", position, record, ("id", "file_name", "width", "height"))
        where = entry("images", position, record)
        ident = _number(record["id"], where, "id", integer=True)
        if ident in images:
            raise ValueError(f"{where}: duplicate image id {ident}")
        if not isinstance(record["file_name"], str) or not record["file_name"]:
            raise ValueError(f"{where}: file_name must be a non-empty string, got {record['file_name']!r}")
        width = _number(record["width"], where, "width", integer=True, positive=True)
        height = _number(record["height"], where, "height", integer=True, positive=True)
        images[ident] = (record["file_name"], width, height, [])

    tally = _Tally()
    for position, record in enumerate(data["annotations"]):
        record = record_of("annotations", position, record, ("image_id", "category_id", "bbox"))
        where = entry("annotations", position, record)
        image_id = _number(record["image_id"], where, "image_id", integer=True)
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id} is not among the file's images")
        category = _number(record["category_id"], where, "category_id", integer=True)
        if category not in class_of:
            raise ValueError(f"{where}: unknown category_id {category} (known: {sorted(categories)})")
        bbox = record["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"{where}: bbox must be a list [x, y, w, h] of 4 numbers, got {bbox!r}")
        x, y, w, h = (_number(value, where, "bbox", integer=False) for value in bbox)
        if w < 0 or h < 0:
            raise ValueError(f"{where}: bbox {bbox} has a negative width or height")
        file_name, width, height, boxes = images[image_id]
        box = _checked_box((x, y, x + w, y + h), width, height, f"{where} of image {file_name!r}", tally)
        if box is not None:
            boxes.append((class_of[category], box))

    entries = [AnnotatedImage(image_dir / file_name, width, height, tuple(boxes))
               for file_name, width, height, boxes in images.values()]
    class_names = [categories[ident] for ident in sorted(categories)]
    return _finish(entries, class_names, str(annotation_file.resolve()), tally, keep_empty=keep_empty,
                   max_images=max_images, check_files=check_files,
                   annotation_file_of=lambda image: annotation_file)


def read_coco_split(root, split: str, **options) -> AnnotationSet:
    """``read_coco(root/annotations/instances_{split}.json, root/{split})``: COCO's folder layout (real COCO:
    ``split="val2017"``; the demo canvases: ``"train"``, ``"val"``). ``options`` go to ``read_coco``."""
    if not isinstance(split, str) or not split or "/" in split:
        raise ValueError(f"split must be a folder name such as 'val2017', got {split!r}")
    root = Path(root)
    return read_coco(root / "annotations" / f"instances_{split}.json", root / split, **options)


# --------------------------------------------------------------------------- PASCAL VOC

def _text(element, path: str, where: str) -> str:
    found = element.find(path)
    if found is None or found.text is None or not found.text.strip():
        raise ValueError(f"{where}: missing <{path}>")
    return found.text.strip()


def _xml_number(element, path: str, where: str) -> float:
    text = _text(element, path, where)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: <{path}> must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: <{path}> must be a finite number, got {text!r}")
    return value


def _voc_size(root_element, xml_file: Path, image_path: Path, tally: _Tally) -> tuple[int, int]:
    size = root_element.find("size")
    width = height = 0.0
    if size is not None and size.find("width") is not None and size.find("height") is not None:
        width = _xml_number(size, "width", f"{xml_file}: <size>")
        height = _xml_number(size, "height", f"{xml_file}: <size>")
        if width < 0 or height < 0 or not width.is_integer() or not height.is_integer():
            raise ValueError(f"{xml_file}: <size> must hold non-negative integers, got {width:g}x{height:g}")
    if width > 0 and height > 0:
        return int(width), int(height)
    if not image_path.is_file():
        raise ValueError(f"{xml_file}: <size> is missing or zero and the image file {image_path} is not "
                         "found")
    from PIL import Image

    with Image.open(image_path) as image:
        tally.add("VOC size read from the image file", f"{xml_file}: <size> missing or zero, read from "
                                                        f"{image_path.name}")
        return image.size


def read_voc(root, split: str | None = None, *, classes=VOC_CLASSES, max_images: int | None = None,
             keep_empty: bool = False, check_files: bool = True) -> AnnotationSet:
    """The images and boxes of a PASCAL VOC folder: ``root/Annotations/*.xml``, images in ``root/JPEGImages``.

    ``split`` names ``root/ImageSets/Main/{split}.txt`` (one image id a line); None reads every XML file.
    ``classes``: the class names in label order (default the 20 VOC classes). Returns an
    :class:`AnnotationSet` ordered by file name (the first ``max_images`` of those with boxes). Raises
    ValueError (naming the file and the object) for the errors of the module docstring.
    """
    max_images = _check_limit(max_images)
    classes = tuple(classes)
    if not classes or len(set(classes)) != len(classes) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"classes must be distinct strings, got {classes!r}")
    class_of = {name: index for index, name in enumerate(classes)}
    root = Path(root)
    annotation_dir = root / "Annotations"
    if not annotation_dir.is_dir():
        raise FileNotFoundError(f"VOC annotation folder not found: {annotation_dir}")
    if split is None:
        xml_files = sorted(annotation_dir.glob("*.xml"))
        if not xml_files:
            raise ValueError(f"{annotation_dir} holds no .xml files")
    else:
        list_file = root / "ImageSets" / "Main" / f"{split}.txt"
        if not list_file.is_file():
            raise ValueError(f"split {split!r}: image list not found: {list_file}")
        ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
        xml_files = [annotation_dir / f"{ident}.xml" for ident in ids]
        for line, xml_file in enumerate(xml_files, start=1):
            if not xml_file.is_file():
                raise ValueError(f"{list_file}, line {line}: annotation file not found: {xml_file}")
    tally = _Tally()
    entries, source_of = [], {}
    for xml_file in xml_files:
        try:
            document = ElementTree.parse(xml_file).getroot()
        except ElementTree.ParseError as error:
            raise ValueError(f"{xml_file}: malformed XML ({error})") from error
        found = document.find("filename")
        file_name = found.text.strip() if found is not None and found.text else f"{xml_file.stem}.jpg"
        image_path = root / "JPEGImages" / file_name
        width, height = _voc_size(document, xml_file, image_path, tally)
        boxes = []
        for position, obj in enumerate(document.findall("object")):
            where = f"{xml_file}: object[{position}]"
            name = _text(obj, "name", where)
            if name not in class_of:
                raise ValueError(f"{where}: unknown class name {name!r} (known: {', '.join(classes)})")
            bndbox = obj.find("bndbox")
            if bndbox is None:
                raise ValueError(f"{where}: missing <bndbox>")
            xmin, ymin, xmax, ymax = (_xml_number(bndbox, key, f"{where} <bndbox>")
                                      for key in ("xmin", "ymin", "xmax", "ymax"))
            if xmax < xmin or ymax < ymin:
                raise ValueError(f"{where}: <bndbox> has xmax < xmin or ymax < ymin: "
                                 f"({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g})")
            box = _checked_box((xmin - 1.0, ymin - 1.0, xmax, ymax), width, height, where, tally)
            if box is not None:
                boxes.append((class_of[name], box))
        image = AnnotatedImage(image_path, int(width), int(height), tuple(boxes))
        entries.append(image)
        source_of[id(image)] = xml_file
    return _finish(entries, classes, str(root.resolve()), tally, keep_empty=keep_empty, max_images=max_images,
                   check_files=check_files, annotation_file_of=lambda image: source_of[id(image)])
