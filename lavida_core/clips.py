"""Which frames of a video the model sees: `plan_clips`, pure.

As in the reference evaluation: every `sample_interval`-th frame is sampled (0, s, 2s, ...), and
consecutive runs of `frames_per_clip` sampled frames form the clips, so clips never overlap and every
sampled frame is in exactly one clip. The tail: when the number of sampled frames is not a multiple
of `frames_per_clip`, the last clip is SHORTER (1 .. frames_per_clip-1 frames); it is neither dropped
(its frames would get no score) nor padded with repeats (they would be scored twice). A clip's scores
stand for the `sample_interval` frames that follow each sampled frame.
"""

from __future__ import annotations

import numpy as np

from lavida_core.errors import InputError

# sample_interval 0: sample the video's keyframes (intra frames) instead of every N-th frame
# (`lavida scan --sample-interval keyframes`); the clips are runs of frames_per_clip keyframes.
SAMPLE_KEYFRAMES = 0


def plan_clips(n_frames: int, frames_per_clip: int, sample_interval: int) -> list[np.ndarray]:
    """n_frames of a video -> the clips, each an int64 array of frame indices in increasing order."""
    if n_frames < 0:
        raise InputError(f"n_frames must be >= 0, got {n_frames}")
    if frames_per_clip < 1:
        raise InputError(f"frames_per_clip must be >= 1, got {frames_per_clip}")
    if sample_interval < 1:
        raise InputError(f"sample_interval must be >= 1, got {sample_interval}")
    sampled = np.arange(0, n_frames, sample_interval, dtype=np.int64)  # [ceil(n / s)]
    return clips_of(sampled, frames_per_clip)


def clips_of(sampled: np.ndarray, frames_per_clip: int) -> list[np.ndarray]:
    """Sampled frame indices (increasing) -> consecutive runs of `frames_per_clip`, the last one shorter."""
    sampled = np.asarray(sampled, dtype=np.int64)
    return [sampled[start : start + frames_per_clip] for start in range(0, len(sampled), frames_per_clip)]
