"""The rows the scan's stages hand each other (decode -> detect -> write), declared once.

Ray Data moves rows as dicts of plain values and numpy arrays; these dataclasses name their fields
and types. Stages build rows with `StageRow.as_row()` and read them with `from_row(row)`, so a key
exists in one place only. Every row carries its video's fields (`VideoFields`): a video's rows may
reach the writer in any order, and the writer needs the video's facts from whichever comes first.

    plan   (jobs/scan/decode.py)  -> PlannedRow: one segment of a video to decode
    decode (jobs/scan/decode.py)  -> DecodedRow: one clip of sampled frames, or the video's error row
    detect (jobs/scan/detect.py)  -> DetectedRow: the clip's scores, masks and embedding instead of its frames
    write  (jobs/scan/write.py)   <- DetectedRow

No None values in a row: a column must have the same type in every Ray block, so unknown numbers
are -1 / NaN and "no error" is '' (the writer turns them into nulls).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

ROW_CLIP = "clip"  # row_kind of a clip
ROW_ERROR = "error"  # row_kind of a failed video's last row (clips of it already sent are dropped)
ROW_SEGMENT = "segment"  # row_kind of a PlannedRow: a segment to decode
ROW_WHOLE = "whole"  # row_kind of a PlannedRow: a remote video, decoded whole by one task (one download)
ROW_KEPT = "kept"  # row_kind of a video all of whose clips a killed run committed: its facts, no clip


@dataclass(frozen=True, kw_only=True)
class StageRow:
    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def as_row(self) -> dict[str, Any]:
        """The dict Ray Data carries (no copies of the arrays)."""
        return {name: getattr(self, name) for name in self.columns()}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        """The typed row from a Ray Data row; a missing column is a KeyError naming it."""
        return cls(**{name: row[name] for name in cls.columns()})


@dataclass(frozen=True, kw_only=True)
class VideoFields(StageRow):
    """Fields every row of a video carries (the `videos` row is made of them)."""

    video_id: str  # jobs/scan/listing.py fingerprint: stable for the same file
    uri: str
    size_bytes: int
    version_tag: str  # 'mtime:<seconds>' or 'etag:<etag>'
    status: str  # 'ok' on clip rows, the error kind on an error row
    error: str  # '' on clip rows, the message on an error row
    n_frames: int  # -1: unknown
    fps: float  # NaN: unknown
    duration_s: float  # NaN: unknown
    height: int  # -1: unknown
    width: int  # -1: unknown


@dataclass(frozen=True, kw_only=True)
class ClipFields(VideoFields):
    row_kind: str  # ROW_CLIP, ROW_ERROR or ROW_KEPT
    n_clips: int  # clips of the video this run commits (0 on an error row): the writer knows when a video is complete
    segment_index: int  # which segment of the video (decoded by one task) the clip is in; -1 if none
    segment_clips: int  # clips in that segment: the writer knows when a segment is complete
    clip_index: int  # -1 on an error row
    frame_indices: np.ndarray  # int64 [T]: indices in the decoded video
    timestamps: np.ndarray  # float64 [T]: start times from the decoder, seconds

    @property
    def is_error(self) -> bool:
        return self.row_kind == ROW_ERROR

    @property
    def is_clip(self) -> bool:
        return self.row_kind == ROW_CLIP


@dataclass(frozen=True, kw_only=True)
class PlannedRow(VideoFields):
    """plan -> decode: one segment of a video to decode (or the video's error / kept row)."""

    row_kind: str  # ROW_SEGMENT, ROW_WHOLE, ROW_ERROR or ROW_KEPT
    n_clips: int  # clips of the whole video (0 on a ROW_WHOLE row: not opened yet)
    segment_index: int  # -1 unless ROW_SEGMENT
    clip_indices: np.ndarray  # int64 [K]: the clips (indices into plan_clips) a ROW_SEGMENT decodes
    kept_clips: np.ndarray  # int64 [K]: the clips a ROW_WHOLE leaves out (a killed run committed them)
    only_clips: np.ndarray  # int64 [K]: the clips this run scores (a search's candidates); empty: all


@dataclass(frozen=True, kw_only=True)
class DecodedRow(ClipFields):
    """decode -> detect."""

    frames: np.ndarray  # uint8 [T, H, W, 3]; with --frames-at-model-size, at Qwen2-VL's size (H, W: height, width)
    sam_frames: np.ndarray  # uint8 [T, S, S, 3] at SAM2's size with --frames-at-model-size, else [0, 1, 1, 3]
    clip_frames: np.ndarray  # uint8 [T, C, C, 3] CLIP's crop with --frames-at-model-size (and an image tower), else [0, 1, 1, 3]


@dataclass(frozen=True, kw_only=True)
class DetectedRow(ClipFields):
    """detect -> write."""

    scores: np.ndarray  # float32 [T]: sigmoid of the object-score logit per frame
    mask_counts: str  # T COCO compressed RLE counts joined by lavida_core.rle.join_counts ('' per empty mask)
    model_trained: bool  # the detector had trained weights (False: a preset with random weights)
    embedding: np.ndarray  # float32 [P]: the clip's CLIP image embedding; [0] when the detector embeds none
