"""COCO and VOC annotations read into the common form, with their validation (seed A.3)."""

from __future__ import annotations

import json

import pytest

from empirical.multilabel.annotations import VOC_CLASSES, read_coco, read_voc


def test_coco_boxes_become_xyxy_classes_follow_category_ids_and_images_their_file_names(tmp_path, files):
    document = files.coco_document(
        images=[(7, "b.png", 40, 30), (2, "a.png", 20, 50), (9, "c.png", 10, 10)],
        annotations=[(7, 3, (1, 2, 10, 5)), (7, 1, (0, 0, 40, 30)), (2, 3, (5.5, 6, 4, 4))])
    annotation_file, image_dir = files.write_coco(tmp_path, document)
    data = read_coco(annotation_file, image_dir)
    assert data.class_names == ("cat", "dog")  # category ids 1 and 3 -> class indices 0 and 1
    assert [image.path.name for image in data.images] == ["a.png", "b.png"]
    assert data.images[0].size == (20, 50)
    assert data.images[0].boxes == ((1, (5.5, 6.0, 9.5, 10.0)),)
    assert data.images[1].boxes == ((1, (1.0, 2.0, 11.0, 7.0)), (0, (0.0, 0.0, 40.0, 30.0)))
    assert data.skipped == {"image without boxes": 1}
    assert "c.png" in data.skipped_examples[0]
    assert data.describe()["boxes"] == 3


def test_coco_rounding_overshoot_is_clipped_and_zero_area_boxes_skipped_both_counted(tmp_path, files):
    document = files.coco_document(images=[(1, "a.png", 20, 20)],
                                   annotations=[(1, 1, (-0.5, 0, 10, 20.8)), (1, 3, (3, 3, 0, 5)),
                                                (1, 3, (2, 2, 4, 4))])
    data = read_coco(*files.write_coco(tmp_path, document))
    assert data.images[0].boxes == ((0, (0.0, 0.0, 9.5, 20.0)), (1, (2.0, 2.0, 6.0, 6.0)))
    assert data.skipped == {"box clipped to the image (outside by rounding)": 1,
                            "box of zero width or height": 1}


def test_coco_keep_empty_and_max_images(tmp_path, files):
    document = files.coco_document(images=[(1, "a.png", 8, 8), (2, "b.png", 8, 8), (3, "c.png", 8, 8)],
                             annotations=[(2, 1, (0, 0, 4, 4)), (3, 1, (0, 0, 4, 4))])
    files = files.write_coco(tmp_path, document)
    assert [i.path.name for i in read_coco(*files, keep_empty=True).images] == ["a.png", "b.png", "c.png"]
    assert [i.path.name for i in read_coco(*files, max_images=1).images] == ["b.png"]


def test_voc_boxes_convert_from_one_based_inclusive_and_splits_select_images(tmp_path, files):
    entries = [("000002", 50, 40, [("dog", 1, 1, 50, 40), ("cat", 11, 5, 20, 9)]),
               ("000001", 30, 60, [("person", 3, 4, 3, 4)])]
    root = files.write_voc(tmp_path / "VOC", entries, split="val")
    data = read_voc(root, "val")
    assert data.class_names == VOC_CLASSES
    assert [image.path.name for image in data.images] == ["000001.jpg", "000002.jpg"]
    assert data.images[0].boxes == ((VOC_CLASSES.index("person"), (2.0, 3.0, 3.0, 4.0)),)
    assert data.images[1].boxes == ((VOC_CLASSES.index("dog"), (0.0, 0.0, 50.0, 40.0)),
                                    (VOC_CLASSES.index("cat"), (10.0, 4.0, 20.0, 9.0)))
    assert data.images[1].size == (50, 40) and data.skipped == {}
    assert len(read_voc(root)) == 2  # no split: every XML file


def test_voc_size_zero_is_read_from_the_image_and_counted(tmp_path, files):
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "x.xml").write_text(files.voc_xml("x.png", 0, 0, [("cat", 1, 1, 5, 5)]))
    files.write_png(root / "JPEGImages" / "x.png", 12, 9)
    data = read_voc(root)
    assert data.images[0].size == (12, 9)
    assert data.skipped == {"VOC size read from the image file": 1}


def _coco_case(tmp_path, files, change):
    """Images written from a valid document, then the document changed by ``change`` (False: no images)."""
    document = files.coco_document(images=[(1, "a.png", 20, 10)], annotations=[(1, 1, (1, 1, 5, 5))])
    annotation_file, image_dir = files.write_coco(tmp_path, document)
    if change(document) is False:
        (image_dir / "a.png").unlink()
    annotation_file.write_text(json.dumps(document))
    return lambda: read_coco(annotation_file, image_dir)


def _set(path, value):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


COCO_CASES = [
    ("missing image file", lambda d: False, "image file of 'a.png' not found"),
    ("box outside", _set(("annotations", 0, "bbox"), [15, 1, 8, 5]), "outside the 20x10 image by 3 pixels"),
    ("box outside, vertical", _set(("annotations", 0, "bbox"), [1, -2, 4, 4]), "annotations[0] (id 1)"),
    ("negative width", _set(("annotations", 0, "bbox"), [1, 1, -2, 4]), "negative width or height"),
    ("short bbox", _set(("annotations", 0, "bbox"), [1, 1, 4]), "bbox must be a list [x, y, w, h]"),
    ("text in bbox", _set(("annotations", 0, "bbox"), [1, "a", 4, 4]), "bbox must be a finite number"),
    ("unknown category", _set(("annotations", 0, "category_id"), 5), "unknown category_id 5 (known: [1, 3])"),
    ("unknown image", _set(("annotations", 0, "image_id"), 4), "image_id 4 is not among the file's images"),
    ("duplicate image", lambda d: d["images"].append(dict(d["images"][0])), "images[1] (id 1): duplicate"),
    ("duplicate category", lambda d: d["categories"].append({"id": 1, "name": "x"}), "duplicate category id"),
    ("missing field", lambda d: d["images"][0].pop("width"), "images[0] (id 1): missing field(s) width"),
    ("zero width image", _set(("images", 0, "width"), 0), "width must be a positive integer, got 0"),
    ("no list", _set(("annotations",), {}), "'annotations' must be a list"),
]


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in COCO_CASES],
                         ids=[case[0] for case in COCO_CASES])
def test_coco_bad_inputs_raise_one_message_naming_file_and_entry(tmp_path, files, change, message):
    read = _coco_case(tmp_path, files, change)
    with pytest.raises(ValueError, match="instances_test.json") as caught:
        read()
    assert message in str(caught.value)


def test_coco_malformed_json_and_missing_file(tmp_path):
    (tmp_path / "instances_x.json").write_text('{"images": [')
    with pytest.raises(ValueError, match=r"instances_x.json: malformed JSON"):
        read_coco(tmp_path / "instances_x.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="COCO annotation file not found"):
        read_coco(tmp_path / "absent.json", tmp_path)
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected a JSON object"):
        read_coco(tmp_path / "list.json", tmp_path)
    with pytest.raises(ValueError, match="max_images must be a positive integer or None, got 0"):
        read_coco(tmp_path / "list.json", tmp_path, max_images=0)


VOC_CASES = [
    ("unknown class", [("unicorn", 1, 1, 5, 5)], "object[0]: unknown class name 'unicorn'"),
    ("box outside", [("cat", 1, 1, 5, 5), ("dog", 1, 1, 25, 5)], "object[1]: box (x0, y0, x1, y1)"),
    ("reversed box", [("cat", 6, 1, 5, 5)], "xmax < xmin or ymax < ymin"),
    ("text coordinate", [("cat", "a", 1, 5, 5)], "<xmin> must be a number, got 'a'"),
]


@pytest.mark.parametrize(("objects", "message"), [case[1:] for case in VOC_CASES],
                         ids=[case[0] for case in VOC_CASES])
def test_voc_bad_objects_raise_one_message_naming_file_and_object(tmp_path, files, objects, message):
    root = files.write_voc(tmp_path / "VOC", [("img", 20, 10, objects)])
    with pytest.raises(ValueError, match="img.xml") as caught:
        read_voc(root)
    assert message in str(caught.value)


def test_voc_malformed_xml_missing_image_and_missing_split_entries(tmp_path, files):
    root = files.write_voc(tmp_path / "VOC", [("ok", 20, 10, [("cat", 1, 1, 5, 5)])])
    (root / "Annotations" / "broken.xml").write_text("<annotation><size>")
    with pytest.raises(ValueError, match=r"broken.xml: malformed XML"):
        read_voc(root)
    (root / "Annotations" / "broken.xml").unlink()
    (root / "JPEGImages" / "ok.jpg").unlink()
    with pytest.raises(ValueError, match=r"ok.xml: image file of 'ok.jpg' not found"):
        read_voc(root)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("ok\nghost\n")
    with pytest.raises(ValueError, match=r"val.txt, line 2: annotation file not found: .*ghost.xml"):
        read_voc(root, "val")
    with pytest.raises(ValueError, match="split 'test': image list not found"):
        read_voc(root, "test")
    (root / "Annotations" / "ok.xml").write_text("<annotation><filename>ok.jpg</filename><size><width>20"
                                                 "</width><height>10</height></size><object><name>cat</name>"
                                                 "</object></annotation>")
    with pytest.raises(ValueError, match=r"ok.xml: object\[0\]: missing <bndbox>"):
        read_voc(root, check_files=False)
