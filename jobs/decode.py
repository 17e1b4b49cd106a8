"""Decode stage: one listed video -> its clips of sampled frames (Ray Data `flat_map`, CPU tasks).

The video is read with jobs/video_reader.py (files through decord, frame folders, local or s3://);
only the planned frames are decoded (lavida_core.clips.plan_clips), and rows are yielded clip by
clip, so a long video never sits in memory whole. Rows are `schemas.stage_rows.DecodedRow`: one per
clip, or, when the video fails, one error row (status = the error kind) as the video's last row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from jobs.listing import VideoFile
from jobs.video_reader import VideoError, VideoInfo, open_video
from lavida_core.clips import plan_clips
from schemas.stage_rows import ROW_CLIP, ROW_ERROR, DecodedRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DecodeConfig:
    frames_per_clip: int
    sample_interval: int
    storage_options: dict = field(default_factory=dict)
    num_threads: int = 1  # decoder threads per task (Ray gives a decode task one CPU)


def decode_video(row: dict, *, config: DecodeConfig) -> Iterator[dict]:
    """flat_map fn: a listed video (VideoFile fields) -> its clip rows, or ends with one error row."""
    video = VideoFile(uri=row["uri"], size_bytes=int(row["size_bytes"]), version_tag=row["version_tag"], video_id=row["video_id"])
    info: VideoInfo | None = None
    try:
        with open_video(video.uri, config.storage_options, num_threads=config.num_threads) as opened:
            info = opened.info
            clips = plan_clips(info.n_frames, config.frames_per_clip, config.sample_interval)
            for clip_index, indices in enumerate(clips):
                frames, timestamps = opened.read(indices)
                yield clip_row(video, info, len(clips), clip_index, indices, timestamps, frames).as_row()
    except VideoError as error:
        log.warning("%s: %s (%s)", video.uri, error.kind, error)
        yield error_row(video, info, error.kind, str(error)).as_row()
    except Exception as error:  # anything else is still one video's failure, never the job's
        log.exception("%s: unexpected decode failure", video.uri)
        yield error_row(video, info, "decode_error", f"{type(error).__name__}: {error}").as_row()


def clip_row(
    video: VideoFile,
    info: VideoInfo,
    n_clips: int,
    clip_index: int,
    indices: np.ndarray,
    timestamps: np.ndarray,
    frames: np.ndarray,
) -> DecodedRow:
    return DecodedRow(
        **_video_fields(video, info, status="ok", error=""),
        height=int(frames.shape[1]),
        width=int(frames.shape[2]),
        row_kind=ROW_CLIP,
        n_clips=n_clips,
        clip_index=clip_index,
        frame_indices=indices.astype(np.int64),  # [T]
        timestamps=timestamps,  # [T]
        frames=frames,  # [T, H, W, 3]
    )


def error_row(video: VideoFile, info: VideoInfo | None, kind: str, message: str) -> DecodedRow:
    return DecodedRow(
        **_video_fields(video, info, status=kind, error=message),
        height=-1,
        width=-1,
        row_kind=ROW_ERROR,
        n_clips=0,
        clip_index=-1,
        frame_indices=np.zeros(0, dtype=np.int64),
        timestamps=np.zeros(0, dtype=np.float64),
        frames=np.zeros((0, 1, 1, 3), dtype=np.uint8),
    )


def _video_fields(video: VideoFile, info: VideoInfo | None, *, status: str, error: str) -> dict:
    return {
        "video_id": video.video_id,
        "uri": video.uri,
        "size_bytes": video.size_bytes,
        "version_tag": video.version_tag,
        "status": status,
        "error": error,
        "n_frames": info.n_frames if info else -1,
        "fps": info.fps if info else float("nan"),
        "duration_s": info.duration_s if info else float("nan"),
    }
