"""The LAVIDA model at the tiny preset, on CPU: shapes, batching, compression, save/load, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from lavida_core.checkpoint import (
    Checkpoint,
    build_lavida,
    load_lavida,
    save_lavida,
    save_trained_parts,
    trained_part_keys,
)
from lavida_core.config import preset
from lavida_core.detector import LavidaDetector
from lavida_core.errors import CheckpointError, InputError

TYPES = ["fire", "a person falling"]
SCORE_TOLERANCE = 1e-5  # batching only changes padding, so float32 results agree to rounding


def _clip(seed: int, t: int = 8, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def _detector(config=None, checkpoint=None, seed: int = 0) -> LavidaDetector:
    loaded = build_lavida(config or preset("tiny"), checkpoint, seed=seed)
    return LavidaDetector(loaded, model_name="tiny")


@pytest.fixture(scope="module")
def detector() -> LavidaDetector:
    return _detector()


def test_scores_in_unit_range_and_masks_at_frame_size(detector):
    for shape in ((8, 48, 64), (5, 31, 77), (1, 120, 90)):
        result = detector.detect(_clip(1, *shape), TYPES)
        assert result.scores.dtype == np.float32 and result.scores.shape == (shape[0],)
        assert np.all((result.scores >= 0) & (result.scores <= 1))
        assert result.masks.dtype == bool and result.masks.shape == shape


def test_batch_of_clips_equals_single_calls(detector):
    clips = [_clip(2), _clip(3, 8, 120, 90), _clip(4, 6, 40, 40)]
    batched = detector.detect_batch(clips, TYPES)
    for clip, together in zip(clips, batched):
        alone = detector.detect(clip, TYPES)
        np.testing.assert_allclose(together.scores, alone.scores, atol=SCORE_TOLERANCE)
        assert (together.masks != alone.masks).mean() < 1e-3


def test_eval_mode_is_deterministic(detector):
    first, second = detector.detect(_clip(5), TYPES), detector.detect(_clip(5), TYPES)
    assert np.array_equal(first.scores, second.scores) and np.array_equal(first.masks, second.masks)


def test_anomaly_types_change_the_scores(detector):
    a = detector.detect(_clip(6), ["fire"]).scores
    b = detector.detect(_clip(6), ["a dog running on the grass"]).scores
    assert not np.allclose(a, b)


def _with_compression(**changes) -> object:
    tiny = preset("tiny")
    return tiny.replace(compression=dataclasses.replace(tiny.compression, **changes))


def test_token_sampling_off_equals_ratio_one():
    off = _detector(_with_compression(token_sampling=False)).detect(_clip(7), TYPES)
    ratio_one = _detector(_with_compression(reduction_ratio=1.0)).detect(_clip(7), TYPES)
    np.testing.assert_array_equal(off.scores, ratio_one.scores)
    np.testing.assert_array_equal(off.masks, ratio_one.masks)


def test_temporal_pruning_off_equals_pruning_nothing():
    off = _detector(_with_compression(temporal_pruning=False)).detect(_clip(8), TYPES)
    nothing_static = _detector(_with_compression(static_threshold=-1.0)).detect(_clip(8), TYPES)
    np.testing.assert_allclose(off.scores, nothing_static.scores, atol=SCORE_TOLERANCE)


def test_compression_reduces_visual_tokens(detector):
    static = np.repeat(_clip(9, 1, 112, 112), 8, axis=0)
    static[4:, :28, :28] = 255 - static[4:, :28, :28]  # one corner changes half-way
    inputs = detector.prepare([static], TYPES)
    with torch.inference_mode():
        out = detector.model(inputs)
    n_in, n_out = out.visual_tokens_in[0], out.visual_tokens_out[0]
    # 4 temporal patches x 16 merged tokens; frames 2..4 keep only the changing corner group, then x0.5
    assert n_in == 64
    assert n_out == int((16 + 3 * 1) * 0.5)


def test_save_load_round_trip_gives_identical_outputs(detector, tmp_path):
    loaded = dataclasses.replace(detector.loaded, trained=True)
    save_lavida(loaded, tmp_path / "model")
    again = LavidaDetector(load_lavida(tmp_path / "model"), model_name="saved")
    assert again.trained
    before, after = detector.detect(_clip(10), TYPES), again.detect(_clip(10), TYPES)
    np.testing.assert_array_equal(before.scores, after.scores)
    np.testing.assert_array_equal(before.masks, after.masks)


def test_trained_parts_round_trip_and_strictness(detector, tmp_path):
    path = tmp_path / "trained.safetensors"
    save_trained_parts(detector.model, path)
    keys = set(load_file(str(path)))
    assert keys == set(trained_part_keys(detector.model))
    assert any(".lora_A." in k for k in keys) and any(k.startswith("projector.") for k in keys)
    assert not any("image_encoder" in k or "text_encoder" in k for k in keys), "frozen parts are not saved"
    other = _detector(seed=123)
    fresh = build_lavida(preset("tiny"), Checkpoint(trained_path=path))
    fresh_detector = LavidaDetector(fresh, model_name="parts")
    assert fresh_detector.trained and not other.trained
    # Same trained parts but different random frozen parts: the trained tensors match exactly.
    state = fresh.model.state_dict()
    original = detector.model.state_dict()
    assert all(torch.equal(state[k], original[k]) for k in keys)


def test_missing_and_unexpected_keys_are_named(detector, tmp_path):
    path = tmp_path / "trained.safetensors"
    save_trained_parts(detector.model, path)
    state = load_file(str(path))
    dropped = sorted(state)[0]
    del state[dropped]
    state["projector.not_a_weight"] = torch.zeros(2)
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as error:
        build_lavida(preset("tiny"), Checkpoint(trained_path=path))
    message = str(error.value)
    assert dropped in message and "projector.not_a_weight" in message
    assert "missing" in message and "unexpected" in message


def test_wrong_shape_is_named(detector, tmp_path):
    loaded = build_lavida(preset("tiny"))
    save_lavida(loaded, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    state["projector.seg_proj.weight"] = torch.zeros(3, 3)
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match="wrong shape.*projector.seg_proj.weight"):
        load_lavida(tmp_path / "m")


def test_not_a_model_folder(tmp_path):
    with pytest.raises(InputError, match="neither a preset"):
        LavidaDetector.load(str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="lavida.json is missing"):
        load_lavida(tmp_path)


@pytest.mark.parametrize(
    ("clips", "types", "message"),
    [
        ([], TYPES, "at least one clip"),
        ([np.zeros((0, 32, 32, 3), np.uint8)], TYPES, "no frames"),
        ([np.zeros((4, 32, 32, 3), np.float32)], TYPES, "uint8"),
        ([np.zeros((4, 32, 32), np.uint8)], TYPES, r"\[T, H, W, 3\]"),
        ([np.zeros((4, 32, 32, 4), np.uint8)], TYPES, r"\[T, H, W, 3\]"),
        ([np.zeros((2, 9000, 32, 3), np.uint8)], TYPES, "outside 1..8192"),
        ([np.zeros((1000, 8, 8, 3), np.uint8)], TYPES, "at most 256 frames"),
        ([np.zeros((2, 1, 400, 3), np.uint8)], TYPES, "aspect ratio"),
        ([_clip(0, 2)], [], "at least one anomaly type"),
        ([_clip(0, 2)], "fire", "list of names"),
        ([_clip(0, 2)], ["fire", ""], "non-empty"),
        (["not an array"], TYPES, "numpy array"),
    ],
)
def test_bad_input_is_a_clear_error(detector, clips, types, message):
    with pytest.raises(InputError, match=message):
        detector.detect_batch(clips, types)


def test_unknown_device_and_missing_gpu(detector):
    loaded = build_lavida(preset("tiny"))
    with pytest.raises(InputError, match="device must be"):
        LavidaDetector(loaded, model_name="tiny", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            LavidaDetector(loaded, model_name="tiny", device="cuda")


def test_a_preset_too_big_for_free_memory_is_refused_before_building(monkeypatch):
    """Free memory is faked (psutil reports the real machine's): the guard must fire before any allocation."""
    import psutil

    real = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=1024))
    with pytest.raises(InputError, match="needs about .* GiB .* --device cuda"):
        LavidaDetector.load("tiny", device="cpu")


# bf16 against float32 on the same CPU: bf16 keeps 8 bits of mantissa (relative error ~4e-3 per
# rounding), and the scores pass through dozens of layers; masks are thresholded logits, so a few
# pixels near the 0 crossing may flip.
BF16_SCORE_ATOL = 2e-2
BF16_MASK_FLIPS = 1e-2


def test_bf16_on_cpu_runs_the_cuda_path_and_stays_close_to_float32():
    """--dtype bfloat16 on CPU: bf16 weights under bf16 autocast, as on CUDA (so CI runs that path)."""
    from jobs.cli.demo import demo_videos

    full, half = LavidaDetector.load("demo"), LavidaDetector.load("demo", dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16 and half.dtype == "bfloat16" and full.dtype == "float32"
    for video in demo_videos()[:3]:
        a, b = full.detect(video.frames[:8], [video.anomaly_type]), half.detect(video.frames[:8], [video.anomaly_type])
        np.testing.assert_allclose(a.scores, b.scores, atol=BF16_SCORE_ATOL)
        assert b.scores.dtype == np.float32 and (a.masks != b.masks).mean() <= BF16_MASK_FLIPS
    with pytest.raises(InputError, match="--dtype must be one of"):
        LavidaDetector.load("tiny", dtype="float16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: bf16 autocast path (CI has none)")
def test_cuda_bf16_matches_cpu_float32_within_bf16_tolerance():
    cpu = _detector()
    torch.manual_seed(0)
    gpu = LavidaDetector(build_lavida(preset("tiny")), model_name="tiny", device="cuda")
    a, b = cpu.detect(_clip(11), TYPES), gpu.detect(_clip(11), TYPES)
    np.testing.assert_allclose(a.scores, b.scores, atol=2e-2)
    assert b.masks.shape == a.masks.shape


def test_a_preset_builds_the_same_weights_in_every_process():
    """Every Ray actor builds its own copy: a random preset must be the same model in each."""
    torch.manual_seed(1)
    first = build_lavida(preset("tiny")).model.state_dict()
    torch.manual_seed(2)
    second = build_lavida(preset("tiny")).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other_seed = build_lavida(preset("tiny"), seed=1).model.state_dict()
    assert not all(torch.equal(first[k], other_seed[k]) for k in first)


def test_a_perfectly_static_clip_runs(detector):
    """Temporal pruning drops every token of frames 2..T of an unchanging scene: still a valid clip."""
    still = np.repeat(_clip(12, 1, 48, 64), 8, axis=0)
    result = detector.detect(still, TYPES)
    assert result.scores.shape == (8,) and np.all(np.isfinite(result.scores))
