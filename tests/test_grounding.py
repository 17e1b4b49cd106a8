"""Grounding pre-training (lavida_core.training.grounding): its labels, that it grounds names in a hundred
steps, and the `lavida train` stage that runs it once, keeps it in OUT/grounding and reloads it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from jobs.common.errors import CLI_ERRORS, UserError
from jobs.train.config import job_config
from jobs.train.loop import build_model, train_process
from jobs.train.state import G_WEIGHTS, GROUNDING_DIR, MODEL_DIR
from lavida_core.checkpoint import build_lavida, load_lavida
from lavida_core.config import preset
from lavida_core.frames import sam_images
from lavida_core.tokenizer import encode_anomaly_types
from lavida_core.training import grounding as G
from lavida_core.training.seg_datasets import ArraySegDataset, SegObject, SegSample
from lavida_core.training.synthetic_shapes import ShapesConfig, disjoint_anomaly_videos, shapes_seg_dataset, training_categories

EASY = dict(colours=("red", "green", "blue", "yellow"), shapes=("circle", "square", "triangle", "cross"),
            min_radius=0.15, max_radius=0.28, max_objects=2)  # fmt: skip


def test_labels_mark_the_tokens_under_each_named_mask():
    frames = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    square = np.zeros((1, 64, 64), dtype=bool)
    square[0, 0:16, 48:64] = True  # the top-right 2 x 2 tokens of an 8 x 8 grid
    dot = np.zeros((1, 64, 64), dtype=bool)
    dot[0, 33, 9] = True  # one pixel: too small for token_cover, still marks its token
    sample = SegSample("s", (0,), frames, (SegObject("red square", square), SegObject("blue dot", dot)))
    names = ["blue dot", "green ring", "red square"]
    batch = G.frames_batch([ArraySegDataset([sample])], names, G.GroundingConfig(batch_size=2), 0, image_size=128, grid=8)
    assert batch.images.shape == (2, 3, 128, 128)
    labels = batch.token_labels[0].reshape(8, 8, 3)
    assert labels[..., 2].nonzero().tolist() == [[0, 6], [0, 7], [1, 6], [1, 7]]
    assert labels[..., 0].nonzero().tolist() == [[4, 1]]
    assert not labels[..., 1].any()
    assert batch.frame_labels[0].tolist() == [1.0, 0.0, 1.0]


def test_words_option_grounds_each_word_of_a_name_as_a_name_of_its_own():
    frames = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    square, circle = np.zeros((1, 64, 64), dtype=bool), np.zeros((1, 64, 64), dtype=bool)
    square[0, 0:16, 48:64] = True  # tokens (0..1, 6..7) of an 8 x 8 grid
    circle[0, 48:64, 0:16] = True  # tokens (6..7, 0..1)
    sample = SegSample("s", (0,), frames, (SegObject("red square", square), SegObject("blue circle", circle)))
    config = G.GroundingConfig(batch_size=1, words=True)
    names = G.grounding_names(["red square", "blue circle", "red circle", "dot"], config)
    assert names == ["red square", "blue circle", "red circle", "dot", "red", "square", "blue", "circle"]
    assert G.grounding_names(["red square", "dot"], G.GroundingConfig()) == ["red square", "dot"]  # off by default
    batch = G.frames_batch([ArraySegDataset([sample])], names, config, 0, image_size=128, grid=8)
    labels = batch.token_labels[0].reshape(8, 8, len(names))
    marked = {name: sorted(map(tuple, labels[..., k].nonzero().tolist())) for k, name in enumerate(names)}
    top_right, bottom_left = [(0, 6), (0, 7), (1, 6), (1, 7)], [(6, 0), (6, 1), (7, 0), (7, 1)]
    assert marked["red square"] == marked["red"] == marked["square"] == top_right
    assert marked["blue circle"] == marked["blue"] == marked["circle"] == bottom_left
    assert marked["red circle"] == [] and marked["dot"] == []  # a combination not shown stays unmarked
    assert batch.frame_labels[0].tolist() == [1, 1, 0, 0, 1, 1, 1, 1]


def test_batches_are_a_pure_function_of_seed_and_step():
    shapes = ShapesConfig(n_videos=4, n_frames=4, **EASY)
    dataset, names = shapes_seg_dataset(shapes), sorted(training_categories(shapes))
    config = G.GroundingConfig(batch_size=3, seed=1)
    a, b = (G.frames_batch([dataset], names, config, 5, image_size=128, grid=8) for _ in range(2))
    c = G.frames_batch([dataset], names, config, 6, image_size=128, grid=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.token_labels, b.token_labels)
    assert not torch.equal(a.images, c.images)


def test_bad_grounding_configs_are_refused():
    with pytest.raises(Exception, match="at least 1"):
        G.GroundingConfig(steps=0)
    with pytest.raises(Exception, match="token_cover"):
        G.GroundingConfig(token_cover=0.0)


def _held_out_auc(model, head, loaded, shapes: ShapesConfig) -> float:
    """Frame AUC of the grounding logit (max over tokens) for the named anomaly, on held-out videos."""
    videos = disjoint_anomaly_videos(shapes, 6, max_types=2)
    names = sorted({v.anomaly_type for v in videos})
    ids = encode_anomaly_types(loaded.clip_tokenizer, names)
    scores, labels = [], []
    with torch.no_grad():
        for video in videos:
            images = sam_images(video.frames, image_size=model.segmenter.image_size)
            logits = G.frame_logits(model, head, images, ids)[:, :, names.index(video.anomaly_type)]
            scores.append(logits.amax(dim=1).numpy())
            labels.append(video.frame_labels)
    return roc_auc_score(np.concatenate(labels), np.concatenate(scores))


@pytest.mark.slow  # over ~2 s of CPU work: the full tier's (conftest.py)
def test_a_short_grounding_run_learns_to_find_named_shapes_in_unseen_videos():
    torch.manual_seed(0)
    loaded = build_lavida(preset("tiny"))
    model = loaded.model
    shapes = ShapesConfig(n_videos=512, n_frames=8, **EASY)
    dataset, names = shapes_seg_dataset(shapes), sorted(training_categories(shapes))
    ids = encode_anomaly_types(loaded.clip_tokenizer, names)
    config = G.GroundingConfig(steps=100, batch_size=32)
    head, optimizer = G.make_head_and_optimizer(model, config)
    held_out = ShapesConfig(n_videos=64, n_frames=8, seed=9, **EASY)
    before = _held_out_auc(model, head, loaded, held_out)
    first = None
    for step in range(config.steps):
        batch = G.frames_batch([dataset], names, config, step, image_size=128, grid=8)
        loss = G.grounding_step(model, head, optimizer, batch, ids, config)["total"]
        first = first if first is not None else loss
    after = _held_out_auc(model, head, loaded, held_out)
    assert loss < 0.8 * first
    # 100 steps get colours right and shapes partly (same-colour shapes still confused): the held-out
    # frame AUC of the grounding logit rises from chance-like to well above it (0.68 -> 0.80 here).
    assert after > max(0.75, before + 0.1), (before, after)


def _raw(**grounding) -> dict:
    return {
        "model": "tiny",
        "synthetic_shapes": {"n_videos": 6, "n_frames": 4, **{k: list(v) if isinstance(v, tuple) else v for k, v in EASY.items()}},
        "sampler": {"n_anomalies": 2, "frames_per_clip": 4, "seed": 3},
        "grounding": {"steps": 3, "batch_size": 2, **grounding},
        "train": {"steps": 2, "batch_size": 2, "grad_accum": 1, "log_every": 1, "seed": 5},
    }


def test_train_job_grounds_once_keeps_it_and_refuses_another_grounding_config(tmp_path, caplog):
    out = tmp_path / "out"
    frozen = {**_raw(), "train": {**_raw()["train"], "train_image_encoder": False, "train_text_encoder": False}}
    train_process(job_config(frozen, overrides={"out": str(out)}), resume=False)
    grounded = load_file(str(out / GROUNDING_DIR / G_WEIGHTS))
    assert grounded and all(k.startswith(("segmenter.image_encoder.", "text_encoder.")) for k in grounded)
    untouched = build_model(job_config(frozen, overrides={"out": str(out)})).model.state_dict()
    final = load_lavida(out / MODEL_DIR).model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in grounded.items())  # the frozen encoders are the grounded ones
    assert any(not torch.equal(untouched[k], v) for k, v in grounded.items())  # and grounding changed them

    caplog.clear()
    with caplog.at_level("INFO"):
        train_process(job_config({**frozen, "train": {**frozen["train"], "steps": 3}}, overrides={"out": str(out)}), resume=True)
    assert "grounded encoders loaded from" in caplog.text and "grounding step" not in caplog.text
    with pytest.raises(UserError, match="another model, datasets or grounding config"):
        train_process(job_config(_raw(steps=4), overrides={"out": str(out)}), resume=True)


def test_grounding_on_its_own_datasets_learns_names_the_training_never_gives(tmp_path, caplog):
    """ "grounding": {"datasets": [...]}: frames and names come from those (here every colour-shape
    combination, the held-out ones too, as the reference's pretrained encoders know them), while the
    LAVIDA loop draws from the training datasets alone; changing them is another grounding."""
    every = {"layout": "synthetic_shapes", "name": "every", "n_videos": 100, "n_frames": 4, "seed": 2, "hold_out": False,
             **{k: list(v) if isinstance(v, tuple) else v for k, v in EASY.items()}}  # fmt: skip
    job = job_config(_raw(datasets=[every]), overrides={"out": str(tmp_path)})
    assert job.grounding.steps == 3 and [d.name for d in job.grounding_datasets] == ["every"]
    with caplog.at_level("INFO"):
        train_process(job, resume=False)
    assert "grounding on its own datasets ['every']: 16 names" in caplog.text  # 4 x 4, none held out
    assert "dataset shapes: 6 samples, " in caplog.text  # the LAVIDA loop's own data is unchanged
    with pytest.raises(UserError, match="another model, datasets or grounding config"):
        train_process(job_config(_raw(datasets=[{**every, "seed": 3}]), overrides={"out": str(tmp_path)}), resume=True)


def test_grounding_config_errors_are_one_line_cli_errors(tmp_path):
    with pytest.raises(UserError, match="unknown field"):
        job_config(_raw(epochs=3), overrides={"out": str(tmp_path)})
    with pytest.raises(CLI_ERRORS, match="at least 1"):
        job_config(_raw(steps=0), overrides={"out": str(tmp_path)})
    with pytest.raises(UserError, match='"datasets" is a list of dataset entries'):
        job_config(_raw(datasets=[]), overrides={"out": str(tmp_path)})
    with pytest.raises(UserError, match="dataset layout 'nope' unknown"):
        job_config(_raw(datasets=[{"layout": "nope"}]), overrides={"out": str(tmp_path)})
    assert json.loads(json.dumps(job_config(_raw(), overrides={"out": str(tmp_path)}).to_dict()))["grounding"]["steps"] == 3
