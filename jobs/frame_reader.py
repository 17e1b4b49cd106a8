"""Read a few frames of one video by index (decord), from a local path or an fsspec URL (s3://…).

For the report's peak frames: a video that is gone or unreadable raises FrameUnavailable with a
one-line reason the page can show, instead of failing the report.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence

import decord
import fsspec
import numpy as np

decord.logging.set_level(decord.logging.QUIET)


class FrameUnavailable(Exception):
    """The frames cannot be read; the message says why (for a person reading the report)."""


@contextlib.contextmanager
def _local_path(uri: str, storage_options: dict) -> Iterator[str]:
    """A local path of the video: itself, or a temporary download of a remote one."""
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not os.path.exists(path):
            raise FrameUnavailable(f"the video is no longer at {uri}")
        yield path
        return
    fs, remote = fsspec.core.url_to_fs(uri, **storage_options)
    with tempfile.TemporaryDirectory(prefix="lavida-report-") as folder:
        path = os.path.join(folder, "video" + os.path.splitext(remote)[1])
        try:
            fs.get_file(remote, path)
        except FileNotFoundError:
            raise FrameUnavailable(f"the video is no longer at {uri}") from None
        except OSError as error:
            raise FrameUnavailable(f"cannot download {uri}: {error}") from None
        yield path


def read_frames(uri: str, indices: Sequence[int], *, storage_options: dict | None = None) -> np.ndarray:
    """Frames uint8 [N, H, W, 3] (RGB) at `indices` of the video at `uri`."""
    with _local_path(uri, storage_options or {}) as path:
        try:
            reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        except (decord.DECORDError, RuntimeError) as error:
            raise FrameUnavailable(f"cannot open {uri}: {str(error).splitlines()[0]}") from None
        if indices and max(indices) >= len(reader):
            raise FrameUnavailable(f"{uri} has {len(reader)} frames now, not {max(indices) + 1}: was it replaced?")
        try:
            return reader.get_batch(list(indices)).asnumpy()  # [N, H, W, 3]
        except (decord.DECORDError, RuntimeError) as error:
            raise FrameUnavailable(f"cannot decode frames of {uri}: {str(error).splitlines()[0]}") from None
