"""The clip_contrastive stage (lavida_core/training/clip_contrastive.py, jobs/train/clip_stage.py):
CLIP's symmetric InfoNCE, a short run that learns and moves the search tower only, the stage through
`lavida train` (the shipped demo model's tower on LAVIDA weights that did not move: tests/test_demo_model.py)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

from jobs.common.errors import CLI_ERRORS
from jobs.train.clip_stage import clip_stage_config, run, stage_card
from jobs.train.state import LOSS_CSV, MODEL_DIR
from lavida_core.checkpoint import build_lavida, load_lavida, save_lavida
from lavida_core.clip_query import ClipQuery
from lavida_core.config import RetrievalConfig, preset
from lavida_core.model_folders import ModelCard
from lavida_core.training.clip_contrastive import (
    ContrastiveConfig,
    add_retrieval,
    clip_loss,
    shapes_pool,
    train_retrieval,
)
from lavida_core.training.synthetic_shapes import ShapesConfig, held_out_categories

SMALL_SHAPES = {"n_videos": 12, "n_frames": 4, "height": 32, "width": 32, "max_objects": 2,
                "colours": ["red", "green", "blue"], "shapes": ["circle", "square", "triangle"]}  # fmt: skip
SMALL_TOWER = {"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
               "num_hidden_layers": 1, "num_attention_heads": 2, "projection_dim": 16}  # fmt: skip


def test_the_loss_is_clips_symmetric_infonce_by_hand():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = images @ texts.T at scale e^0 = 1: [[1, 0.6], [0, 0.8]]
    image_to_text = (-math.log(math.e / (math.e + math.e**0.6)) - math.log(math.e**0.8 / (1 + math.e**0.8))) / 2
    text_to_image = (-math.log(math.e / (math.e + 1)) - math.log(math.e**0.8 / (math.e**0.6 + math.e**0.8))) / 2
    loss = clip_loss(images, texts, torch.tensor(0.0), torch.eye(2, dtype=torch.bool))
    assert loss.item() == pytest.approx((image_to_text + text_to_image) / 2, rel=1e-6)


def test_with_one_positive_each_the_loss_is_clips_own_formula():
    generator = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    texts = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)
    scale = torch.tensor(math.log(1 / 0.07))
    logits = scale.exp() * images @ texts.T
    labels = torch.arange(6)
    clip = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert clip_loss(images, texts, scale, torch.eye(6, dtype=torch.bool)).item() == pytest.approx(clip.item(), rel=1e-6)
    assert clip_loss(images, texts, torch.tensor(10.0), torch.eye(6, dtype=torch.bool)).item() == pytest.approx(
        clip_loss(images, texts, torch.tensor(math.log(100.0)), torch.eye(6, dtype=torch.bool)).item()
    )  # the scale is clipped at 100, as CLIP's


def test_several_positives_share_the_target_and_an_empty_image_is_only_a_negative():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[True, True], [False, True], [False, False]])  # image 2 shows nothing
    logits = images @ texts.T  # [[1, 0], [0, 1], [0.6, 0.8]]
    row0 = -(0.5 * (1 - math.log(math.e + 1)) + 0.5 * (0 - math.log(math.e + 1)))
    row1 = -(1 - math.log(1 + math.e))
    col0 = -(1 - math.log(math.e + 1 + math.e**0.6))  # text 0 over the three images, image 0 its positive
    col1 = -(0.5 * (0 - math.log(1 + math.e + math.e**0.8)) + 0.5 * (1 - math.log(1 + math.e + math.e**0.8)))
    want = ((row0 + row1) / 2 + (col0 + col1) / 2) / 2
    assert logits[2].tolist() == pytest.approx([0.6, 0.8])
    assert clip_loss(images, texts, torch.tensor(0.0), positives).item() == pytest.approx(want, rel=1e-6)


def test_the_pool_pairs_frames_with_training_combinations_only():
    config = ShapesConfig(**{**SMALL_SHAPES, "n_videos": 24})
    pool = shapes_pool([config])
    assert pool.videos.shape == (24, 4, 32, 32, 3) and pool.shows.shape == (24, 4, len(pool.names))
    assert set(pool.names).isdisjoint(held_out_categories(config))
    assert (~pool.shows.any(axis=-1)).any()  # some frames show nothing (objects enter and leave): negatives only
    frames, shows = pool.batch(3, batch_size=5, frames_per_sample=2, seed=1)
    assert frames.shape == (5, 2, 32, 32, 3) and shows.shape == (5, len(pool.names))
    again = pool.batch(3, batch_size=5, frames_per_sample=2, seed=1)
    assert np.array_equal(frames, again[0]) and np.array_equal(shows, again[1])
    words = shapes_pool([config], words=True)
    assert {"red", "circle"} <= set(words.names) and set(pool.names) < set(words.names)


def _tiny_without_search():
    return build_lavida(preset("tiny").replace(retrieval=None), seed=0)


def test_a_short_run_lowers_the_loss_moves_only_the_search_tower_and_repeats_exactly():
    pool = shapes_pool([ShapesConfig(**SMALL_SHAPES)])
    config = ContrastiveConfig(steps=30, batch_size=8, frames_per_sample=2, lr=5e-3, warmup_steps=0, seed=4)
    runs = []
    for _ in range(2):
        loaded = _tiny_without_search()
        before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
        add_retrieval(loaded.model, RetrievalConfig(**SMALL_TOWER), seed=config.seed)
        initial = {k: v.clone() for k, v in loaded.model.retrieval.state_dict().items()}
        losses = train_retrieval(loaded.model, loaded.clip_tokenizer, pool, config)
        runs.append((losses, loaded.model.state_dict()))
    losses, after = runs[0]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1, losses
    assert all(torch.equal(after[k], v) for k, v in before.items())  # every LAVIDA tensor as it was
    moved = [k for k, v in initial.items() if not torch.equal(after[f"retrieval.{k}"], v)]
    assert set(moved) == set(initial)  # the image tower, both projections and the temperature
    assert runs[1][0] == losses and all(torch.equal(runs[1][1][k], v) for k, v in after.items())  # same seed, same run


def _stage_files(tmp_path: Path, steps: int = 3) -> tuple[dict, Path]:
    init = tmp_path / "init"
    loaded = _tiny_without_search()
    loaded.trained, loaded.card = True, ModelCard(trained=True, trained_on="shapes (synthetic_shapes)", steps=7)
    save_lavida(loaded, init)
    raw = {
        "stage": "clip_contrastive", "init": str(init), "model_config": {"retrieval": SMALL_TOWER},
        "datasets": [{"layout": "synthetic_shapes", "name": "shapes", **SMALL_SHAPES}],
        "train": {"steps": steps, "batch_size": 4, "frames_per_sample": 2, "seed": 1},
    }  # fmt: skip
    return raw, init


def _args(out: Path, **changes) -> SimpleNamespace:
    return SimpleNamespace(
        **{"out": str(out), "steps": None, "workers": 1, "resume": False, "ray_address": None, "use_gpu": False, **changes}
    )


def test_the_stage_saves_a_model_with_a_search_tower_and_a_card_that_says_so(tmp_path):
    raw, init = _stage_files(tmp_path)
    assert run(raw, _args(tmp_path / "out")) == 0
    folder = tmp_path / "out" / MODEL_DIR
    meta = json.loads((folder / "lavida.json").read_text())
    assert meta["config"]["retrieval"] == SMALL_TOWER
    assert (
        meta["card"]["trained_on"]
        == "shapes (synthetic_shapes) (LAVIDA, 7 steps) + shapes (synthetic_shapes) (search image tower only: clip_contrastive stage)"
    )
    assert meta["card"]["steps"] == 3
    with open(tmp_path / "out" / LOSS_CSV, newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [1, 2, 3]
    start, result = load_file(str(init / "model.safetensors")), load_file(str(folder / "model.safetensors"))
    assert {k for k in result if not k.startswith("retrieval.")} == set(start)
    assert all(np.array_equal(result[k], v) for k, v in start.items())
    assert ClipQuery.load(str(folder)).embed("red circle").vector.shape == (16,)
    again = stage_card(load_lavida(folder).card, clip_stage_config(raw, overrides={"out": "unused"}))
    assert again.trained_on == meta["card"]["trained_on"]  # the stage run again on its own result: the same card


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_config": {"retrieval": {}, "lora": {}}}, "adds the search image tower only"),
        ({"init": ""}, 'give "init"'),
        ({"datasets": [{"layout": "coco", "images": "x", "annotations": "y"}]}, "synthetic_shapes datasets only"),
        ({"train": {"stpes": 3}}, "unknown field"),
        ({"train": {"batch_size": 1}}, "batch_size >= 2"),
        ({"lr": 1}, "unknown key"),
    ],
)
def test_bad_stage_configs_are_one_line_cli_errors(tmp_path, change, message):
    raw, _ = _stage_files(tmp_path)
    with pytest.raises(CLI_ERRORS) as caught:
        clip_stage_config({**raw, **change}, overrides={"out": str(tmp_path / "out")})
    assert message in str(caught.value)


def test_the_stage_refuses_workers_and_an_existing_model_folder(tmp_path):
    raw, _ = _stage_files(tmp_path)
    with pytest.raises(CLI_ERRORS, match="one process"):
        run(raw, _args(tmp_path / "out", workers=2))
    (tmp_path / "out" / MODEL_DIR).mkdir(parents=True)
    with pytest.raises(CLI_ERRORS, match="already exists"):
        run(raw, _args(tmp_path / "out"))
