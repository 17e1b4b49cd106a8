"""Plan and decode stages: one listed video -> its segments -> their clips of sampled frames
(Ray Data `flat_map`s, CPU tasks).

`plan_video` opens the video once for its frame count, plans its clips (lavida_core.clips.plan_clips),
leaves out the clips a killed run already committed, and cuts the rest into segments of at most
`clips_per_segment` consecutive clips. `decode_segment` decodes one segment: the segments of a long
video decode in parallel tasks and commit as they finish (jobs/scan/write.py), so a day-long file
neither holds up the end of a run nor starts over after a kill. A short or remote video skips the plan
task: its ROW_WHOLE row (`whole_video`) is decoded whole by one `decode_segment` call, its clips still
labelled (and committed) by segment; jobs/scan/job.py decides which videos are planned first.

The video is read with jobs/video/reader.py (files in order through PyAV, frame folders, local or s3://);
only the planned frames are converted (to full-size RGB, or with `DecodeConfig.scaler` straight to the
model's input sizes: jobs/video/frame_scaling.py), and rows are yielded clip by clip, so a long video
never sits in memory whole. Rows are `schemas.stage_rows.DecodedRow`: one per clip, or, when the video fails, one
error row (status = the error kind) as its last row.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from jobs.out.storage import is_remote
from jobs.scan.listing import VideoFile
from jobs.scan.options import DEFAULT_CLIPS_PER_SEGMENT
from jobs.video.frame_scaling import FrameScaler
from jobs.video.reader import OpenVideo, VideoError, VideoInfo, open_video
from lavida_core.clips import SAMPLE_KEYFRAMES
from lavida_core.frames import ScaledClip, frame_size, qwen_frames
from schemas.stage_rows import ROW_CLIP, ROW_ERROR, ROW_KEPT, ROW_SEGMENT, ROW_WHOLE, DecodedRow, PlannedRow, VideoFields

log = logging.getLogger(__name__)

NO_FRAMES = np.zeros((0, 1, 1, 3), dtype=np.uint8)  # a row without (these) frames


@dataclass(frozen=True, kw_only=True)
class DecodeConfig:
    frames_per_clip: int
    sample_interval: int
    storage_options: dict = field(default_factory=dict)
    num_threads: int = 1  # FFmpeg threads per decode task: the Ray CPUs it reserves (--decode-cpus)
    clips_per_segment: int = DEFAULT_CLIPS_PER_SEGMENT  # a longer video is decoded by several tasks
    scaler: FrameScaler | None = None  # frames converted at the model's sizes (--frames-at-model-size)

    @property
    def keyframes(self) -> bool:
        """Sampling the keyframes (`--sample-interval keyframes`): the decoder skips every other frame."""
        return self.sample_interval == SAMPLE_KEYFRAMES


def plan_video(row: dict, *, config: DecodeConfig) -> Iterator[dict]:
    """flat_map fn: a listed video (VideoFile fields + `kept_clips`) -> its segments to decode
    (PlannedRow: consecutive clips, at most `clips_per_segment`), or its error row, or (all of its
    clips kept from a killed run) one ROW_KEPT row with its facts."""
    video = video_file(row)
    kept = set(int(i) for i in row.get("kept_clips", ()))
    only = np.asarray(sorted(int(i) for i in row.get("only_clips", ())), dtype=np.int64)
    if is_remote(video.uri):  # opening it would download it: one task downloads and decodes it whole
        yield whole_video(video, kept_clips=row.get("kept_clips", ()), only_clips=row.get("only_clips", ())).as_row()
        return
    info: VideoInfo | None = None
    try:
        with open_video(video.uri, config.storage_options, num_threads=config.num_threads, keyframes_only=config.keyframes) as opened:
            info = opened.info
            clips = opened.plan(config.frames_per_clip, config.sample_interval)
            wanted = wanted_clips(len(clips), only)
            segments = segments_of(wanted, kept, config.clips_per_segment)
            if not segments:
                yield kept_row(video, opened, clips, len(wanted)).as_row()
    except VideoError as error:
        log.warning("%s: %s (%s)", video.uri, error.kind, error)
        yield planned(video, info, ROW_ERROR, status=error.kind, error=str(error)).as_row()
        return
    except Exception as error:  # anything else is still one video's failure, never the job's
        log.exception("%s: unexpected failure opening it", video.uri)
        yield planned(video, info, ROW_ERROR, status="decode_error", error=f"{type(error).__name__}: {error}").as_row()
        return
    for segment_index, indices in enumerate(segments):
        yield planned(
            video, info, ROW_SEGMENT, n_clips=len(wanted), segment_index=segment_index, clip_indices=np.asarray(indices), only_clips=only
        ).as_row()


def whole_video(video: VideoFile, *, kept_clips, only_clips) -> PlannedRow:
    """The ROW_WHOLE row of a video one task opens once and decodes whole (every segment but the kept
    clips), without a plan task: a remote video, or a short one (jobs/scan/job.py)."""
    kept = np.asarray(sorted(int(i) for i in kept_clips), dtype=np.int64)
    only = np.asarray(sorted(int(i) for i in only_clips), dtype=np.int64)
    return planned(video, None, ROW_WHOLE, kept_clips=kept, only_clips=only)


def wanted_clips(n_clips: int, only: np.ndarray) -> list[int]:
    """The clips this run commits: all of the video's, or those of `only` that it has (a search's candidates)."""
    if len(only) == 0:
        return list(range(n_clips))
    return [int(i) for i in only if 0 <= i < n_clips]


def segments_of(wanted: list[int], kept: set[int], clips_per_segment: int) -> list[list[int]]:
    """The clips still to decode (the wanted ones but `kept`), in runs of at most `clips_per_segment`."""
    todo = [i for i in wanted if i not in kept]
    return [todo[start : start + clips_per_segment] for start in range(0, len(todo), clips_per_segment)]


def decode_segment(row: dict, *, config: DecodeConfig) -> Iterator[dict]:
    """flat_map fn: a PlannedRow -> the segment's clip rows (DecodedRow), or ends with the video's
    error row; an error or kept row passes through as a DecodedRow. A ROW_WHOLE row (a remote video)
    is opened once and all its clips but the kept ones decoded, labelled with the segments they
    commit in (consecutive runs of `clips_per_segment`)."""
    item = PlannedRow.from_row(row)
    video = video_file(row)
    if item.row_kind not in (ROW_SEGMENT, ROW_WHOLE):
        yield _without_frames(item).as_row()
        return
    info: VideoInfo | None = None
    try:
        with open_video(video.uri, config.storage_options, num_threads=config.num_threads, keyframes_only=config.keyframes) as opened:
            info = opened.info
            clips = opened.plan(config.frames_per_clip, config.sample_interval)
            wanted = wanted_clips(len(clips), item.only_clips)
            if item.row_kind == ROW_SEGMENT:
                segments = [(item.segment_index, item.clip_indices.tolist())]
            else:
                segments = list(enumerate(segments_of(wanted, set(item.kept_clips.tolist()), config.clips_per_segment)))
                if not segments:
                    yield _without_frames(kept_row(video, opened, clips, len(wanted))).as_row()
            for segment_index, clip_indices in segments:
                segment = dataclasses.replace(item, n_clips=len(wanted), segment_index=segment_index, clip_indices=np.asarray(clip_indices))
                for clip_index in clip_indices:
                    indices = clips[clip_index]
                    frames, timestamps = opened.read(indices, config.scaler)
                    yield clip_row(segment, info, clip_index, indices, timestamps, frames).as_row()
    except VideoError as error:
        log.warning("%s: %s (%s)", video.uri, error.kind, error)
        yield error_row(video, info, error.kind, str(error)).as_row()
    except Exception as error:  # anything else is still one video's failure, never the job's
        log.exception("%s: unexpected decode failure", video.uri)
        yield error_row(video, info, "decode_error", f"{type(error).__name__}: {error}").as_row()


def decode_video(row: dict, *, config: DecodeConfig) -> Iterator[dict]:
    """A whole video's DecodedRows in one process (plan_video then decode_segment): for tests and tools."""
    for planned_row in plan_video(row, config=config):
        yield from decode_segment(planned_row, config=config)


def kept_row(video: VideoFile, opened: OpenVideo, clips: list[np.ndarray], n_wanted: int) -> PlannedRow:
    """The ROW_KEPT row of a video all of whose (`n_wanted`) clips a killed run committed: its facts,
    its frame size from one decoded frame."""
    frames, _ = opened.read(clips[0][:1])  # [1, H, W, 3]
    kept = planned(video, opened.info, ROW_KEPT, n_clips=n_wanted)
    return dataclasses.replace(kept, height=int(frames.shape[1]), width=int(frames.shape[2]))


def planned(
    video: VideoFile,
    info: VideoInfo | None,
    kind: str,
    *,
    status: str = "ok",
    error: str = "",
    n_clips: int = 0,
    segment_index: int = -1,
    clip_indices: np.ndarray | None = None,
    kept_clips: np.ndarray | None = None,
    only_clips: np.ndarray | None = None,
) -> PlannedRow:
    return PlannedRow(
        **_video_fields(video, info, status=status, error=error),
        height=-1,
        width=-1,
        row_kind=kind,
        n_clips=n_clips,
        segment_index=segment_index,
        clip_indices=np.zeros(0, dtype=np.int64) if clip_indices is None else clip_indices,
        kept_clips=np.zeros(0, dtype=np.int64) if kept_clips is None else kept_clips,
        only_clips=np.zeros(0, dtype=np.int64) if only_clips is None else only_clips,
    )


def clip_row(
    item: PlannedRow, info: VideoInfo, clip_index: int, indices: np.ndarray, timestamps: np.ndarray, frames: np.ndarray | ScaledClip
) -> DecodedRow:
    (height, width) = frame_size(frames)
    scaled = frames if isinstance(frames, ScaledClip) else None
    return DecodedRow(
        **_video_fields(video_file(item.as_row()), info, status="ok", error=""),
        height=int(height),
        width=int(width),
        row_kind=ROW_CLIP,
        n_clips=item.n_clips,
        segment_index=item.segment_index,
        segment_clips=len(item.clip_indices),
        clip_index=clip_index,
        frame_indices=indices.astype(np.int64),  # [T]
        timestamps=timestamps,  # [T]
        frames=qwen_frames(frames),  # [T, H, W, 3], or at Qwen2-VL's size
        sam_frames=NO_FRAMES if scaled is None else scaled.sam,
        clip_frames=NO_FRAMES if scaled is None or scaled.clip is None else scaled.clip,
    )


def error_row(video: VideoFile, info: VideoInfo | None, kind: str, message: str) -> DecodedRow:
    return _without_frames(planned(video, info, ROW_ERROR, status=kind, error=message))


def _without_frames(item: PlannedRow) -> DecodedRow:
    """An error or kept row: the video's facts, no clip."""
    fields = {name: getattr(item, name) for name in VideoFields.columns()}
    return DecodedRow(
        **fields,
        row_kind=item.row_kind,
        n_clips=item.n_clips,
        segment_index=-1,
        segment_clips=0,
        clip_index=-1,
        frame_indices=np.zeros(0, dtype=np.int64),
        timestamps=np.zeros(0, dtype=np.float64),
        frames=NO_FRAMES,
        sam_frames=NO_FRAMES,
        clip_frames=NO_FRAMES,
    )


def video_file(row: dict) -> VideoFile:
    return VideoFile(uri=row["uri"], size_bytes=int(row["size_bytes"]), version_tag=row["version_tag"], video_id=row["video_id"])


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
