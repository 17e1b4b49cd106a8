"""Segmentation readers on small generated datasets in each layout, and on malformed ones."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from seg_layouts import write_coco_layout, write_vos_layout

from lavida_core.errors import InputError
from lavida_core.training.exposure_sampler import ExposureSampler, SamplerConfig
from lavida_core.training.seg_datasets import CocoInstances, VideoFolders
from lavida_core.training.synthetic_shapes import (
    ShapesConfig,
    SyntheticObject,
    SyntheticVideo,
    generate_training_videos,
)

CONFIG = ShapesConfig(n_videos=4, n_frames=6, height=32, width=40, seed=5)


@pytest.fixture(scope="module")
def videos() -> list[SyntheticVideo]:
    return generate_training_videos(CONFIG)


@pytest.fixture
def vos_root(tmp_path, videos) -> Path:
    return write_vos_layout(videos, tmp_path / "ytvos", expressions=True)


@pytest.fixture
def coco_files(tmp_path, videos) -> tuple[Path, Path]:
    return write_coco_layout(videos, tmp_path / "coco", frames_per_video=2)


# --- YouTube-VOS-style folders -------------------------------------------------------------------


def test_vos_reader_returns_the_generated_masks_and_frames(vos_root, videos):
    ds = VideoFolders(vos_root, meta_file=vos_root / "meta.json")
    assert len(ds) == len(videos)
    for index, video in enumerate(videos):
        info = ds.info(index)
        assert info.sample_id == video.video_id and info.n_frames == CONFIG.n_frames
        assert info.names == tuple(o.name for o in video.objects)
        sample = ds.load(index, [1, 2, 4])
        assert sample.frames.shape == (3, CONFIG.height, CONFIG.width, 3) and sample.frames.dtype == np.uint8
        assert np.abs(sample.frames.astype(int) - video.frames[[1, 2, 4]]).mean() < 8  # JPEG, nearly equal
        for obj, original in zip(sample.objects, video.objects):
            assert obj.name == original.name
            assert np.array_equal(obj.masks, original.masks[[1, 2, 4]])


def test_vos_reader_knows_where_objects_are_from_meta_json(tmp_path):
    frames = np.full((5, 16, 16, 3), 90, dtype=np.uint8)
    late = np.zeros((5, 16, 16), dtype=bool)
    late[3:, 4:8, 4:8] = True
    always = np.zeros((5, 16, 16), dtype=bool)
    always[:, 10:, 10:] = True
    video = SyntheticVideo("v", frames, (SyntheticObject("late dog", late), SyntheticObject("cat", always)))
    root = write_vos_layout([video], tmp_path / "vos")
    info = VideoFolders(root).info(0)
    assert [o.present_frames for o in info.objects] == [(3, 4), (0, 1, 2, 3, 4)]


def test_ref_vos_expressions_name_objects_and_take_presence_from_meta_json(vos_root, videos):
    ds = VideoFolders(vos_root)  # meta_expressions.json wins over meta.json
    info = ds.info(0)
    assert info.names == tuple(f"the {o.name}" for o in videos[0].objects)
    shown = [tuple(np.flatnonzero(o.masks.any(axis=(1, 2))).tolist()) for o in videos[0].objects]
    assert [o.present_frames for o in info.objects] == shown
    (vos_root / "meta.json").unlink()
    assert all(o.present_frames is None for o in VideoFolders(vos_root).info(0).objects)


def test_mevis_expression_over_several_objects_joins_their_masks(vos_root, videos):
    assert len(videos[0].objects) >= 2, "the fixture's first video should hold two objects or more"
    meta = {"videos": {videos[0].video_id: {"expressions": {"0": {"exp": "two things moving", "obj_id": [1, 2]}}}}}
    (vos_root / "meta_expressions.json").write_text(json.dumps(meta))
    sample = VideoFolders(vos_root).load(0, [0, 1])
    expected = videos[0].objects[0].masks[:2] | videos[0].objects[1].masks[:2]
    assert sample.objects[0].name == "two things moving"
    assert np.array_equal(sample.objects[0].masks, expected)


def test_vos_missing_jpeg_names_the_file(vos_root, videos):
    missing = vos_root / "JPEGImages" / videos[1].video_id / "00010.jpg"
    missing.unlink()
    with pytest.raises(InputError, match=re.escape(str(missing))):
        VideoFolders(vos_root)


def test_vos_rgb_mask_names_the_file(vos_root, videos):
    png = vos_root / "Annotations" / videos[0].video_id / "00005.png"
    Image.open(png).convert("RGB").save(png)
    ds = VideoFolders(vos_root)
    with pytest.raises(InputError, match=re.escape(str(png)) + ".*palette"):
        ds.load(0, [0, 1, 2])


def test_vos_corrupt_jpeg_names_the_file(vos_root, videos):
    jpg = vos_root / "JPEGImages" / videos[2].video_id / "00000.jpg"
    jpg.write_bytes(b"not a jpeg at all")
    ds = VideoFolders(vos_root)
    with pytest.raises(InputError, match=re.escape(str(jpg)) + ".*not a readable image"):
        ds.load(2, [0])


def test_vos_mask_of_another_size_names_the_mask(vos_root, videos):
    png = vos_root / "Annotations" / videos[0].video_id / "00000.png"
    small = Image.open(png).resize((20, 16))
    small.save(png)
    with pytest.raises(InputError, match=re.escape(str(png))):
        VideoFolders(vos_root).load(0, [0])


def test_vos_bad_meta_json_names_the_file(vos_root):
    (vos_root / "meta_expressions.json").write_text("{not json")
    with pytest.raises(InputError, match="meta_expressions.json: not valid JSON"):
        VideoFolders(vos_root)


def test_vos_without_meta_file_says_what_it_looked_for(vos_root):
    (vos_root / "meta_expressions.json").unlink()
    (vos_root / "meta.json").unlink()
    with pytest.raises(InputError, match="no meta file"):
        VideoFolders(vos_root)


def test_vos_video_without_annotation_folder_names_the_folder(vos_root, videos):
    folder = vos_root / "Annotations" / videos[3].video_id
    shutil.rmtree(folder)
    with pytest.raises(InputError, match=re.escape(str(folder))):
        VideoFolders(vos_root)


def test_vos_object_id_that_is_not_a_number_names_the_meta_file(vos_root, videos):
    meta = {"videos": {videos[0].video_id: {"objects": {"one": {"category": "dog"}}}}}
    (vos_root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="meta.json.*not an integer"):
        VideoFolders(vos_root, meta_file=vos_root / "meta.json")


def test_vos_frames_out_of_range_are_an_input_error(vos_root):
    with pytest.raises(InputError, match="has 6 frames"):
        VideoFolders(vos_root).load(0, [0, 6])


# --- COCO instances ----------------------------------------------------------------------------


def test_coco_reader_returns_the_generated_masks(coco_files, videos):
    images_dir, ann_file = coco_files
    ds = CocoInstances(images_dir, ann_file)
    assert len(ds) == 2 * len(videos)
    for index in range(len(ds)):
        video, t = videos[index // 2], index % 2
        visible = [o for o in video.objects if o.masks[t].any()]
        info = ds.info(index)
        assert info.n_frames == 1 and info.names == tuple(dict.fromkeys(o.name for o in visible))
        sample = ds.load(index, [0])
        assert sample.frames.shape == (1, CONFIG.height, CONFIG.width, 3)
        for obj, original in zip(sample.objects, visible):
            assert obj.name == original.name and np.array_equal(obj.masks[0], original.masks[t])


def _write_coco(tmp_path: Path, annotations: list, images: list | None = None, size=(12, 10)) -> tuple[Path, Path]:
    """A hand-made COCO file; every image is a grey ``size`` (height, width) JPEG."""
    (tmp_path / "img").mkdir(exist_ok=True)
    images = images or [{"id": 1, "file_name": "a.jpg", "height": size[0], "width": size[1]}]
    for im in images:
        Image.fromarray(np.full((im["height"], im["width"], 3), 128, dtype=np.uint8)).save(tmp_path / "img" / im["file_name"])
    instances = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "ball"}]}
    ann_file = tmp_path / "instances.json"
    ann_file.write_text(json.dumps(instances))
    return tmp_path / "img", ann_file


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE, by hand: run lengths of the column-major pixels, starting with 0s."""
    flat = mask.flatten(order="F").astype(int)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return {"size": list(mask.shape), "counts": runs}


def test_coco_polygon_and_uncompressed_rle_segmentations(tmp_path):
    blob = np.zeros((12, 10), dtype=bool)
    blob[0:3, 6:9] = True
    blob[7, 1] = True
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 6, 2, 6, 6, 2, 6]]},  # x,y pairs
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": _uncompressed_rle(blob), "iscrowd": 1},
    ]
    sample = CocoInstances(*_write_coco(tmp_path, annotations)).load(0, [0])
    box, ball = sample.objects
    assert box.name == "box" and ball.name == "ball"
    assert box.masks[0, 3:6, 3:6].all() and not box.masks[0, 8:, :].any() and not box.masks[0, :, 8:].any()
    assert np.array_equal(ball.masks[0], blob)


def test_coco_expressions_and_captions_name_the_objects(tmp_path):
    mask = np.zeros((12, 10), dtype=bool)
    mask[:4, :4] = True
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    compressed = {"size": [12, 10], "counts": rle["counts"].decode("ascii")}
    images = [
        {"id": 1, "file_name": "a.jpg", "height": 12, "width": 10},
        {"id": 2, "file_name": "b.jpg", "height": 12, "width": 10, "caption": "the two balls"},
        {"id": 3, "file_name": "c.jpg", "height": 12, "width": 10},  # no annotation at all
    ]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": compressed, "expressions": ["left box", "grey box"]},
        {"id": 2, "image_id": 2, "category_id": 2, "segmentation": compressed},
        {"id": 3, "image_id": 2, "category_id": 2, "segmentation": [[6, 6, 9, 6, 9, 11, 6, 11]]},
    ]
    ds = CocoInstances(*_write_coco(tmp_path, annotations, images))
    assert ds.info(0).names == ("left box", "grey box")
    assert ds.info(1).names == ("the two balls",)
    assert ds.info(2).objects == ()
    target = ds.load(1, [0]).mask_of("the two balls")
    assert target[0, :4, :4].all() and target[0, 7:10, 7:9].all()
    assert ds.load(2, [0]).objects == ()


def test_coco_missing_image_names_the_file(coco_files):
    images_dir, ann_file = coco_files
    victim = sorted(images_dir.iterdir())[3]
    victim.unlink()
    with pytest.raises(InputError, match=re.escape(str(victim))):
        CocoInstances(images_dir, ann_file)


@pytest.mark.parametrize(
    "annotation, message",
    [
        ({"id": 7, "image_id": 99, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, 4]]}, "annotation id 7: unknown image_id 99"),
        ({"id": 8, "image_id": 1, "category_id": 5, "segmentation": [[0, 0, 4, 0, 4, 4]]}, "annotation id 8: unknown category_id 5"),
        ({"id": 9, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 4, 0]]}, "annotation id 9: a polygon must be"),
        ({"id": 10, "image_id": 1, "category_id": 1, "segmentation": "zzz"}, "annotation id 10: segmentation must be"),
        ({"id": 11, "image_id": 1, "category_id": 1, "segmentation": {"counts": "abc"}}, "annotation id 11: an RLE"),
        ({"id": 12, "image_id": 1, "category_id": 1}, "annotation id 12: no segmentation"),
    ],
)
def test_coco_malformed_annotations_name_the_file_and_annotation(tmp_path, annotation, message):
    images_dir, ann_file = _write_coco(tmp_path, [annotation])
    with pytest.raises(InputError, match=re.escape(f"{ann_file}: {message}")):
        CocoInstances(images_dir, ann_file)


def test_coco_image_of_another_size_names_the_image(tmp_path):
    images_dir, ann_file = _write_coco(tmp_path, [])
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(images_dir / "a.jpg")
    with pytest.raises(InputError, match=re.escape(f"{images_dir / 'a.jpg'}: image is 5x5 but")):
        CocoInstances(images_dir, ann_file).load(0, [0])


def test_coco_rle_of_another_size_names_the_annotation_file(tmp_path):
    rle = coco_mask.encode(np.asfortranarray(np.ones((4, 4), dtype=np.uint8)))
    segmentation = {"size": [4, 4], "counts": rle["counts"].decode("ascii")}
    images_dir, ann_file = _write_coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation}])
    with pytest.raises(InputError, match=re.escape(f"{ann_file}: annotation id 1: RLE size")):
        CocoInstances(images_dir, ann_file).load(0, [0])


def test_coco_rle_that_cannot_be_decoded_names_the_annotation_file(tmp_path):
    segmentation = {"size": [12, 10], "counts": "bad\u00e9 counts"}
    images_dir, ann_file = _write_coco(tmp_path, [{"id": 4, "image_id": 1, "category_id": 1, "segmentation": segmentation}])
    with pytest.raises(InputError, match=re.escape(f"{ann_file}: annotation id 4: segmentation cannot be decoded")):
        CocoInstances(images_dir, ann_file).load(0, [0])


def test_coco_without_annotations_list_or_valid_json_names_the_file(tmp_path):
    images_dir, ann_file = _write_coco(tmp_path, [])
    ann_file.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(InputError, match=re.escape(f"{ann_file}: missing list 'annotations'")):
        CocoInstances(images_dir, ann_file)
    ann_file.write_text("[1, 2")
    with pytest.raises(InputError, match=re.escape(f"{ann_file}: not valid JSON")):
        CocoInstances(images_dir, ann_file)


# --- readers feed the sampler --------------------------------------------------------------------


def test_sampler_draws_from_both_readers(vos_root, coco_files):
    images_dir, ann_file = coco_files
    datasets = [VideoFolders(vos_root, name="refvos"), CocoInstances(images_dir, ann_file, name="coco")]
    sampler = ExposureSampler(datasets, SamplerConfig(ratios={"refvos": 0.5, "coco": 0.5}, frames_per_clip=4, n_anomalies=3))
    draws = [sampler.sample(i) for i in range(40)]
    assert {d.dataset for d in draws} == {"refvos", "coco"}
    for d in draws:
        assert len(d.frames) == (4 if d.dataset == "refvos" else 1)
        assert d.anomaly_types and d.target_masks.any() == d.is_anomalous
