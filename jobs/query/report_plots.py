"""The report's pictures: a video's score timeline, and a frame with its anomaly mask overlaid.

matplotlib's object API on the Agg canvas (no pyplot state), so plots can be drawn from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from lavida_core.rle import decode_rle

EVENT_COLOR = "#ff7f0e"  # shaded event spans
THRESHOLD_COLOR = "#d62728"  # the min_score line
SCORE_COLOR = "#1f77b4"
MASK_RGB = np.array([255, 0, 0], dtype=np.float32)  # overlay colour
MASK_ALPHA = 0.5
EDGE_INSIDE = np.array([255, 255, 255], dtype=np.float32)  # the mask's outline: white on its inner edge,
EDGE_OUTSIDE = np.array([0, 0, 0], dtype=np.float32)  # black just outside it


def timeline_png(
    path: Path,
    *,
    times: np.ndarray,  # float64 [N] sampled frames' timestamps, ascending
    scores: np.ndarray,  # float32 [N]
    spans: Sequence[tuple[float, float]],  # events' (start_s, end_s)
    threshold: float,
    title: str,
    duration: float | None = None,  # the video's length: nothing is drawn past it
) -> None:
    """Score against time, each sample held until the next (as events count it), events shaded."""
    figure = Figure(figsize=(10, 2.6), dpi=100)  # 1000 x 260 px
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for start, end in spans:
        axes.axvspan(start, max(end, start + 1e-3), color=EVENT_COLOR, alpha=0.35, lw=0)
    if len(times):
        # the last sample holds for the step before it, as in the events' definition
        end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.0)
        if duration is not None and duration == duration:  # ... but never past the video's end (NaN: unknown)
            end = min(end, max(duration, times[-1]))
        held_times, held_scores = np.append(times, end), np.append(scores, scores[-1])  # [N + 1]
        axes.step(held_times, held_scores, where="post", color=SCORE_COLOR, lw=1.2, label="frame score")
        axes.set_xlim(times[0], max(end, times[0] + 1e-3))
    axes.axhline(threshold, color=THRESHOLD_COLOR, ls="--", lw=1.0, label=f"min score {threshold:g}")
    axes.set_ylim(0, 1)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("score")
    axes.set_title(title, fontsize=9, loc="left")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def overlay(frame: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The frame uint8 [H, W, 3] with the mask bool [H, W] blended in red and outlined white inside,
    black outside, so that its edge shows on any colour (a red mask on a red object too)."""
    if mask is None:
        return frame
    out = frame.astype(np.float32)  # [H, W, 3]
    out[mask] = (1 - MASK_ALPHA) * out[mask] + MASK_ALPHA * MASK_RGB
    inner, outer = mask_edges(mask)
    out[inner], out[outer] = EDGE_INSIDE, EDGE_OUTSIDE
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def mask_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask pixels next to a non-mask pixel, non-mask pixels next to a mask pixel), 4-neighbourhood, bool [H, W]."""
    padded = np.pad(mask, 1)  # [H + 2, W + 2]
    neighbours = [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]  # up, down, left, right
    inner = mask & ~np.logical_and.reduce(neighbours)
    outer = ~mask & np.logical_or.reduce(neighbours)
    return inner, outer


def mask_for_frame(mask_rle: dict | None, height: int, width: int) -> np.ndarray | None:
    """The stored mask at the frame's size (nearest resize if it was stored at another size)."""
    if mask_rle is None:
        return None
    mask = decode_rle(mask_rle)  # [h, w] bool
    if mask.shape != (height, width):
        rows = np.arange(height) * mask.shape[0] // height
        cols = np.arange(width) * mask.shape[1] // width
        mask = mask[rows][:, cols]
    return mask


def overlay_png(path: Path, frame: np.ndarray, mask_rle: dict | None) -> None:
    """Write the peak frame uint8 [H, W, 3] with its mask overlaid, at the frame's own resolution."""
    mask = mask_for_frame(mask_rle, frame.shape[0], frame.shape[1])
    Image.fromarray(overlay(frame, mask)).save(path)
