"""Decode the asked-for frames of one video file in presentation order, seeking only where a keyframe
lies between the decoder's position and the next frame asked for (PyAV, FFmpeg's decoders).

Decoding a frame is the cost that cannot be skipped; seeking back to a keyframe for every sample (as
decord's `get_batch` does) decodes the frames from that keyframe again for each sample, and converting
every decoded frame to RGB (decord's sequential reading) costs more than decoding it. Here a frame is
converted to RGB only when it is asked for, and the decoder seeks forward to the keyframe at or before
the next asked-for frame only when that keyframe is past its position. So dense samples (interval 16
on a 2 s GOP) decode in order, sparse ones (interval 128) decode one GOP prefix each, and the choice is
made per sample from the stream's keyframe index (the demuxed packets), whatever the file's GOPs.

    decoder = FrameDecoder.open(path, num_threads=1)    # demuxes the packets once: the index
    decoder.pts                                          # int64 [N]: frame k's presentation timestamp
    frames = decoder.read([0, 16, 32])                   # uint8 [T, H, W, 3], frames in the order asked
    decoder.close()

Frame k is the k-th frame in presentation order (the packets' timestamps sorted), as in decord's index;
jobs/video/reader.py checks the two indexes agree before it uses this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import av
import numpy as np

# Seek only when it skips at least this many frames: a seek flushes the decoder (and its frame threads),
# which costs about what decoding a few frames costs.
MIN_FRAMES_SKIPPED_BY_SEEK = 8

T = TypeVar("T")


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded picture as uint8 RGB [H, W, 3] at its own size."""
    return frame.to_ndarray(format="rgb24")


class FrameIndexMismatch(Exception):
    """The decoder returned frames the packet index did not announce (a file this index cannot read)."""


class FrameDecoder:
    def __init__(
        self, container: av.container.InputContainer, pts: np.ndarray, keyframes: np.ndarray, *, keyframes_only: bool = False
    ) -> None:
        self.container = container
        self.stream = container.streams.video[0]
        self.pts = pts  # int64 [N], in the stream's time base, sorted
        self.keyframes = keyframes  # int64 [K], frame indices of the keyframes, sorted
        self.time_base = float(self.stream.time_base)
        self.keyframes_only = keyframes_only
        self._frames: Iterator[av.VideoFrame] | None = None
        self._position = -1  # index of the last frame the decoder returned
        self.seeks = 0  # how often it sought (for tests and benchmarks)

    @classmethod
    def open(cls, path: str, *, num_threads: int = 1, keyframes_only: bool = False) -> FrameDecoder:
        """keyframes_only: FFmpeg skips every frame but the keyframes (`skip_frame=NONKEY`); only
        keyframes can be read, each costing one intra-frame decode."""
        container = av.open(path)
        try:
            stream = container.streams.video[0]
            packets = [(packet.pts, packet.is_keyframe) for packet in container.demux(stream) if packet.size]
            if any(pts is None for pts, _ in packets):
                raise FrameIndexMismatch("packets without a presentation timestamp")
            order = sorted(range(len(packets)), key=lambda i: packets[i][0])
            pts = np.asarray([packets[i][0] for i in order], dtype=np.int64)  # [N]
            keyframes = np.asarray([k for k, i in enumerate(order) if packets[i][1]], dtype=np.int64)  # [K]
            if len(keyframes) == 0 or len(np.unique(pts)) != len(pts):
                raise FrameIndexMismatch("no keyframe, or two frames with one timestamp")
            stream.thread_count = max(1, num_threads)
            stream.thread_type = "AUTO" if num_threads > 1 else "SLICE"
            if keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
        except BaseException:
            container.close()
            raise
        return cls(container, pts, keyframes, keyframes_only=keyframes_only)

    def close(self) -> None:
        self.container.close()

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames uint8 [T, H, W, 3] at `indices` (any order, repeats allowed), decoded in order."""
        return np.stack(self.read_converted(indices, to_rgb))

    def read_converted(self, indices: Sequence[int], convert: Callable[[av.VideoFrame], T]) -> list[T]:
        """`convert` of each frame at `indices` (any order, repeats allowed): frames decoded in order,
        each asked-for one converted once (jobs/video/frame_scaling.py converts to a model's sizes)."""
        wanted = sorted(set(int(i) for i in indices))
        converted = {index: convert(self._decode(index)) for index in wanted}
        return [converted[int(i)] for i in indices]

    def _decode(self, index: int) -> av.VideoFrame:
        keyframe = int(self.keyframes[np.searchsorted(self.keyframes, index, side="right") - 1])
        if self.keyframes_only and keyframe != index:
            raise ValueError(f"frame {index} is not a keyframe, and this decoder skips all but keyframes")
        if self._frames is None or index <= self._position or keyframe - self._position - 1 >= MIN_FRAMES_SKIPPED_BY_SEEK:
            self._seek(keyframe)
        target = int(self.pts[index])
        for frame in self._frames:
            if frame.pts is None:
                raise FrameIndexMismatch("a decoded frame without a timestamp")
            if frame.pts < target:
                continue  # decoded (it must be), never converted
            if frame.pts > target:
                raise FrameIndexMismatch(f"frame {index} (pts {target}) was not returned by the decoder")
            self._position = index
            return frame
        raise FrameIndexMismatch(f"the stream ended before frame {index}")

    def _seek(self, keyframe: int) -> None:
        self.container.seek(int(self.pts[keyframe]), backward=True, any_frame=False, stream=self.stream)
        self._frames = self.container.decode(self.stream)
        self._position = keyframe - 1  # the decoder returns the keyframe next
        self.seeks += 1
