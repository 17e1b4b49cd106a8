"""Pure pre/post-processing between uint8 video frames and the model's tensors.

- `validate_clip`: the checks a clip must pass (clear errors, never a traceback deep in the model).
- `qwen_video_patches`: Qwen2-VL's video input (smart resize, normalise, flatten into patches).
- `sam_images`: SAM2's image input (square resize, ImageNet normalisation).
- `clip_pixels`: CLIP's image input (shortest side resize, centre crop, CLIP normalisation), for search.
- `masks_at_frame_size`: low-resolution mask logits back to each frame's own size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lavida_core.errors import InputError

QWEN_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's statistics, which Qwen2-VL reuses
QWEN_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_MEAN, CLIP_STD = QWEN_MEAN, QWEN_STD
SAM_MEAN = (0.485, 0.456, 0.406)
SAM_STD = (0.229, 0.224, 0.225)
MAX_SIDE = 8192
MAX_FRAMES_PER_CLIP = 256
MAX_ASPECT_RATIO = 200


def validate_clip(frames: object) -> np.ndarray:
    """Check one clip: a uint8 array [T, H, W, 3], 1 <= T <= 256, 1 <= H, W <= 8192."""
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


def _to_float_chw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float()  # [T, 3, H, W], 0..255 (a copy:
    # frames from Ray's object store are read-only)


def _normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    mean_t = torch.tensor(mean).view(1, 3, 1, 1) * 255.0
    std_t = torch.tensor(std).view(1, 3, 1, 1) * 255.0
    return (x - mean_t) / std_t


def qwen_video_patches(
    frames: np.ndarray,
    *,
    patch_size: int,
    temporal_patch_size: int,
    merge_size: int,
    min_pixels: int,
    max_pixels: int,
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Qwen2-VL video input: patches [t*gh*gw, 3*tp*p*p] and grid (t, gh, gw), in Qwen's patch order."""
    _, height, width, _ = frames.shape
    factor = patch_size * merge_size
    rh, rw = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    x = _to_float_chw(frames)
    x = F.interpolate(x, size=(rh, rw), mode="bicubic", align_corners=False, antialias=True)
    x = _normalise(x.clamp(0, 255), QWEN_MEAN, QWEN_STD)  # [T, 3, rh, rw]
    remainder = x.shape[0] % temporal_patch_size
    if remainder:
        x = torch.cat([x, x[-1:].expand(temporal_patch_size - remainder, -1, -1, -1)], dim=0)
    t, gh, gw = x.shape[0] // temporal_patch_size, rh // patch_size, rw // patch_size
    m, p, tp = merge_size, patch_size, temporal_patch_size
    x = x.reshape(t, tp, 3, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [t, gh/m, gw/m, m, m, 3, tp, p, p]
    return x.reshape(t * gh * gw, 3 * tp * p * p), (t, gh, gw)


def sam_images(frames: np.ndarray, *, image_size: int) -> torch.Tensor:
    """SAM2 input: [T, 3, S, S] float, squarely resized, ImageNet-normalised."""
    x = _to_float_chw(frames)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return _normalise(x, SAM_MEAN, SAM_STD)


def clip_pixels(frames: np.ndarray, *, image_size: int) -> torch.Tensor:
    """CLIP input, as CLIP's own preprocessing: [T, 3, S, S] float, the shortest side resized to S
    (bicubic, antialiased, to uint8 as CLIP's PIL resize gives it), the centre S x S cropped,
    CLIP-normalised. Resized as uint8 in channels-last layout: torch's fast path, ~5x the float one
    on a 320x240 frame (the resize is most of what the search embedding costs the scan)."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8, channels-last
    height, width = x.shape[-2:]
    scale = image_size / min(height, width)
    rh, rw = max(image_size, round(height * scale)), max(image_size, round(width * scale))
    x = F.interpolate(x, size=(rh, rw), mode="bicubic", align_corners=False, antialias=True)
    top, left = (rh - image_size) // 2, (rw - image_size) // 2
    x = x[:, :, top : top + image_size, left : left + image_size].float()
    return _normalise(x, CLIP_MEAN, CLIP_STD)


def masks_at_frame_size(mask_logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """[T, h, w] logits -> bool [T, height, width] (bilinear upsampling of the logits, then > 0)."""
    up = F.interpolate(mask_logits.float().unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False)
    return (up.squeeze(1) > 0).cpu().numpy()
