"""The reference's training-time inputs (issue 14): prompt templates, image samples, pixel budgets,
temporal pruning at inference only, and how configs saved before these fields read. Hand-computed
expectations on the tiny preset (no weights needed for the inputs)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import torch

from lavida_core.checkpoint import build_lavida
from lavida_core.config import LavidaConfig, preset
from lavida_core.errors import InputError
from lavida_core.frames import smart_resize
from lavida_core.inputs import build_inputs, pixel_budget
from lavida_core.tokenizer import (
    ANSWER,
    PROMPT_TEMPLATES,
    QUESTION,
    REFERENCE_ANSWERS,
    REFERENCE_QUESTIONS,
    choose_prompt,
    load_clip_tokenizer,
    load_qwen_tokenizer,
)

QWEN = load_qwen_tokenizer(None)
CLIP = load_clip_tokenizer(None)
NAMES = ["red circle", "blue cross"]


def _inputs(clips, config=None, **kwargs):
    names = [NAMES] * len(clips)
    return build_inputs(clips, names, config=config or preset("tiny"), qwen_tokenizer=QWEN, clip_tokenizer=CLIP, **kwargs)


def _text(ids: torch.Tensor) -> str:
    return QWEN.decode(ids[ids != QWEN.pad_token_id])


def _clip(seed: int, frames: int = 8, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


# ---- 1. prompt templates ------------------------------------------------------------------------


def test_the_reference_templates_are_five_questions_by_five_answers_drawn_uniformly():
    assert len(REFERENCE_QUESTIONS) == 5 and len(REFERENCE_ANSWERS) == 5
    assert REFERENCE_QUESTIONS[2].format(kind="video", types="a, b") == "Detect anomalies in this video. Target types: a, b. "
    rng = np.random.default_rng(0)
    draws = Counter(choose_prompt("reference", rng) for _ in range(25_000))
    assert len(draws) == 25  # every pair, each with probability 1/25: 1000 expected, sd about 31
    assert all(850 < n < 1150 for n in draws.values()), draws


def test_fixed_templates_ask_the_earlier_question_word_for_word():
    assert PROMPT_TEMPLATES["fixed"] == ((QUESTION,), (ANSWER,))
    config = preset("tiny").replace(prompt_templates="fixed")
    text = _text(_inputs([_clip(0)], config).input_ids[0])
    assert "<|vision_end|>Detect anomalies in this video. Target types: red circle, blue cross.<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\nIt is <SEG>.<|im_end|>\n")


def test_inference_prompts_are_seeded_by_the_clip_so_the_same_clip_always_gets_the_same_prompt():
    clips = [_clip(seed) for seed in range(40)]
    first = [_text(ids) for ids in _inputs(clips).input_ids]
    again = [_text(ids) for ids in _inputs(clips).input_ids]
    assert first == again  # deterministic: the detector scores a clip the same way every time
    questions = Counter(next(i for i, q in enumerate(REFERENCE_QUESTIONS) if q.split("{")[0] in t) for t in first)
    assert len(questions) >= 4  # 40 clips draw among the 5 questions (all 5 but with probability 0.9)


def test_a_given_rng_draws_the_training_prompts():
    clip = _clip(0)
    texts = {_text(_inputs([clip], training=True, rng=np.random.default_rng(seed)).input_ids[0]) for seed in range(30)}
    assert len(texts) > 10  # the same clip, many of the 25 prompts


def test_image_samples_say_image_and_video_samples_video():
    image, video = _clip(1, frames=1), _clip(2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        inputs = _inputs([image, video], training=True, is_image=[True, False], rng=rng)
        image_text, video_text = _text(inputs.input_ids[0]), _text(inputs.input_ids[1])
        assert "video" not in image_text and "image" not in video_text
        assert "this image" in image_text or "sceen" in image_text  # questions 4 and 5 say "sceen" for both
        assert "this video" in video_text or "sceen" in video_text


# ---- 3. image samples ---------------------------------------------------------------------------


def test_an_image_sample_has_image_placeholders_at_the_image_pixel_budget():
    config = preset("tiny")
    config = config.updated({"mllm": {"image_min_pixels": 56 * 56, "image_max_pixels": 56 * 56}})
    inputs = _inputs([_clip(1, frames=1), _clip(2)], config, training=True, is_image=[True, False])
    image_pad, video_pad = QWEN.convert_tokens_to_ids(["<|image_pad|>", "<|video_pad|>"])
    # image: 56 x 56 -> 4 x 4 patches, one temporal patch (the frame repeated) -> 4 merged tokens
    assert inputs.grid_thw.tolist() == [[1, 4, 4], [4, 8, 8]]
    assert (inputs.input_ids[0] == image_pad).sum() == 4 and (inputs.input_ids[0] == video_pad).sum() == 0
    assert (inputs.input_ids[1] == video_pad).sum() == 4 * 8 * 8 // 4 and (inputs.input_ids[1] == image_pad).sum() == 0
    assert inputs.is_image == [True, False]
    with pytest.raises(ValueError, match="one frame"):
        _inputs([_clip(2)], is_image=[True])


def test_sam2_segments_image_frames_without_the_no_memory_embedding():
    segmenter = build_lavida(preset("tiny")).model.segmenter.eval()
    images = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        video = segmenter.encode(images)
        mixed = segmenter.encode(images, image_frames=torch.tensor([True, False]))
    no_mem = segmenter.no_mem_embed.view(1, -1, 1, 1)  # [1, C, 1, 1]
    assert torch.allclose(mixed.embedding[0] + no_mem[0], video.embedding[0])  # image: the bare features
    assert torch.equal(mixed.embedding[1], video.embedding[1])  # video frame: + no_mem_embed, as before


def test_a_batch_with_an_image_sample_runs_through_the_model():
    model = build_lavida(preset("tiny")).model.eval()
    inputs = _inputs([_clip(1, frames=1), _clip(2)], training=True, is_image=[True, False])
    with torch.no_grad():
        out = model(inputs)
    assert out.masks.mask_logits.shape[0] == 1 + 8 and torch.isfinite(out.lm_loss)
    # 112 x 112 -> 8 x 8 patches: 16 merged tokens for the image, 4 x 16 for the clip; sampling keeps half
    assert out.visual_tokens_in == [16, 64] and out.visual_tokens_out[0] == 8


# ---- 4. pixel budgets ---------------------------------------------------------------------------


def test_the_paper_pixel_budgets_per_frame():
    mllm = LavidaConfig().mllm
    assert pixel_budget(mllm, image=False, training=False) == (160 * 784 * 8, 192 * 784 * 8) == (1_003_520, 1_204_224)
    assert pixel_budget(mllm, image=False, training=True) == (32 * 784 * 8, 64 * 784 * 8) == (200_704, 401_408)
    assert pixel_budget(mllm, image=True, training=True) == (32 * 784, 1024 * 784) == (25_088, 802_816)
    # a 480 x 640 frame: 17 x 23 tokens of 28 px (306,544 px) fit the training budget; inference scales by
    # sqrt(1,003,520 / 307,200) = 1.807 and rounds up to 31 x 42 tokens
    assert smart_resize(480, 640, factor=28, min_pixels=200_704, max_pixels=401_408) == (476, 644)
    assert smart_resize(480, 640, factor=28, min_pixels=1_003_520, max_pixels=1_204_224) == (868, 1176)


def test_the_tiny_preset_reads_one_fixed_frame_size_everywhere():
    mllm = preset("tiny").mllm
    for image, training in ((False, False), (False, True), (True, True)):
        assert pixel_budget(mllm, image=image, training=training) == (112 * 112, 112 * 112)


def test_training_reads_video_frames_at_the_training_budget():
    config = preset("tiny").updated({"mllm": {"train_min_pixels": 56 * 56, "train_max_pixels": 56 * 56}})
    assert _inputs([_clip(2)], config, training=True).grid_thw.tolist() == [[4, 4, 4]]
    assert _inputs([_clip(2)], config).grid_thw.tolist() == [[4, 8, 8]]  # inference: 112 x 112


# ---- 5. temporal pruning at inference only ------------------------------------------------------


def _visual_tokens(config: LavidaConfig, *, training: bool) -> tuple[list[int], list[int]]:
    model = build_lavida(config).model.train(training)
    static = np.repeat(_clip(3, frames=1), 8, axis=0)  # 8 identical frames: every group of frames 2..8 static
    inputs = _inputs([static], config)
    with torch.no_grad():
        out = model.mllm(inputs.input_ids, inputs.pixel_values, inputs.grid_thw)
    return out.visual_tokens_in, out.visual_tokens_out


def test_temporal_pruning_runs_at_inference_only():
    tiny = preset("tiny")
    # 4 temporal patches of 16 merged tokens; inference keeps the first patch only, then sampling halves
    assert _visual_tokens(tiny, training=False) == ([64], [8])
    assert _visual_tokens(tiny, training=True) == ([64], [32])  # no pruning: 64 tokens, halved
    earlier = tiny.updated({"compression": {"temporal_pruning_in_training": True}})
    assert _visual_tokens(earlier, training=True) == ([64], [8])


# ---- configs saved before these fields ----------------------------------------------------------


def test_a_config_saved_before_the_reference_recipe_reads_as_the_model_it_was():
    saved = preset("tiny").to_dict()
    del saved["prompt_templates"]
    for key in ("temporal_pruning_in_training", "lof_centres_own_cluster"):
        del saved["compression"][key]
    for key in ("train_min_pixels", "train_max_pixels", "image_min_pixels", "image_max_pixels"):
        del saved["mllm"][key]
    saved["mllm"]["min_pixels"], saved["mllm"]["max_pixels"] = 100, 200
    config = LavidaConfig.from_dict(saved)
    assert config.prompt_templates == "fixed"
    assert config.compression.temporal_pruning_in_training and config.compression.lof_centres_own_cluster
    assert pixel_budget(config.mllm, image=False, training=True) == (100, 200)
    assert pixel_budget(config.mllm, image=True, training=True) == (100, 200)
    now = preset("tiny")
    assert LavidaConfig.from_dict(now.to_dict()) == now  # a config saved now keeps the reference's choices


def test_updated_changes_named_fields_and_refuses_unknown_ones():
    config = preset("tiny").updated({"prompt_templates": "fixed", "compression": {"lof_centres_own_cluster": True}})
    assert config.prompt_templates == "fixed" and config.compression.lof_centres_own_cluster
    assert dataclasses.replace(config.compression, lof_centres_own_cluster=False) == preset("tiny").compression
    with pytest.raises(InputError, match="prompt_templates"):
        preset("tiny").updated({"prompt_templates": "random"})
    with pytest.raises(InputError, match="unknown"):
        preset("tiny").updated({"compression": {"lof_k_": 3}})
    with pytest.raises(InputError, match="unknown"):
        preset("tiny").updated({"promt_templates": "fixed"})
