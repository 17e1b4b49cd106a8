"""Read frames of one video: the one reader behind the scan's decode stage, the report's peak frames
and `lavida detect`.

A video is a file (any container FFmpeg reads, through decord) or a folder of numbered images
(jobs/video/frame_sequences.py), local or behind a URL (s3://…, downloaded to a temporary folder first;
filesystems from jobs/out/storage.py). decord opens and indexes a file (frame count, timestamps, the
error kinds below); its frames are decoded by jobs/video/frame_decoder.py (PyAV), in order where samples
are denser than keyframes and seeking where they are sparser, converting only the asked-for frames. A
file whose packet index disagrees with decord's is read by decord's `get_batch` instead (one seek per
sample, slower, same frames). Each frame's timestamp comes from the container (decord's index).

    with open_video(uri, storage_options) as video:     # VideoError if it cannot be opened
        video.info                                       # n_frames, fps, duration_s
        frames, timestamps = video.read(indices)         # uint8 [T, H, W, 3], float64 [T]
        scaled, _ = video.read(indices, scaler)          # ScaledClip: at a model's sizes (frame_scaling.py)

Every failure is a `VideoError` whose `kind` is the video's `videos.status`. A file decord cannot
open is diagnosed (with PyAV, which reads the same FFmpeg containers) to give the kind: 'empty',
'truncated', 'not_a_video', 'unsupported_codec', 'no_frames', 'read_error', 'decode_error'.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import av  # before decord: with decord's FFmpeg loaded first, PyAV cannot open its VP9 encoder
import decord
import numpy as np

from jobs.out.storage import filesystem_for, is_remote
from jobs.video.frame_decoder import FrameDecoder, FrameIndexMismatch
from jobs.video.frame_scaling import FrameScaler
from jobs.video.frame_sequences import FrameSequence
from lavida_core.clips import SAMPLE_KEYFRAMES, clips_of, plan_clips
from lavida_core.frames import ScaledClip

log = logging.getLogger(__name__)

decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's own messages; failures are VideoErrors

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

Reader = decord.VideoReader | FrameSequence  # FrameSequence offers the part of decord's reader used here


class VideoError(Exception):
    """A video that cannot be read; `kind` is its `videos.status`, the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class VideoMissing(VideoError):
    """No file (or frame folder) at the uri."""

    def __init__(self, uri: str) -> None:
        super().__init__("read_error", f"file not found: {uri}")


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    duration_s: float


class OpenVideo:
    """A video open for reading: `info`, and `read` of any frames (in order across calls is cheapest)."""

    def __init__(self, uri: str, path: str, reader: Reader, info: VideoInfo, *, num_threads: int = 1, keyframes_only: bool = False) -> None:
        self.uri = uri
        self.path = path
        self.reader = reader
        self.info = info
        self.num_threads = num_threads
        self.keyframes_only = keyframes_only  # the decoder skips every other frame: only keyframes can be read
        self._decoder: FrameDecoder | None = None
        self._in_order = not isinstance(reader, FrameSequence)  # False once the file is found unfit for it

    @functools.cached_property
    def _keyframes(self) -> np.ndarray:
        return np.asarray(self.reader.get_key_indices(), dtype=np.int64)

    def keyframes(self) -> np.ndarray:
        """The keyframes' indices, int64 [K], increasing (every frame of a frame folder)."""
        return self._keyframes.copy()

    def plan(self, frames_per_clip: int, sample_interval: int) -> list[np.ndarray]:
        """The video's clips (lavida_core.clips): every `sample_interval`-th frame, or its keyframes
        when sample_interval is SAMPLE_KEYFRAMES."""
        if sample_interval == SAMPLE_KEYFRAMES:
            return clips_of(self.keyframes(), frames_per_clip)
        return plan_clips(self.info.n_frames, frames_per_clip, sample_interval)

    def read(self, indices: Sequence[int] | np.ndarray, scaler: FrameScaler | None = None) -> tuple[np.ndarray | ScaledClip, np.ndarray]:
        """The frames uint8 [T, H, W, 3] at `indices` and their start timestamps float64 [T]; with a
        `scaler`, the frames as a ScaledClip at a model's sizes (jobs/video/frame_scaling.py)."""
        indices = [int(i) for i in indices]
        if self.keyframes_only and not set(indices) <= set(self._keyframes.tolist()):
            others = sorted(set(indices) - set(self._keyframes.tolist()))[:5]
            raise ValueError(f"{self.uri}: frames {others} are not keyframes, and this video was opened to read keyframes only")
        if indices and max(indices) >= self.info.n_frames:
            raise VideoError("decode_error", f"{self.uri} has {self.info.n_frames} frames now, not {max(indices) + 1}: was it replaced?")
        try:
            frames = self._read_in_order(indices, scaler) if self._in_order else None
            if frames is None:
                frames = self.reader.get_batch(indices).asnumpy()  # [T, H, W, 3]
                frames = frames if scaler is None else scaler.scale_rgb(frames)
            starts = self.reader.get_frame_timestamp(indices)[:, 0]  # [T] float32 seconds
        except (decord.DECORDError, RuntimeError, IndexError, ValueError) as error:
            # e.g. decord 0.6 fails on some frame widths (48 px) with "DECORDArrayCopyFromTo: The size must exactly match"
            raise VideoError("decode_error", f"frames {indices[0]}..{indices[-1]} cannot be decoded: {first_line(error)}") from error
        return frames, np.round(starts.astype(np.float64), 6)  # [T], float32 noise removed

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def _read_in_order(self, indices: list[int], scaler: FrameScaler | None) -> np.ndarray | ScaledClip | None:
        """The frames through the in-order decoder, or None (and never again for this video) when its
        index disagrees with decord's or it cannot decode them."""
        try:
            if self._decoder is None:
                self._decoder = FrameDecoder.open(self.path, num_threads=self.num_threads, keyframes_only=self.keyframes_only)
                self._check_index(self._decoder)
            if scaler is None:
                return self._decoder.read(indices)
            return scaler.assemble(self._decoder.read_converted(indices, scaler.convert))
        except (FrameIndexMismatch, av.FFmpegError, ValueError) as error:
            log.info("%s: reading frames with decord's get_batch (%s)", self.uri, first_line(error))
            self._in_order = False
            self.close()
            return None

    def _check_index(self, decoder: FrameDecoder) -> None:
        """Frame k of the in-order decoder is frame k of decord's index (same count, same start times,
        and, when only keyframes are read, the same keyframes)."""
        if len(decoder.pts) != self.info.n_frames:
            raise FrameIndexMismatch(f"{len(decoder.pts)} packets, {self.info.n_frames} frames in decord's index")
        starts = self.reader.get_frame_timestamp(range(self.info.n_frames))[:, 0].astype(np.float64)  # [N]
        if np.abs(decoder.pts * decoder.time_base - starts).max() > 1e-3:
            raise FrameIndexMismatch("the packets' timestamps are not decord's")
        if self.keyframes_only and not np.array_equal(decoder.keyframes, self._keyframes):
            raise FrameIndexMismatch("the packets' keyframes are not decord's")  # elsewhere they only steer the seeks


@contextlib.contextmanager
def open_video(uri: str, storage_options: dict | None = None, *, num_threads: int = 1, keyframes_only: bool = False) -> Iterator[OpenVideo]:
    """The video at `uri`, open for reading while the context lasts (a remote one is downloaded first).
    keyframes_only: only keyframes will be read, and the decoder skips every other frame."""
    with local_copy(uri, storage_options or {}) as path:
        reader = open_reader(path, num_threads=num_threads)
        video = OpenVideo(uri, path, reader, probe(reader), num_threads=num_threads, keyframes_only=keyframes_only)
        try:
            yield video
        finally:
            video.close()


@contextlib.contextmanager
def local_copy(uri: str, storage_options: dict) -> Iterator[str]:
    """A local path for the video: itself when local, else a temporary download removed afterwards."""
    fs, path = filesystem_for(uri, storage_options)
    if not is_remote(uri):
        if not os.path.exists(path):
            raise VideoMissing(uri)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="lavida-video-") as folder:
        local = os.path.join(folder, "video" + os.path.splitext(path)[1])
        try:
            if fs.isdir(path):  # a frame folder
                fs.get(path.rstrip("/") + "/", local, recursive=True)
            else:
                fs.get_file(path, local)
        except FileNotFoundError:
            raise VideoMissing(uri) from None
        except OSError as error:
            raise VideoError("read_error", f"cannot read {uri}: {error}") from error
        yield local


def open_reader(path: str, *, num_threads: int = 1) -> Reader:
    if os.path.isdir(path):  # a folder of numbered images is one video (jobs/video/frame_sequences.py)
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


def probe(reader: Reader) -> VideoInfo:
    n_frames = len(reader)
    last = reader.get_frame_timestamp([n_frames - 1])  # [1, 2]: start, end in seconds
    return VideoInfo(n_frames=n_frames, fps=float(reader.get_avg_fps()), duration_s=round(float(last[0, 1]), 6))


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
