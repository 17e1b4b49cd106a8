"""Real encoded test videos (PyAV) and broken files, for tests and benchmarks. Shared helper.

write_video(path, codec="h264", width=64, height=48, fps=25, n_frames=50) -> path
    encodes generated frames (see `make_frames`); the container follows the file extension.
make_frames(n_frames, height, width) -> uint8 [T, H, W, 3]
    a dark background with a bright square moving left to right (frame t is known exactly).
write_empty(path), write_text(path), write_truncated(path, keep=0.5, **video_kwargs),
write_audio_only(path), write_no_frames(path)
    files that cannot be scanned, with the error kind jobs/scan/decode.py should give them.
make_archive(folder) -> dict[file name, expected status]
    a small mixed archive: several codecs/containers/sizes/fps, plus one of each bad file.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Codec:
    encoder: str  # PyAV / FFmpeg encoder name
    pix_fmt: str
    options: dict[str, str]


# codec name -> how to encode it; the container comes from the file extension.
CODECS: dict[str, Codec] = {
    "h264": Codec("libx264", "yuv420p", {"preset": "ultrafast", "crf": "23"}),
    "mpeg4": Codec("mpeg4", "yuv420p", {"qscale": "3"}),
    "mjpeg": Codec("mjpeg", "yuvj420p", {}),
    "vp9": Codec("libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
    "mpeg2": Codec("mpeg2video", "yuv420p", {}),
    "av1": Codec("libsvtav1", "yuv420p", {"preset": "12"}),
    "hevc": Codec("libx265", "yuv420p", {"preset": "ultrafast", "x265-params": "log-level=none"}),
}


def make_frames(n_frames: int, height: int, width: int) -> np.ndarray:
    """Frames uint8 [T, H, W, 3]: background 40, a 255 square (side H/3) moving left to right."""
    frames = np.full((n_frames, height, width, 3), 40, dtype=np.uint8)
    side = max(2, height // 3)
    top = (height - side) // 2
    for t in range(n_frames):
        left = int((width - side) * t / max(1, n_frames - 1))
        frames[t, top : top + side, left : left + side] = 255
    return frames


def write_video(
    path: str | Path,
    *,
    codec: str = "h264",
    width: int = 64,
    height: int = 48,
    fps: int | Fraction = 25,
    n_frames: int = 50,
) -> Path:
    """Encode `make_frames(n_frames, height, width)` at `fps` with `codec` into `path`."""
    path = Path(path)
    spec = CODECS[codec]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(spec.encoder, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, spec.pix_fmt
        stream.options = dict(spec.options)
        for array in make_frames(n_frames, height, width):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_empty(path: str | Path) -> Path:
    """Zero bytes (status 'empty')."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_text(path: str | Path) -> Path:
    """A text file with a video extension (status 'not_a_video')."""
    path = Path(path)
    path.write_text("this is not a video, just some text saved with a video extension\n" * 20)
    return path


def write_truncated(path: str | Path, keep: float = 0.5, **video_kwargs) -> Path:
    """A real video cut to its first `keep` fraction of bytes (status 'truncated')."""
    path = Path(path)
    write_video(path, **video_kwargs)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """A valid media file without a video stream, e.g. .m4a/.mp4 (status 'not_a_video')."""
    path = Path(path)
    rate = 8000
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = (np.sin(np.arange(int(rate * seconds)) / 10.0) * 0.3).astype(np.float32)[None]  # [1, N]
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_no_frames(path: str | Path, *, codec: str = "mpeg4") -> Path:
    """A container with a video stream but not one frame, e.g. .avi (status 'no_frames')."""
    path = Path(path)
    spec = CODECS[codec]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(spec.encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, spec.pix_fmt
        container.start_encoding()
    return path


# file name -> (writer kwargs) for the good part of `make_archive`
GOOD_VIDEOS: dict[str, dict] = {
    "cam1_h264.mp4": dict(codec="h264", width=64, height=48, fps=25, n_frames=50),
    "cam2_mpeg4.avi": dict(codec="mpeg4", width=96, height=64, fps=10, n_frames=27),
    "cam3_mjpeg.mkv": dict(codec="mjpeg", width=80, height=60, fps=15, n_frames=20),
    "cam4_vp9.webm": dict(codec="vp9", width=64, height=64, fps=30, n_frames=40),
}


def make_archive(folder: str | Path, *, bad: bool = True) -> dict[str, str]:
    """Write a small mixed archive into `folder`; returns file name -> expected `videos.status`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, kwargs in GOOD_VIDEOS.items():
        write_video(folder / name, **kwargs)
        expected[name] = "ok"
    if bad:
        write_empty(folder / "bad_empty.mp4")
        write_text(folder / "bad_text.mp4")
        write_truncated(folder / "bad_truncated.mp4", keep=0.5, codec="h264", n_frames=30)
        write_audio_only(folder / "bad_audio_only.mp4")
        write_no_frames(folder / "bad_no_frames.avi")
        expected.update(
            {
                "bad_empty.mp4": "empty",
                "bad_text.mp4": "not_a_video",
                "bad_truncated.mp4": "truncated",
                "bad_audio_only.mp4": "not_a_video",
                "bad_no_frames.avi": "no_frames",
            }
        )
    return expected


def write_gop_video(
    path: str | Path,
    *,
    keyframes: list[int],
    n_frames: int,
    pts_ms: list[int] | None = None,
    b_frames: int = 2,
    width: int = 64,
    height: int = 48,
) -> Path:
    """H.264 with keyframes exactly at `keyframes` (irregular GOPs), B-frames (decode order is not
    presentation order), and frame k shown at `pts_ms[k]` milliseconds (variable rate) or k / 25 s."""
    path = Path(path)
    wanted = set(keyframes)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        only_forced_keyframes = "keyint=100000:min-keyint=100000:scenecut=0"
        stream.options = {"preset": "veryfast", "x264-params": f"{only_forced_keyframes}:bframes={b_frames}:log-level=none"}
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for k, array in enumerate(make_frames(n_frames, height, width)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pict_type = av.video.frame.PictureType.I if k in wanted else av.video.frame.PictureType.NONE
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[k], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
