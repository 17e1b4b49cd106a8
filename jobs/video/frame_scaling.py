"""Frames converted straight to the sizes a model's towers read (`lavida scan --frames-at-model-size`),
by FFmpeg's scaler (libswscale, through PyAV) from the decoded picture.

By default the decode stage converts each sampled frame to full-size RGB and the detector resizes it for
each tower (lavida_core.frames, in float, as the reference's processors do). At 1080p that resize costs
the detector's process more than the model on small presets and several CPU cores per GPU at the paper
preset, and the full-size frames are what crosses Ray's object store. Here the decode task converts each
frame to RGB at its own size (as the default path does) and then, once per tower, scales it to that
tower's size (lavida_core.frames.InputSizes): Qwen2-VL's smart-resized frame (bicubic), SAM2's square
(bilinear), CLIP's shortest side (bicubic) and its centre crop; the detector then resizes nothing, and
masks are still returned at the video's size. FFmpeg's filters give the model's own resize within a
fraction of a level on average, not bit for bit, which is why this is an option (another scan profile)
and not the default. Scaling the decoder's YUV picture straight to each size costs ~40 % less but moves
colour by several levels where the chroma has detail (its chroma is interpolated, the default path's
is not): measured in bench/RESULTS.md, not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from lavida_core.frames import InputSizes, ScaledClip
from lavida_core.model_folders import model_config

QWEN_INTERPOLATION = "BICUBIC"
SAM_INTERPOLATION = "BILINEAR"
CLIP_INTERPOLATION = "BICUBIC"

# One frame at the towers' sizes: (qwen, sam, clip or None, source height, source width).
Converted = tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int]


@dataclass(frozen=True)
class FrameScaler:
    sizes: InputSizes

    def convert(self, frame: av.VideoFrame) -> Converted:
        """One decoded picture (any pixel format) -> its RGB arrays at each tower's size."""
        if frame.format.name != "rgb24":
            frame = frame.reformat(format="rgb24")  # the default path's RGB, then scaled RGB to RGB
        height, width = frame.height, frame.width
        qh, qw = self.sizes.qwen(height, width)
        qwen = frame.to_ndarray(format="rgb24", width=qw, height=qh, interpolation=QWEN_INTERPOLATION)
        side = self.sizes.sam_size
        sam = frame.to_ndarray(format="rgb24", width=side, height=side, interpolation=SAM_INTERPOLATION)
        clip = None
        if self.sizes.clip_size is not None:
            ch, cw = self.sizes.clip_resized(height, width)
            resized = frame.to_ndarray(format="rgb24", width=cw, height=ch, interpolation=CLIP_INTERPOLATION)
            clip = centre_crop(resized, self.sizes.clip_size)
        return qwen, sam, clip, height, width

    def assemble(self, frames: list[Converted]) -> ScaledClip:
        """A clip of converted frames (all of one source size)."""
        sizes = {(f[3], f[4]) for f in frames}
        if len(sizes) != 1:
            raise ValueError(f"frames of different sizes in one clip: {sorted(sizes)}")
        (height, width) = sizes.pop()
        clip = None if frames[0][2] is None else np.stack([f[2] for f in frames])
        return ScaledClip(np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]), clip, height, width)

    def scale_rgb(self, frames: np.ndarray) -> ScaledClip:
        """RGB frames uint8 [T, H, W, 3] already converted (a frame folder, or decord's reading) -> the
        same arrays as a decoded picture gives, through the same scaler."""
        return self.assemble([self.convert(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")) for f in frames])


def scaler_for(model: str) -> FrameScaler:
    """The scaler for a --model value (a preset, a shipped model or a model folder): its config's sizes."""
    return FrameScaler(InputSizes.of(model_config(model)))


def centre_crop(frame: np.ndarray, side: int) -> np.ndarray:
    """The centre side x side of an [H, W, 3] frame (lavida_core.frames.clip_pixels' crop)."""
    height, width = frame.shape[:2]
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(frame[top : top + side, left : left + side])
