"""Frame-folder videos: a local folder of numbered images (001.tif, 002.tif, … or 000.jpg, …) is one video.

Benchmarks such as UCSD Ped2 and ShanghaiTech publish their test videos this way. The video reader
(jobs/video/reader.py, for the scan, the report and `lavida detect`) opens such a folder with
`FrameSequence` instead of decord; it offers the part of decord's VideoReader that the reader uses
(`len`, `get_avg_fps`, `get_frame_timestamp`, `get_batch(...).asnumpy()`), so a folder goes through
the same Ray Data path as a video file.

- Frames are the folder's image files (IMAGE_EXTENSIONS, hidden files skipped) in the order of the
  number in their name (the last group of digits; then the name), frame_index 0, 1, 2, …
- An image folder has no clock: frame i is shown from i / fps to (i + 1) / fps, with fps =
  FRAME_FOLDER_FPS (the timestamps are index / fps, not decoder times as for video files).
- Every image is read as 8-bit RGB (grayscale .tif/.bmp are expanded to three equal channels).
- The listing stage fingerprints a folder by its images: size = the sum of their sizes, version =
  the latest modification time among them (`folder_info`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import fsspec
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = frozenset({".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp"})
FRAME_FOLDER_FPS = 25.0  # an image sequence has no frame rate of its own
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def is_image(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def frame_order(name: str) -> tuple[int, str]:
    """Sort key of an image file: the last number in its name (001.tif -> 1), then the name."""
    base = os.path.splitext(name.rsplit("/", 1)[-1])[0]
    found = _LAST_NUMBER.search(base)
    return (int(found.group(1)) if found else -1, base)


def frame_files(folder: str) -> list[str]:
    """The image files of a local folder, in frame order."""
    names = [name for name in os.listdir(folder) if is_image(name) and os.path.isfile(os.path.join(folder, name))]
    return [os.path.join(folder, name) for name in sorted(names, key=frame_order)]


def read_image(path: str) -> np.ndarray:
    """One image as uint8 RGB [H, W, 3]."""
    with Image.open(path) as image:
        if image.mode in ("I;16", "I;16B", "I"):  # 16/32-bit grayscale: scale to 8 bits
            values = np.asarray(image, dtype=np.float64)
            scaled = (255 * values / max(float(values.max()), 1.0)).astype(np.uint8)
            return np.repeat(scaled[:, :, None], 3, axis=2)
        return np.asarray(image.convert("RGB"))


class _Batch:
    """decord's NDArray stand-in: `.asnumpy()`."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames = frames

    def asnumpy(self) -> np.ndarray:
        return self._frames


class FrameSequence:
    """A folder of numbered images read like a decord VideoReader (the subset jobs/video/reader.py uses)."""

    def __init__(self, paths: Sequence[str], *, fps: float = FRAME_FOLDER_FPS) -> None:
        self.paths = list(paths)
        self.fps = fps

    @classmethod
    def open(cls, folder: str, *, fps: float = FRAME_FOLDER_FPS) -> FrameSequence:
        return cls(frame_files(folder), fps=fps)

    def __len__(self) -> int:
        return len(self.paths)

    def get_avg_fps(self) -> float:
        return self.fps

    def get_key_indices(self) -> list[int]:
        """Every image is a keyframe."""
        return list(range(len(self.paths)))

    def get_frame_timestamp(self, indices: Sequence[int]) -> np.ndarray:
        """[N, 2] float64: (start, end) seconds of each frame."""
        starts = np.asarray(indices, dtype=np.float64) / self.fps  # [N]
        return np.stack([starts, starts + 1.0 / self.fps], axis=1)

    def get_batch(self, indices: Sequence[int]) -> _Batch:
        """Frames uint8 [N, H, W, 3]; all images of one video must have the same size."""
        frames = [read_image(self.paths[i]) for i in indices]
        sizes = {frame.shape for frame in frames}
        if len(sizes) > 1:
            raise ValueError(f"images of different sizes in one frame folder: {sorted(sizes)}")
        return _Batch(np.stack(frames) if frames else np.zeros((0, 1, 1, 3), dtype=np.uint8))


def folder_info(fs: fsspec.AbstractFileSystem, path: str) -> dict:
    """A listing entry for a folder of images: size = their total size, mtime = the latest of theirs."""
    infos = [info for info in fs.ls(path, detail=True) if info["type"] == "file" and is_image(info["name"])]
    mtimes = [float(info["mtime"]) for info in infos if info.get("mtime") is not None]
    if not mtimes:  # no image: the folder's own time (the decode stage reports it as 'no_frames')
        mtimes = [fs.info(path).get("mtime")]
    return {
        "name": path,
        "type": "directory",
        "size": sum(int(info.get("size") or 0) for info in infos),  # an added/removed frame changes it
        "mtime": max(mtimes),
    }
