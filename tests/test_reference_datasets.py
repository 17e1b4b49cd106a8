"""The dataset readers of the reference LAVIDA mixture (issue 14, item 11), each on a generated tree
in its exact published layout: names and masks as written, the first bad file named, and every
layout end to end through the Anomaly Exposure Sampler into one training step."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from seg_layouts import (
    REFER_LISTS,
    write_ade20k_layout,
    write_cityscapes_layout,
    write_cocostuff_layout,
    write_mapillary_layout,
    write_mevis_layout,
    write_ref_vos_layout,
    write_refer_layout,
    write_vos_layout,
)

from jobs.common.errors import UserError
from jobs.train.config import DATASET_LAYOUTS, build_sampler, dataset_specs, job_config
from jobs.train.loop import build_model
from jobs.train.state import LOSS_CSV, MODEL_DIR
from lavida_core.errors import InputError
from lavida_core.training import loop as T
from lavida_core.training.seg_datasets import MevisVideos, ReferImages, SegDataset, ade20k, cityscapes, cocostuff, mapillary
from lavida_core.training.seg_datasets.mevis import EXPRESSIONS_PER_VIDEO
from lavida_core.training.seg_datasets.semantic_pngs import ADE20K_BACKGROUND
from lavida_core.training.synthetic_shapes import ShapesConfig, SyntheticVideo, generate_training_videos


@pytest.fixture(scope="module")
def videos() -> list[SyntheticVideo]:
    return generate_training_videos(ShapesConfig(n_videos=3, n_frames=6, height=24, width=32, max_objects=2, seed=4))


def _check_images(ds: SegDataset, expected: dict[str, dict[str, np.ndarray]]) -> None:
    """Every sample's names and masks are the generated ones."""
    assert len(ds) == len(expected)
    for index in range(len(ds)):
        info = ds.info(index)
        masks = expected[info.sample_id]
        assert info.n_frames == 1 and info.names == tuple(masks)
        sample = ds.load(index, [0])
        assert sample.frames.shape == (1, 24, 32, 3) and sample.frames.dtype == np.uint8
        for name, mask in masks.items():
            assert np.array_equal(sample.mask_of(name)[0], mask), (info.sample_id, name)


# --- semantic label PNGs -------------------------------------------------------------------------


def test_ade20k_names_object_classes_and_never_background(tmp_path):
    expected = write_ade20k_layout(tmp_path)
    ds = ade20k(tmp_path)
    _check_images(ds, expected)
    assert ds.positives == "one" and len(ds.categories) == 130 and not set(ds.categories) & set(ADE20K_BACKGROUND)
    assert ds.info(2).names == ("person", "car", "truck")  # values 13, 21, 84; 1 (wall) left out


def test_cityscapes_names_its_eight_label_ids_city_by_city(tmp_path):
    expected = write_cityscapes_layout(tmp_path)
    ds = cityscapes(tmp_path)
    _check_images(ds, expected)
    assert ds.categories == ("traffic light", "traffic sign", "terrain", "truck", "bus", "train", "motorcycle", "bicycle")
    assert ds.info(0).names == ("bus",)  # aachen first; its car (26) and road (7) are not named


def test_mapillary_names_its_config_labels_lower_cased(tmp_path):
    expected = write_mapillary_layout(tmp_path)
    ds = mapillary(tmp_path)
    _check_images(ds, expected)
    assert ds.categories == ("bird", "ground animal", "curb", "fence", "person", "car", "unlabeled")


def test_cocostuff_skips_the_first_label_line_and_ignores_other_classes(tmp_path):
    expected = write_cocostuff_layout(tmp_path)
    ds = cocostuff(tmp_path)
    _check_images(ds, expected)
    # map value v is labels line v + 1: 0 person, 3 wall-other, 5 sky-other ("-": never a target)
    assert [ds.info(i).names for i in range(3)] == [("person",), ("grass", "dog"), ("bicycle", "car")]
    assert ds.categories == ("person", "bicycle", "car", "wall-other", "grass", "sky-other", "dog")


def test_semantic_errors_name_the_first_bad_file(tmp_path):
    write_ade20k_layout(tmp_path / "ade")
    label = tmp_path / "ade" / "annotations" / "training" / "ADE_train_00000002.png"
    label.unlink()
    with pytest.raises(InputError, match=re.escape(str(label))):
        ade20k(tmp_path / "ade")
    write_cityscapes_layout(tmp_path / "city")
    bad = tmp_path / "city" / "gtFine" / "train" / "aachen" / "aachen_000000_000001_gtFine_labelIds.png"
    Image.open(bad).convert("RGB").save(bad)
    with pytest.raises(InputError, match=re.escape(str(bad)) + ".*mode RGB"):
        cityscapes(tmp_path / "city").info(1)
    write_mapillary_layout(tmp_path / "map")
    (tmp_path / "map" / "config_v2.0.json").write_text(json.dumps({"labels": [{"name": "x"}]}))
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "map" / "config_v2.0.json"))):
        mapillary(tmp_path / "map")
    write_cocostuff_layout(tmp_path / "stuff")
    (tmp_path / "stuff" / "labels.txt").unlink()
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "stuff" / "labels.txt")) + ": file not found"):
        cocostuff(tmp_path / "stuff")


# --- REFER lists (the reference's "coco") ----------------------------------------------------------


def test_refer_lists_name_sentences_with_their_objects_masks(tmp_path):
    expected = write_refer_layout(tmp_path)
    ds = ReferImages(tmp_path, lists=REFER_LISTS)
    assert len(ds) == len(expected) == 2 * len(REFER_LISTS)  # the val image of each list is left out
    for index, (file_name, sentences) in enumerate(expected):
        info = ds.info(index)
        assert info.sample_id == file_name and info.names == tuple(sentences)
        sample = ds.load(index, [0])
        for sentence, mask in sentences.items():
            assert np.array_equal(sample.mask_of(sentence)[0], mask), (file_name, sentence)
    grefcoco = ds.info(len(ds) - 1)
    assert [o.present_frames for o in grefcoco.objects] == [(0,), ()], "a no-target sentence is never a positive"
    assert ds.positives == "one" and len({o.object_key for o in ds.info(0).objects}) == 2


def test_refer_defaults_to_the_reference_lists(tmp_path):
    write_refer_layout(tmp_path, lists=("refclef", "refcoco", "refcoco+", "refcocog"))
    assert len(ReferImages(tmp_path)) == 8


def test_refer_refuses_a_pickle_that_names_a_class(tmp_path):
    write_refer_layout(tmp_path, lists=("refcoco",))
    refs_file = tmp_path / "refcoco" / "refs(unc).p"
    refs_file.write_bytes(pickle.dumps([OrderedDict(ref_id=1)]))
    with pytest.raises(InputError, match=re.escape(str(refs_file)) + ".*collections.OrderedDict"):
        ReferImages(tmp_path, lists=("refcoco",))


def test_refer_errors_name_the_first_bad_file(tmp_path):
    write_refer_layout(tmp_path, lists=("refcocog",))
    refs_file = tmp_path / "refcocog" / "refs(umd).p"
    refs = pickle.loads(refs_file.read_bytes())
    refs[1]["ann_id"] = 99999
    refs_file.write_bytes(pickle.dumps(refs))
    with pytest.raises(InputError, match=re.escape(str(refs_file)) + r".*annotation ids \[99999\]"):
        ReferImages(tmp_path, lists=("refcocog",))
    refs[1]["ann_id"] = refs[0]["ann_id"]
    refs_file.write_bytes(pickle.dumps(refs))
    image = tmp_path / "images" / "mscoco" / "images" / "train2014" / refs[0]["file_name"]
    image.unlink()
    with pytest.raises(InputError, match=re.escape(str(image)) + ": image of a ref"):
        ReferImages(tmp_path, lists=("refcocog",))
    with pytest.raises(InputError, match="unknown REFER lists"):
        ReferImages(tmp_path, lists=("refcoco++",))


# --- MeViS --------------------------------------------------------------------------------------


def test_mevis_expressions_join_their_objects_masks(tmp_path, videos):
    expected = write_mevis_layout(videos, tmp_path)
    ds = MevisVideos(tmp_path)
    assert len(ds) == len(videos) and ds.positives == "one"
    for index, video in enumerate(videos):
        info = ds.info(index)
        assert info.names == tuple(expected[video.video_id]) and info.n_frames == 6
        sample = ds.load(index, [1, 3, 5])
        assert np.abs(sample.frames.astype(int) - video.frames[[1, 3, 5]]).mean() < 8  # JPEG, nearly equal
        for text, masks in expected[video.video_id].items():
            assert np.array_equal(sample.mask_of(text), masks[[1, 3, 5]]), text
            shown = tuple(np.flatnonzero(masks.any(axis=(1, 2))).tolist())
            assert next(o for o in info.objects if o.name == text).present_frames == shown


def test_mevis_reads_the_first_eight_expressions_of_a_video(tmp_path, videos):
    write_mevis_layout(videos[:1], tmp_path)
    meta = json.loads((tmp_path / "meta_expressions.json").read_text())
    entry = meta["videos"][videos[0].video_id]
    first = entry["expressions"]["0"]
    entry["expressions"] = {str(k): {**first, "exp": f"expression {k}"} for k in range(EXPRESSIONS_PER_VIDEO + 3)}
    (tmp_path / "meta_expressions.json").write_text(json.dumps(meta))
    assert MevisVideos(tmp_path).info(0).names == tuple(f"expression {k}" for k in range(8))


def test_mevis_errors_name_the_first_bad_file(tmp_path, videos):
    write_mevis_layout(videos[:1], tmp_path)
    masks = json.loads((tmp_path / "mask_dict.json").read_text())
    del masks["0"]
    (tmp_path / "mask_dict.json").write_text(json.dumps(masks))
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "mask_dict.json")) + ": anno_id 0 .* not found"):
        MevisVideos(tmp_path)
    write_mevis_layout(videos[:1], tmp_path)
    frame = tmp_path / "JPEGImages" / videos[0].video_id / "00005.jpg"
    frame.unlink()
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "mask_dict.json")) + ": anno_id 0 has 6 frames"):
        MevisVideos(tmp_path)


# --- YouTube-VOS-style layouts: positives rules and Ref-DAVIS's test expressions -------------------


def test_vos_layouts_take_the_reference_positives_rule(tmp_path, videos):
    ytvos = write_vos_layout(videos, tmp_path / "ytvos" / "train")
    refvos, refvos_expressions = write_ref_vos_layout(videos, tmp_path / "refvos")
    davis, davis_expressions = write_ref_vos_layout(videos, tmp_path / "davis", test_expressions=True)
    entries = [
        {"layout": "youtube_vos", "name": "vos", "root": str(ytvos)},
        {"layout": "ref_youtube_vos", "name": "refvos", "root": str(refvos), "expressions": str(refvos_expressions)},
        {"layout": "ref_davis", "name": "refdavis", "root": str(davis), "expressions": str(davis_expressions)},
    ]
    vos, ref, ref_davis = (DATASET_LAYOUTS[spec.layout](spec) for spec in dataset_specs({"datasets": entries}))
    assert (vos.positives, ref.positives, ref_davis.positives) == ("frames", "objects", "one")
    obj = videos[0].objects[0]
    assert vos.info(0).names[0] == obj.name
    assert ref.info(0).names[:2] == (f"the {obj.name}", f"{obj.name} number 1")
    assert len(ref_davis) == sum(2 * len(v.objects) for v in videos), "a sample per expression; is_test ones left out"
    assert [ref_davis.info(i).names for i in (0, 1)] == [(f"the {obj.name}",), (f"{obj.name} number 1",)]
    assert ref_davis.load(1, [0, 1]).objects[0].masks.tolist() == obj.masks[:2].tolist()
    keys = [o.object_key for o in ref.info(0).objects]
    assert keys[0] == keys[1] == "1", "two expressions of object 1 are one object"


# --- every layout through the sampler into a training step; the paper mixture runs -----------------

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "models" / "paper_train.json"


@pytest.fixture(scope="module")
def generated_entries(tmp_path_factory, videos) -> dict[str, dict]:
    """The dataset entries of models/paper_train.json with "<PATH>/datasets" replaced by generated
    trees in the same places, plus a COCO-Stuff entry (a reader the reference has but does not mix)."""
    root = tmp_path_factory.mktemp("datasets")
    write_vos_layout(videos, root / "YouTube-VOS" / "train")
    write_ref_vos_layout(videos, root / "Ref-YoutubeVOS")
    write_ref_vos_layout(videos, root / "RefDavis", test_expressions=True)
    write_mevis_layout(videos, root / "MeVis" / "train")
    write_refer_layout(root / "Coco", lists=("refclef", "refcoco", "refcoco+", "refcocog"))
    write_cityscapes_layout(root / "CitySpace")
    write_ade20k_layout(root / "ADE20K")
    write_mapillary_layout(root / "Mapillary")
    write_cocostuff_layout(root / "CocoStuff")
    entries = {}
    for entry in json.loads(PAPER_CONFIG.read_text())["datasets"]:
        entries[entry["name"]] = {k: v.replace("<PATH>/datasets", str(root)) if isinstance(v, str) else v for k, v in entry.items()}
    entries["cocostuff"] = {"layout": "cocostuff", "name": "cocostuff", "ratio": 1.0, "root": str(root / "CocoStuff")}
    return entries


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    job = job_config({"model": "tiny", "synthetic_shapes": {"n_videos": 2}, "out": str(tmp_path_factory.mktemp("unused"))})
    return build_model(job)


@pytest.mark.parametrize("name", ["vos", "refvos", "mevis", "refdavis", "cityspace", "coco", "ade20k", "mapillary", "cocostuff"])
def test_each_layout_feeds_the_sampler_and_one_training_step(name, generated_entries, tiny_model, tmp_path):
    raw = {
        "model": "tiny",
        "datasets": [generated_entries[name]],
        "sampler": {"n_anomalies": 4, "frames_per_clip": 4, "seed": 1},
        "train": {"steps": 1, "batch_size": 2, "grad_accum": 1},
        "out": str(tmp_path),
    }
    job = job_config(raw)
    sampler = build_sampler(job)
    drawn = [sampler.sample(i) for i in range(12)]
    pair = [next(s for s in drawn if s.is_anomalous), next(s for s in drawn if not s.is_anomalous)]
    for sample in pair:
        assert sample.target_masks.any() == sample.is_anomalous and sample.anomaly_types
        assert len(sample.frames) == (1 if name in ("cityspace", "coco", "ade20k", "mapillary", "cocostuff") else 4)
    model = tiny_model.model
    batch = T.collate(pair, model_config=model.config, qwen_tokenizer=tiny_model.qwen_tokenizer, clip_tokenizer=tiny_model.clip_tokenizer)
    T.set_trainable(model, job.train)
    optimizer, scheduler = T.make_optimizer(model, job.train)
    stats = T.train_step(model, [batch], optimizer, scheduler, config=job.train, step=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.terms.values())


@pytest.mark.slow
def test_the_paper_mixture_trains_three_steps_at_the_tiny_preset(generated_entries, tmp_path):
    """`lavida train --config` on models/paper_train.json as it is, but the tiny preset (no
    checkpoint files) and the generated trees: every reader of the mixture is built, 3 steps run."""
    raw = json.loads(PAPER_CONFIG.read_text())
    assert raw["model"] == "paper" and "<PATH>" in raw["checkpoint"]["qwen_dir"]
    del raw["checkpoint"]
    raw["model"] = "tiny"
    raw["datasets"] = [generated_entries[entry["name"]] for entry in raw["datasets"]]
    config = tmp_path / "paper_mixture.json"
    config.write_text(json.dumps(raw))
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "jobs.cli", "train", "--config", str(config), "--out", str(out), "--steps", "3"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("vos", "refvos", "mevis", "refdavis", "cityspace", "coco", "ade20k", "mapillary"):
        assert f"dataset {name}:" in done.stderr, f"{name} was not built"
    with open(out / LOSS_CSV) as handle:
        assert len(handle.read().strip().splitlines()) == 1 + 3
    assert (out / MODEL_DIR).is_dir()


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"layout": "ref_davis", "root": "x"}, r"needs \['root', 'expressions'\].*missing \['expressions'\]"),
        ({"layout": "ade20k", "root": "x", "labels_file": "y"}, r"unknown \['labels_file'\]"),
        ({"layout": "refer"}, r"missing \['root'\]"),
    ],
)
def test_layout_options_are_checked(entry, message):
    (spec,) = dataset_specs({"datasets": [entry]})
    with pytest.raises(UserError, match=message):
        DATASET_LAYOUTS[spec.layout](spec)


def test_a_missing_dataset_root_names_it(tmp_path):
    (spec,) = dataset_specs({"datasets": [{"layout": "mapillary", "root": str(tmp_path / "nowhere")}]})
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "nowhere" / "config_v2.0.json")) + ": file not found"):
        DATASET_LAYOUTS[spec.layout](spec)


def test_the_paper_mixture_as_shipped_asks_for_its_placeholders_to_be_replaced():
    from jobs.common.errors import UserError
    from jobs.train.config import job_config

    with pytest.raises(UserError, match=r"placeholder \(<PATH>/LLM_ckpt/Qwen2-VL-7B-Instruct\): replace each <PATH>"):
        job_config(json.loads(PAPER_CONFIG.read_text()), overrides={"out": "unused"})
