"""Presets: the paper preset has the public sizes of its parts; the tiny preset stays tiny."""

import importlib.util
from pathlib import Path

import numpy as np
import torch
from transformers import Qwen2VLVideoProcessor

from lavida_core.config import LavidaConfig, preset
from lavida_core.frames import qwen_video_patches, smart_resize

_spec = importlib.util.spec_from_file_location("param_counts", Path(__file__).parents[1] / "bench" / "param_counts.py")
param_counts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(param_counts)


def test_paper_preset_matches_public_part_sizes():
    counts = dict(param_counts.rows("paper"))
    # Qwen2-VL-7B-Instruct has 8,291,375,616 parameters with its 152,064-row vocabulary; LAVIDA resizes
    # the embeddings and LM head to the tokenizer + <SEG> (151,658 rows), 406 rows x 3584 x 2 fewer.
    assert counts["MLLM (Qwen2-VL), all"] == 8_291_375_616 - 406 * 3584 * 2
    assert counts["  vision tower (incl. merger)"] == 675_759_104
    assert counts["text encoder (CLIP text tower)"] == 63_165_952  # CLIP ViT-B/32 text tower
    assert 34_000_000 < counts["SAM2 image encoder (Hiera + FPN)"] < 35_000_000  # Hiera-S + neck
    assert counts["  LoRA adapters (q_proj, v_proj)"] == 28 * 8 * (3584 + 3584 + 3584 + 512)


def test_tiny_preset_is_a_few_mb():
    counts = dict(param_counts.rows("tiny"))
    assert counts["LAVIDA total (incl. LoRA)"] * 4 < 5 * 2**20


def test_config_round_trips_through_json():
    config = preset("tiny")
    assert LavidaConfig.from_dict(config.to_dict()) == config


def test_qwen_patches_match_the_hugging_face_video_processor():
    """Same patch order and normalisation as Qwen2-VL's own processor (no resize: exact size given)."""
    frames = np.random.default_rng(0).integers(0, 256, (4, 56, 84, 3), dtype=np.uint8)
    ours, grid = qwen_video_patches(frames, patch_size=14, temporal_patch_size=2, merge_size=2, min_pixels=56 * 84, max_pixels=56 * 84)
    processor = Qwen2VLVideoProcessor(do_resize=False, do_sample_frames=False)
    theirs = processor(videos=[torch.from_numpy(frames).permute(0, 3, 1, 2)], return_tensors="pt")
    assert tuple(theirs["video_grid_thw"][0].tolist()) == grid
    torch.testing.assert_close(ours, theirs["pixel_values_videos"], atol=1e-4, rtol=1e-4)


def test_smart_resize_rules():
    assert smart_resize(240, 320, factor=28, min_pixels=56 * 56, max_pixels=10**7) == (252, 308)
    h, w = smart_resize(1080, 1920, factor=28, min_pixels=1, max_pixels=224 * 224)
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 224 * 224
    h, w = smart_resize(20, 30, factor=28, min_pixels=112 * 112, max_pixels=10**7)
    assert h * w >= 112 * 112
