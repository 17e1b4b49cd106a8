"""Training at the tiny preset on CPU: the loss goes down, only the trained parts move, and a run
resumed from a checkpoint (in-process, and after a real `kill -9`) takes the same steps."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from jobs.common.errors import CLI_ERRORS, UserError
from jobs.train.config import build_sampler, job_config
from jobs.train.loop import build_model, train_process
from jobs.train.state import CHECKPOINTS_DIR, LOSS_CSV, MODEL_DIR
from lavida_core.checkpoint import load_lavida, trained_part_keys
from lavida_core.training import loop as T

ROOT = Path(__file__).resolve().parents[1]
LOSS_TOLERANCE = 1e-4  # relative; same code, same seeds, float32 on CPU


def _raw(steps: int = 4, **train) -> dict:
    return {
        "model": "tiny",
        "synthetic_shapes": {"n_videos": 6, "n_frames": 4},
        "sampler": {"n_anomalies": 4, "frames_per_clip": 4, "seed": 3},
        "train": {"steps": steps, "batch_size": 2, "grad_accum": 1, "log_every": 1, "seed": 5, **train},
    }


def _job(tmp_path: Path, name: str = "out", **kwargs):
    return job_config(_raw(**kwargs), overrides={"out": str(tmp_path / name)})


def _losses(out: Path) -> dict[int, float]:
    with open(out / LOSS_CSV, newline="") as handle:
        return {int(row["step"]): float(row["total"]) for row in csv.DictReader(handle)}


def _fixed_batch(job, loaded):
    sampler = build_sampler(job)
    samples = [sampler.sample(i) for i in range(8)]
    samples = [next(s for s in samples if s.is_anomalous), next(s for s in samples if not s.is_anomalous)]
    config = loaded.model.config
    return T.collate(samples, model_config=config, qwen_tokenizer=loaded.qwen_tokenizer, clip_tokenizer=loaded.clip_tokenizer)


def test_collate_targets_at_the_sam2_input_size(tmp_path):
    job = _job(tmp_path)
    loaded = build_model(job)
    batch = _fixed_batch(job, loaded)
    size = loaded.model.config.image_encoder.image_size  # the reference's loss resolution (1024 at paper size)
    assert batch.target_masks.shape == (8, size, size)  # 2 clips x 4 frames
    assert batch.target_labels.shape == (8,)
    assert batch.target_masks[:4].sum() > 0 and batch.target_masks[4:].sum() == 0  # anomalous, then normal
    assert torch.equal(batch.target_labels, (batch.target_masks.flatten(1).sum(1) > 0).float())
    assert batch.inputs.labels is not None and (batch.inputs.labels != -100).any()


def test_collate_resizes_targets_nearest_to_the_image_size_or_bilinear_to_the_logits():
    from lavida_core.config import preset
    from lavida_core.tokenizer import load_clip_tokenizer, load_qwen_tokenizer
    from lavida_core.training.losses import LossConfig

    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 1, 2] = True  # one pixel of a 4x4 frame: a 32 x 32 block of the 128 x 128 target, nearest
    # the TrainingSample fields collate reads
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    sample = SimpleNamespace(frames=frames, anomaly_types=["dot"], target_masks=masks, target_labels=np.array([True]))
    tokenizers = dict(qwen_tokenizer=load_qwen_tokenizer(None), clip_tokenizer=load_clip_tokenizer(None))
    batch = T.collate([sample], model_config=preset("tiny"), **tokenizers)
    expected = torch.zeros(1, 128, 128)
    expected[0, 32:64, 64:96] = 1.0
    assert torch.equal(batch.target_masks, expected)
    # "logits": bilinear to 32 x 32, then > 0.5. Output i samples input (i + 0.5) / 8 - 0.5, where the pixel
    # at p weighs max(0, 1 - |x - p|): kept where the row weight times the column weight exceeds 0.5.
    low = T.collate([sample], model_config=preset("tiny"), loss_config=LossConfig(mask_resolution="logits"), **tokenizers)
    x = (torch.arange(32) + 0.5) / 8 - 0.5
    row, col = (1 - (x - 1).abs()).clamp(min=0), (1 - (x - 2).abs()).clamp(min=0)
    assert torch.equal(low.target_masks[0], (row[:, None] * col[None, :] > 0.5).float())


def test_steps_on_a_fixed_batch_lower_the_loss(tmp_path):
    # From random weights the object logits start <= 0, so the reference's blanking would leave only the
    # slow object-score term to move in 8 steps: this test of the loop keeps the mask gradient.
    raw = {**_raw(lr=1e-2, schedule="constant", warmup_steps=0), "loss": {"blank_no_object_masks": False}}
    job = job_config(raw, overrides={"out": str(tmp_path / "out")})
    loaded = build_model(job)
    model = loaded.model
    T.set_trainable(model, job.train)
    optimizer, scheduler = T.make_optimizer(model, job.train)
    batch = _fixed_batch(job, loaded)
    totals = [
        T.train_step(model, [batch], optimizer, scheduler, config=job.train, step=s, loss_config=job.loss).terms["total"] for s in range(8)
    ]
    assert totals[-1] < 0.8 * totals[0] and min(totals[-3:]) < min(totals[:3]), totals


def test_only_the_trained_parts_change(tmp_path):
    job = _job(tmp_path, lr=1e-2, max_grad_norm=None, warmup_steps=0)  # the reference's step 0 runs at lr 0
    loaded = build_model(job)
    model = loaded.model
    trainable = set(T.set_trainable(model, job.train))
    assert trainable == {n for n, _ in model.named_parameters() if n in set(trained_part_keys(model))}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer, scheduler = T.make_optimizer(model, job.train)
    T.train_step(model, [_fixed_batch(job, loaded)], optimizer, scheduler, config=job.train, step=0)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed <= trainable
    for part in (".lora_", "projector.", "segmenter.sam_mask_decoder.", "language_model.embed_tokens."):
        assert any(part in k for k in changed), f"nothing in {part} was trained"
    for frozen in ("segmenter.image_encoder.", "text_encoder.", "mllm.qwen.model.visual."):
        assert not any(k.startswith(frozen) for k in changed), f"{frozen} changed"
    assert not any(".base_layer." in k for k in changed), "LoRA's frozen base weights changed"


def test_vision_lora_trains_the_vision_tower_through_adapters_only(tmp_path):
    """lora.vision_target_modules (the demo recipe's, not the reference's): LoRA in the MLLM's vision
    tower, trained, saved with the trained parts and loaded back; the tower's own weights stay as built."""
    vision = ["qkv", "attn.proj", "fc1", "fc2", "merger.mlp.0"]
    raw = {**_raw(lr=1e-2, max_grad_norm=None, warmup_steps=0), "model_config": {"lora": {"r": 4, "vision_target_modules": vision}}}
    job = job_config(raw, overrides={"out": str(tmp_path / "out")})
    loaded = build_model(job)
    model = loaded.model
    adapters = [k for k in trained_part_keys(model) if k.startswith("mllm.qwen.model.visual.")]
    assert {k.split(".lora_")[0].removeprefix("mllm.qwen.model.visual.") for k in adapters} == {
        "blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2",
        "blocks.1.attn.qkv", "blocks.1.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "merger.mlp.0",
    }  # fmt: skip
    assert not any("patch_embed" in k or "merger.mlp.2" in k for k in adapters)  # "attn.proj" is no suffix of those
    trainable = set(T.set_trainable(model, job.train))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer, scheduler = T.make_optimizer(model, job.train)
    T.train_step(model, [_fixed_batch(job, loaded)], optimizer, scheduler, config=job.train, step=0)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed <= trainable
    assert any(".lora_B." in k for k in changed & set(adapters)), "no vision adapter was trained"
    assert not any(k.startswith("mllm.qwen.model.visual.") and ".lora_" not in k for k in changed)

    from lavida_core.checkpoint import save_lavida

    save_lavida(loaded, tmp_path / "model")
    again = load_lavida(tmp_path / "model").model.state_dict()
    assert all(torch.equal(again[k], v) for k, v in model.state_dict().items() if k in adapters)


def test_train_mllm_false_leaves_the_mllm_as_built(tmp_path):
    job = _job(tmp_path, lr=1e-2, max_grad_norm=None, warmup_steps=0, train_mllm=False)
    loaded = build_model(job)
    model = loaded.model
    trainable = set(T.set_trainable(model, job.train))
    assert not any(p in n for n in trainable for p in (".lora_", "language_model.embed_tokens.", "qwen.lm_head."))
    assert not model.mllm.training  # no dropout inside the frozen MLLM
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer, scheduler = T.make_optimizer(model, job.train)
    T.train_step(model, [_fixed_batch(job, loaded)], optimizer, scheduler, config=job.train, step=0)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= trainable and not any(k.startswith("mllm.") for k in changed)
    assert any("projector." in k for k in changed) and any("segmenter.sam_mask_decoder." in k for k in changed)


def test_resume_from_a_checkpoint_takes_the_same_next_steps(tmp_path):
    job = _job(tmp_path, steps=4, checkpoint_every=2, keep_checkpoints=5)
    train_process(job, resume=False)
    out = Path(job.out)
    uninterrupted = _losses(out)
    assert sorted(uninterrupted) == [1, 2, 3, 4]
    # as if killed after step 3: the newest checkpoint on disk is step 2
    shutil.rmtree(out / CHECKPOINTS_DIR / "step_000004")
    summary = train_process(job, resume=True)
    assert summary["started_at_step"] == 2
    resumed = _losses(out)
    assert sorted(resumed) == [1, 2, 3, 4]
    for step in (3, 4):
        assert resumed[step] == pytest.approx(uninterrupted[step], rel=LOSS_TOLERANCE)
    model = load_lavida(out / MODEL_DIR)
    assert model.trained


def _cli(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "jobs.cli", "train", "--config", str(config), "--out", str(out), *extra]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_kill_9_then_resume_continues_with_the_same_losses(tmp_path):
    # 20 steps: a tiny step takes milliseconds, and the victim must still be training when the
    # poll below sees its first checkpoint (with 5 steps it sometimes finished inside the poll gap)
    config = tmp_path / "train.json"
    config.write_text(json.dumps(_raw(steps=20, checkpoint_every=2, keep_checkpoints=20)))
    reference_out, killed_out = tmp_path / "reference", tmp_path / "killed"
    reference = _cli(config, reference_out)
    assert reference.wait(timeout=600) == 0, reference.stdout.read()

    victim = _cli(config, killed_out)
    deadline = time.monotonic() + 600
    while not (killed_out / CHECKPOINTS_DIR / "step_000002").is_dir():
        assert victim.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (killed_out / MODEL_DIR).exists()

    refused = _cli(config, killed_out)  # checkpoints there and no --resume: a one-line error
    assert refused.wait(timeout=600) == 2 and "--resume" in refused.stdout.read()
    resumed = _cli(config, killed_out, "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()
    want, got = _losses(reference_out), _losses(killed_out)
    assert sorted(got) == list(range(1, 21))
    for step in range(3, 21):
        assert got[step] == pytest.approx(want[step], rel=LOSS_TOLERANCE)
    assert (killed_out / MODEL_DIR / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"model": "tiny", "synthetic_shapes": {}, "trian": {}}, "unknown config key"),
        ({"model": "tiny", "synthetic_shapes": {}, "train": {"stpes": 3}}, "unknown field"),
        ({"model": "tiny"}, "no training data"),
        ({"model": "tiny", "datasets": [{"layout": "coco", "images": "x"}]}, "needs ['images', 'annotations']"),
        ({"model": "tiny", "datasets": [{"layout": "parquet"}]}, "layout 'parquet' unknown"),
        ({"model": "tiny", "synthetic_shapes": {}, "train": {"steps": 0}}, "at least 1"),
    ],
)
def test_bad_configs_are_one_line_cli_errors(tmp_path, raw, message):
    with pytest.raises(CLI_ERRORS) as caught:
        job = job_config(raw, overrides={"out": str(tmp_path)})
        build_sampler(job)
    assert message in str(caught.value)


def test_the_reference_schedule_warms_up_from_zero_then_decays_over_micro_batches():
    config = T.TrainConfig()  # 8000 updates of 2 micro-batches, 100 warm-up updates, lr 1e-5 (not tiny)
    assert (config.steps, config.grad_accum, config.warmup_steps) == (8000, 2, 100)
    # get_linear_schedule_with_warmup(100, 16000) stepped once per update
    assert T.lr_factor(0, config) == 0.0
    assert T.lr_factor(50, config) == pytest.approx(0.5)
    assert T.lr_factor(100, config) == pytest.approx(1.0)  # (16000 - 100) / (16000 - 100)
    assert T.lr_factor(8000, config) == pytest.approx(8000 / 15900)  # the lr ends near half the peak
    assert T.REFERENCE_LR * T.lr_factor(8000, config) == pytest.approx(0.503e-5, rel=1e-3)
    # the earlier recipe (the demo's): warm-up from 1 / warmup, decay to 0 at `steps`
    earlier = T.TrainConfig(steps=6000, grad_accum=1, warmup_steps=200, warmup_starts_at_zero=False, decay_horizon="updates")
    assert T.lr_factor(0, earlier) == pytest.approx(1 / 200)
    assert T.lr_factor(199, earlier) == pytest.approx(1.0)
    assert T.lr_factor(3100, earlier) == pytest.approx(0.5)  # 1 - (3100 - 200) / 5800
    assert T.lr_factor(6000, earlier) == 0.0


def test_optimizer_is_adamw_with_the_reference_betas_and_weight_decay_on_every_parameter():
    from lavida_core.checkpoint import build_lavida
    from lavida_core.config import preset

    model = build_lavida(preset("tiny")).model
    config = T.TrainConfig(lr=1e-5)
    T.set_trainable(model, config)
    optimizer, scheduler = T.make_optimizer(model, config)
    (group,) = optimizer.param_groups  # biases and norms decay too, as AdamW(model.parameters())
    assert isinstance(optimizer, torch.optim.AdamW)
    assert group["betas"] == (0.9, 0.999) and group["weight_decay"] == 0.01
    assert group["initial_lr"] == 1e-5 and group["lr"] == 0.0  # the first update runs at lr 0
    assert sum(p.numel() for p in group["params"]) == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_every_step_micro_batch_and_process_draws_its_own_samples():
    seen = []
    for step in range(5):
        for micro in range(3):
            for rank in range(4):
                seen += T.sample_indices(step, micro, batch_size=2, grad_accum=3, rank=rank, world_size=4)
    assert sorted(seen) == list(range(5 * 3 * 4 * 2))  # no index twice, none skipped


def test_resume_refuses_another_seed(tmp_path):
    job = _job(tmp_path, steps=1)
    train_process(job, resume=False)
    other = job_config(_raw(steps=2, seed=6), overrides={"out": job.out})
    with pytest.raises(UserError, match="seed"):
        train_process(other, resume=True)


def test_toml_config_with_coco_and_vos_layouts_mixes_both(tmp_path):
    from seg_layouts import write_coco_layout, write_vos_layout

    from jobs.train.config import read_config_file
    from lavida_core.training.synthetic_shapes import ShapesConfig, generate_training_videos

    videos = generate_training_videos(ShapesConfig(n_videos=4, n_frames=4, seed=1))
    images, annotations = write_coco_layout(videos, tmp_path / "coco")
    vos = write_vos_layout(videos, tmp_path / "vos")
    config = tmp_path / "train.toml"
    config.write_text(
        f"""model = "tiny"
out = "{tmp_path / "out"}"
[[datasets]]
layout = "coco"
name = "coco"
images = "{images}"
annotations = "{annotations}"
ratio = 0.5
[[datasets]]
layout = "video_folders"
name = "vos"
root = "{vos}"
ratio = 0.5
[sampler]
n_anomalies = 3
frames_per_clip = 4
[train]
steps = 2
betas = [0.9, 0.99]
"""
    )
    job = job_config(read_config_file(config))
    assert job.train.betas == (0.9, 0.99) and job.sampler.ratios == {"coco": 0.5, "vos": 0.5}
    drawn = [build_sampler(job).sample(i) for i in range(12)]
    assert {s.dataset for s in drawn} == {"coco", "vos"}
    assert {s.frames.shape[0] for s in drawn if s.dataset == "coco"} == {1}  # images are one-frame clips
    loaded = build_model(job)
    mixed = [next(s for s in drawn if s.dataset == "coco"), next(s for s in drawn if s.dataset == "vos")]
    batch = T.collate(mixed, model_config=loaded.model.config, qwen_tokenizer=loaded.qwen_tokenizer, clip_tokenizer=loaded.clip_tokenizer)
    assert batch.target_masks.shape[0] == 1 + 4
    T.set_trainable(loaded.model, job.train)
    optimizer, scheduler = T.make_optimizer(loaded.model, job.train)
    stats = T.train_step(loaded.model, [batch], optimizer, scheduler, config=job.train, step=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.terms.values())


def test_model_config_changes_preset_fields_and_refuses_unknown_ones(tmp_path):
    job = job_config({**_raw(steps=1), "model_config": {"prompt_templates": "fixed", "compression": {"lof_centres_own_cluster": True}}},
                     overrides={"out": str(tmp_path / "a")})  # fmt: skip
    config = build_model(job).model.config
    assert config.prompt_templates == "fixed" and config.compression.lof_centres_own_cluster is True
    assert config.compression.temporal_pruning_in_training is False  # the other fields keep the preset's
    bad = job_config({**_raw(steps=1), "model_config": {"prompt_template": "fixed"}}, overrides={"out": str(tmp_path / "b")})
    with pytest.raises(UserError, match="unknown LAVIDA config field.*prompt_template"):
        build_model(bad)
