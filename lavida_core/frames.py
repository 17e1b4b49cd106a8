"""Pure pre/post-processing between uint8 video frames and the model's tensors.

- `validate_clip`: the checks a clip must pass (clear errors, never a traceback deep in the model).
- `qwen_video_patches`: Qwen2-VL's video input (smart resize, normalise, flatten into patches).
- `sam_images`: SAM2's image input (square resize, ImageNet normalisation).
- `clip_pixels`: CLIP's image input (shortest side resize, centre crop, CLIP normalisation), for search.
- `masks_at_frame_size`: low-resolution mask logits back to each frame's own size.
- `InputSizes`, `ScaledClip`: a clip decoded at the sizes the towers read (`lavida scan
  --frames-at-model-size`); the three functions above then resize nothing (a resize to an array's
  own size is the identity, skipped) and masks still come back at the video's size.

The three input functions take a `device`: the uint8 frames move there and are resized and normalised
there (the detector passes its own; on a GPU this keeps the resize of full-size frames, seconds of CPU
per 1080p clip at the paper preset, off the actor's CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lavida_core.config import LavidaConfig
from lavida_core.errors import InputError

QWEN_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's statistics, which Qwen2-VL reuses
QWEN_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_MEAN, CLIP_STD = QWEN_MEAN, QWEN_STD
SAM_MEAN = (0.485, 0.456, 0.406)
SAM_STD = (0.229, 0.224, 0.225)
MAX_SIDE = 8192
MAX_FRAMES_PER_CLIP = 256
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class InputSizes:
    """The frame sizes a model's towers read, from its config (inference pixel budget): Qwen2-VL's
    smart-resized frame, SAM2's square, CLIP's centre crop (None: the model has no image tower)."""

    factor: int  # Qwen's patch size x merge size: its frame sides are multiples of this
    min_pixels: int
    max_pixels: int
    sam_size: int
    clip_size: int | None

    @classmethod
    def of(cls, config: LavidaConfig) -> InputSizes:
        mllm = config.mllm
        return cls(
            factor=mllm.patch_size * mllm.spatial_merge_size,
            min_pixels=mllm.min_pixels,
            max_pixels=mllm.max_pixels,
            sam_size=config.image_encoder.image_size,
            clip_size=config.retrieval.image_size if config.retrieval is not None else None,
        )

    def qwen(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) Qwen2-VL reads a frame of this size at (read as it is: `qwen_video_patches(sized=True)`)."""
        return smart_resize(height, width, factor=self.factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def clip_resized(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) CLIP resizes a frame to before its centre crop (`clip_pixels`' rule)."""
        assert self.clip_size is not None
        return clip_resize(height, width, self.clip_size)


@dataclass(frozen=True)
class ScaledClip:
    """One clip decoded at `InputSizes` (uint8 RGB, T frames each): `qwen` [T, qh, qw, 3], `sam`
    [T, S, S, 3], `clip` [T, C, C, 3] (the centre crop) or None, and the video's own frame size, at
    which the masks are returned (the OUT contract)."""

    qwen: np.ndarray
    sam: np.ndarray
    clip: np.ndarray | None
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.qwen)


Clip = np.ndarray | ScaledClip  # what the detector and build_inputs take


def qwen_frames(clip: Clip) -> np.ndarray:
    return clip.qwen if isinstance(clip, ScaledClip) else clip


def sam_frames(clip: Clip) -> np.ndarray:
    return clip.sam if isinstance(clip, ScaledClip) else clip


def clip_frames(clip: Clip) -> np.ndarray:
    if isinstance(clip, ScaledClip):
        if clip.clip is None:
            raise InputError("the clip was decoded without CLIP's frames (for a model without an image tower)")
        return clip.clip
    return clip


def frame_size(clip: Clip) -> tuple[int, int]:
    """(height, width) of the video's frames: the size masks are returned at."""
    return (clip.height, clip.width) if isinstance(clip, ScaledClip) else (clip.shape[1], clip.shape[2])


def validate_clip(frames: object) -> Clip:
    """Check one clip: a uint8 array [T, H, W, 3], 1 <= T <= 256, 1 <= H, W <= 8192 (or a ScaledClip
    whose arrays are each such a clip of T frames)."""
    if isinstance(frames, ScaledClip):
        parts = [frames.qwen, frames.sam] + ([] if frames.clip is None else [frames.clip])
        for part in parts:
            validate_clip(part)
        if len({len(part) for part in parts}) != 1:
            raise InputError(f"a scaled clip's arrays have different frame counts: {[len(part) for part in parts]}")
        if not (1 <= frames.height <= MAX_SIDE and 1 <= frames.width <= MAX_SIDE):
            raise InputError(f"frame size {frames.width}x{frames.height} is outside 1..{MAX_SIDE} pixels per side")
        return frames
    if not isinstance(frames, np.ndarray):
        raise InputError(f"frames must be a numpy array of shape [T, H, W, 3], got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must have shape [T, H, W, 3] (RGB), got shape {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 (0..255 RGB), got dtype {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise InputError("the clip has no frames: give at least one frame")
    if t > MAX_FRAMES_PER_CLIP:
        raise InputError(f"a clip has at most {MAX_FRAMES_PER_CLIP} frames, got {t}: split it into clips")
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise InputError(f"frame size {w}x{h} is outside 1..{MAX_SIDE} pixels per side")
    if max(h, w) / min(h, w) > MAX_ASPECT_RATIO:
        raise InputError(f"frame aspect ratio {w}x{h} exceeds {MAX_ASPECT_RATIO}:1")
    return frames


def smart_resize(height: int, width: int, *, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize rule: sides multiples of `factor`, area within [min_pixels, max_pixels]."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _to_float_chw(frames: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float [T, 3, H, W], 0..255, on `device` (moved as uint8: a quarter of the
    bytes, and the float work runs where the model does). A copy: frames from Ray's object store are read-only."""
    return torch.from_numpy(np.array(frames)).to(device).permute(0, 3, 1, 2).float()


def _resize(x: torch.Tensor, size: tuple[int, int], *, mode: str) -> torch.Tensor:
    """Antialiased resize of [T, 3, H, W] to `size`; an array already that size is returned as it is
    (the resize would be the identity, at the cost of a full filter pass: frames decoded at the model's
    sizes, lavida_core.frames.ScaledClip)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(x - mean) / std per channel, in place: `x` is a fresh tensor of ours, and in place keeps its
    memory layout (half the time of a new tensor on CPU, the same values)."""
    mean_t = torch.tensor(mean, device=x.device).view(1, 3, 1, 1) * 255.0
    std_t = torch.tensor(std, device=x.device).view(1, 3, 1, 1) * 255.0
    return x.sub_(mean_t).div_(std_t)


def qwen_video_patches(
    frames: np.ndarray,
    *,
    patch_size: int,
    temporal_patch_size: int,
    merge_size: int,
    min_pixels: int,
    max_pixels: int,
    sized: bool = False,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Qwen2-VL video input: patches [t*gh*gw, 3*tp*p*p] and grid (t, gh, gw), in Qwen's patch order.
    sized: the frames are already at their smart-resized size (a ScaledClip's), read as they are
    (smart_resize is not idempotent where min_pixels is close to max_pixels). device: where the float
    work runs and the patches are (default: the CPU)."""
    _, height, width, _ = frames.shape
    factor = patch_size * merge_size
    if sized:
        rh, rw = height, width
    else:
        rh, rw = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    x = _resize(_to_float_chw(frames, device), (rh, rw), mode="bicubic")
    x = _normalise(x.clamp(0, 255), QWEN_MEAN, QWEN_STD)  # [T, 3, rh, rw]
    remainder = x.shape[0] % temporal_patch_size
    if remainder:
        x = torch.cat([x, x[-1:].expand(temporal_patch_size - remainder, -1, -1, -1)], dim=0)
    t, gh, gw = x.shape[0] // temporal_patch_size, rh // patch_size, rw // patch_size
    m, p, tp = merge_size, patch_size, temporal_patch_size
    x = x.reshape(t, tp, 3, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [t, gh/m, gw/m, m, m, 3, tp, p, p]
    return x.reshape(t * gh * gw, 3 * tp * p * p), (t, gh, gw)


def sam_images(frames: np.ndarray, *, image_size: int, device: torch.device | None = None) -> torch.Tensor:
    """SAM2 input: [T, 3, S, S] float on `device`, squarely resized, ImageNet-normalised."""
    x = _resize(_to_float_chw(frames, device), (image_size, image_size), mode="bilinear")
    return _normalise(x, SAM_MEAN, SAM_STD)


def clip_pixels(frames: np.ndarray, *, image_size: int, device: torch.device | None = None) -> torch.Tensor:
    """CLIP input, as CLIP's own preprocessing: [T, 3, S, S] float, the shortest side resized to S
    (bicubic, antialiased, to uint8 as CLIP's PIL resize gives it), the centre S x S cropped,
    CLIP-normalised. Resized as uint8 in channels-last layout: torch's fast path, ~5x the float one
    on a 320x240 frame (the resize is most of what the search embedding costs the scan). The resize
    runs on the CPU (CUDA has no antialiased uint8 resize); the crop goes to `device` for the rest."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8, channels-last
    rh, rw = clip_resize(*x.shape[-2:], image_size)
    x = _resize(x, (rh, rw), mode="bicubic")
    top, left = (rh - image_size) // 2, (rw - image_size) // 2
    x = x[:, :, top : top + image_size, left : left + image_size].to(device).float()
    return _normalise(x, CLIP_MEAN, CLIP_STD)


def clip_resize(height: int, width: int, image_size: int) -> tuple[int, int]:
    """CLIP's resize: the shortest side to `image_size`, the other in proportion."""
    scale = image_size / min(height, width)
    return max(image_size, round(height * scale)), max(image_size, round(width * scale))


def masks_at_frame_size(mask_logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """[T, h, w] logits -> bool [T, height, width] (bilinear upsampling of the logits, then > 0)."""
    up = F.interpolate(mask_logits.float().unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False)
    return (up.squeeze(1) > 0).cpu().numpy()
