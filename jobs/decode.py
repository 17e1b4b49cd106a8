"""Decode stage: one listed video -> its clips of sampled frames (Ray Data `flat_map`, CPU tasks).

One decord reader per video per task; only the planned frames are decoded (`get_batch` seeks, so
a sparse sample never decodes the whole video), and each frame's timestamp comes from the decoder.
Rows are yielded clip by clip, so a long video never sits in memory whole.

Row kinds (column `row_kind`):
- 'clip':  one clip: frames uint8 [T, H, W, 3], frame_indices int64 [T], timestamps float64 [T],
           with the video's metadata and `n_clips` (so the writer knows when a video is complete).
- 'error': the video failed (status = an error kind, error = message, '' on clip rows). It is the video's last row:
           clips already yielded for it are dropped by the writer.

A file decord cannot open is diagnosed (with PyAV, which reads the same FFmpeg containers) to give
the error kind: 'empty', 'truncated', 'not_a_video', 'unsupported_codec', 'no_frames', 'read_error',
'decode_error'.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import decord
import numpy as np

from jobs.frame_sequences import FrameSequence
from jobs.listing import VideoFile, filesystem_for
from lavida_core.clips import plan_clips

log = logging.getLogger(__name__)
decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's own messages; failures are reported as rows

# FFmpeg's AVERROR_DECODER_NOT_FOUND as decord prints it when a stream has no decoder.
DECODER_NOT_FOUND = re.compile(r"\(-1128613112 vs")

# First bytes of media containers: a file that starts like one but cannot be opened is 'truncated'.
CONTAINER_SIGNATURES: dict[str, tuple[int, bytes]] = {
    "mp4/mov ftyp": (4, b"ftyp"),
    "mp4/mov moov": (4, b"moov"),
    "mp4/mov mdat": (4, b"mdat"),
    "mp4/mov free": (4, b"free"),
    "avi": (8, b"AVI "),
    "matroska/webm": (0, b"\x1a\x45\xdf\xa3"),
    "mpeg-ts": (0, b"\x47"),
    "mpeg-ps": (0, b"\x00\x00\x01\xba"),
    "flv": (0, b"FLV"),
    "ogg": (0, b"OggS"),
    "asf/wmv": (0, b"\x30\x26\xb2\x75"),
}


@dataclass(frozen=True, kw_only=True)
class DecodeConfig:
    frames_per_clip: int
    sample_interval: int
    storage_options: dict = field(default_factory=dict)
    num_threads: int = 1  # decoder threads per task (Ray gives a decode task one CPU)


class VideoError(Exception):
    """A video that cannot be scanned; `kind` is its `videos.status`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    duration_s: float


def decode_video(row: dict, *, config: DecodeConfig) -> Iterator[dict]:
    """flat_map fn: a listed video (VideoFile fields) -> its 'clip' rows, or ends with one 'error' row."""
    video = VideoFile(uri=row["uri"], size_bytes=int(row["size_bytes"]), version_tag=row["version_tag"], video_id=row["video_id"])
    info: VideoInfo | None = None
    try:
        with local_copy(video, config.storage_options) as path:
            reader = open_reader(path, video, num_threads=config.num_threads)
            info = probe(reader)
            clips = plan_clips(info.n_frames, config.frames_per_clip, config.sample_interval)
            for clip_index, indices in enumerate(clips):
                frames, timestamps = read_clip(reader, indices)
                yield clip_row(video, info, len(clips), clip_index, indices, timestamps, frames)
    except VideoError as error:
        log.warning("%s: %s (%s)", video.uri, error.kind, error)
        yield error_row(video, info, error.kind, str(error))
    except Exception as error:  # anything else is still one video's failure, never the job's
        log.exception("%s: unexpected decode failure", video.uri)
        yield error_row(video, info, "decode_error", f"{type(error).__name__}: {error}")


@contextlib.contextmanager
def local_copy(video: VideoFile, storage_options: dict) -> Iterator[str]:
    """A local path for the video: itself when local, else a temporary download removed afterwards."""
    if "://" not in video.uri:
        if not os.path.exists(video.uri):
            raise VideoError("read_error", f"file not found: {video.uri}")
        yield video.uri
        return
    fs, remote = filesystem_for(video.uri, storage_options)
    suffix = os.path.splitext(remote)[1]
    with tempfile.TemporaryDirectory(prefix="lavida-decode-") as folder:
        path = os.path.join(folder, "video" + suffix)
        try:
            fs.get_file(remote, path)
        except (OSError, FileNotFoundError) as error:
            raise VideoError("read_error", f"cannot read {video.uri}: {error}") from error
        yield path


def open_reader(path: str, video: VideoFile, *, num_threads: int) -> decord.VideoReader:
    if os.path.isdir(path):  # a folder of numbered images is one video (jobs/frame_sequences.py)
        sequence = FrameSequence.open(path)
        if len(sequence) == 0:
            raise VideoError("no_frames", "the folder holds no image frames")
        return sequence
    if os.path.getsize(path) == 0:
        raise VideoError("empty", "the file is empty (0 bytes)")
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except (decord.DECORDError, RuntimeError) as error:
        kind, message = diagnose(path, str(error))
        raise VideoError(kind, message) from error
    if len(reader) == 0:
        raise VideoError("no_frames", "the video stream has no frames")
    return reader


def probe(reader: decord.VideoReader) -> VideoInfo:
    n_frames = len(reader)
    last = reader.get_frame_timestamp([n_frames - 1])  # [1, 2]: start, end in seconds
    return VideoInfo(n_frames=n_frames, fps=float(reader.get_avg_fps()), duration_s=round(float(last[0, 1]), 6))


def read_clip(reader: decord.VideoReader, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip's frames uint8 [T, H, W, 3] and their start timestamps float64 [T] from the decoder."""
    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()  # [T, H, W, 3]
        starts = reader.get_frame_timestamp(indices.tolist())[:, 0]  # [T] float32 seconds
        timestamps = np.round(starts.astype(np.float64), 6)  # [T], float32 noise removed
    except (decord.DECORDError, RuntimeError, IndexError) as error:
        # e.g. decord 0.6 fails on some frame widths (48 px) with "DECORDArrayCopyFromTo: The size must exactly match"
        raise VideoError("decode_error", f"frames {indices[0]}..{indices[-1]} cannot be decoded: {first_line(error)}") from error
    return frames, timestamps


def diagnose(path: str, decord_message: str) -> tuple[str, str]:
    """Why decord could not open `path`: (error kind, message)."""
    signature = container_signature(path)
    try:
        container = av.open(path)
    except av.FFmpegError as error:
        if signature:
            return "truncated", f"a {signature} file that cannot be parsed (cut short?): {error}"
        return "not_a_video", f"not a video file: {error}"
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            return "not_a_video", f"no video stream (streams: {', '.join(kinds)})"
        stream = container.streams.video[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        if DECODER_NOT_FOUND.search(decord_message):
            return "unsupported_codec", f"the decoder (decord's FFmpeg) cannot decode this codec ({codec})"
        try:
            has_frame = next(container.decode(stream), None) is not None
        except av.FFmpegError as error:
            return "truncated", f"{codec} video that cannot be decoded: {error}"
    if not has_frame:
        return "no_frames", f"the {codec} video stream has no frames"
    return "decode_error", first_line(decord_message)


def container_signature(path: str) -> str | None:
    """The container family whose signature the file starts with, or None."""
    with open(path, "rb") as file:
        head = file.read(16)
    for name, (offset, magic) in CONTAINER_SIGNATURES.items():
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def first_line(error: object) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0][:500] if lines else type(error).__name__


def clip_row(
    video: VideoFile,
    info: VideoInfo,
    n_clips: int,
    clip_index: int,
    indices: np.ndarray,
    timestamps: np.ndarray,
    frames: np.ndarray,
) -> dict:
    return {
        **_video_fields(video, info, status="ok", error=""),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
        "row_kind": "clip",
        "n_clips": n_clips,
        "clip_index": clip_index,
        "frame_indices": indices.astype(np.int64),  # [T]
        "timestamps": timestamps,  # [T]
        "frames": frames,  # [T, H, W, 3]
    }


def error_row(video: VideoFile, info: VideoInfo | None, kind: str, message: str) -> dict:
    return {
        **_video_fields(video, info, status=kind, error=message),
        "height": -1,
        "width": -1,
        "row_kind": "error",
        "n_clips": 0,
        "clip_index": -1,
        "frame_indices": np.zeros(0, dtype=np.int64),
        "timestamps": np.zeros(0, dtype=np.float64),
        "frames": np.zeros((0, 1, 1, 3), dtype=np.uint8),
    }


def _video_fields(video: VideoFile, info: VideoInfo | None, *, status: str, error: str) -> dict:
    """Fields every row carries. No None values: a column's type must be the same in every block
    (unknown numbers are -1 / NaN, no error is ''), the writer turns them into nulls."""
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
