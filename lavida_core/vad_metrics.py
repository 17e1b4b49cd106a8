"""Video anomaly detection metrics, as the paper's evaluation computes them. Pure (numpy, sklearn).

Protocol (the reference's `VideoResultSummary`, see /work/shared/design.md, Evaluation):

1. Scores to frames. The model scores every `sample_interval`-th frame; each sampled frame's score
   stands for itself and the frames after it up to the next sampled frame, and the last one's score
   is repeated up to the video's end (`scores_to_frames`). With the scan's sampling (0, s, 2s, …)
   that is the reference's `repeat_interleave(scores, sample_interval)`, cut to the video's length.
2. Frame level, micro-averaged: the frame scores and 0/1 labels of ALL test videos are concatenated,
   a 0 and a 1 are appended to both (the "end points": the curve always has both classes), and
   sklearn's `roc_auc_score` (AUC) or `average_precision_score` (AP, XD-Violence) is taken once.
3. Per video: the same score (with end points) per video, then the mean: over all videos as the
   reference does, or (`skip_single_class`) without the videos whose own labels have a single
   class — with the end points appended their AUC is a statement about the two appended frames —
   counted in `VideoMean.n_skipped`.
4. Pixel level: every predicted map is resized (nearest) to its ground-truth mask's size and all
   pixels of all frames are pooled into one ROC AUC, without end points (`PixelAuc`). The
   reference's own maps and grid: `reference_pixel_logits`, `reference_pixel_truth` (158 x 238). Pooling is
   exact and streaming: the maps are reduced to (value -> positive, negative counts) histograms, so
   millions of pixels never sit in one array; the AUC from counts equals sklearn's on the pooled
   pixels (ties count one half).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from lavida_core.errors import InputError

METRICS = {"auc": roc_auc_score, "ap": average_precision_score}
PENDING_VALUES = 1 << 22  # chunk histogram entries PixelAuc collects before merging them


def scores_to_frames(sampled_indices: np.ndarray, sampled_scores: np.ndarray, n_frames: int) -> np.ndarray:
    """Scores of sampled frames -> a score for each of the video's n_frames frames, float64 [n_frames].

    Frame f gets the score of the last sampled frame at or before f (frames before the first sample,
    never the case with the scan's sampling, get the first sample's score).
    """
    indices = np.asarray(sampled_indices, dtype=np.int64)  # [K]
    scores = np.asarray(sampled_scores, dtype=np.float64)  # [K]
    if indices.shape != scores.shape or indices.ndim != 1:
        raise InputError(f"sampled indices {indices.shape} and scores {scores.shape} must be two [K] arrays")
    if n_frames < 0:
        raise InputError(f"n_frames must be >= 0, got {n_frames}")
    if n_frames == 0:
        return np.zeros(0, dtype=np.float64)
    if len(indices) == 0:
        raise InputError("a video with frames but no scored frame")
    order = np.argsort(indices, kind="stable")
    indices, scores = indices[order], scores[order]
    # 1. for every frame, the position of the last sampled index <= the frame
    owner = np.searchsorted(indices, np.arange(n_frames), side="right") - 1  # [n_frames]
    # 2. frames before the first sample take the first score
    return scores[np.clip(owner, 0, None)]


def with_end_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) with a 0 prepended and a 1 appended to both, as the reference does."""
    labels = np.concatenate(([0], np.asarray(labels, dtype=np.int64), [1]))
    scores = np.concatenate(([0.0], np.asarray(scores, dtype=np.float64), [1.0]))
    return labels, scores


def extended_score(labels: np.ndarray, scores: np.ndarray, metric: str = "auc") -> float:
    """The reference's `_compute_extended_score`: `metric` ('auc' | 'ap') with the 0/1 end points."""
    if metric not in METRICS:
        raise InputError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    labels, scores = np.asarray(labels), np.asarray(scores)
    if labels.shape != scores.shape:
        raise InputError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    extended_labels, extended_scores = with_end_points(labels, scores)
    return float(METRICS[metric](extended_labels, extended_scores))


def micro_score(videos: Sequence[tuple[np.ndarray, np.ndarray]], metric: str = "auc") -> float:
    """Frame-level score over all frames of all (labels [n], scores [n]) videos, end points appended once."""
    if not videos:
        raise InputError("no videos to score")
    labels = np.concatenate([np.asarray(video_labels).reshape(-1) for video_labels, _ in videos])
    scores = np.concatenate([np.asarray(s).reshape(-1) for _, s in videos])
    return extended_score(labels, scores, metric)


@dataclass(frozen=True)
class VideoMean:
    mean: float | None  # None when every video was skipped
    n_used: int
    n_skipped: int  # videos whose labels have a single class


def per_video_mean(videos: Sequence[tuple[np.ndarray, np.ndarray]], metric: str = "auc", *, skip_single_class: bool = True) -> VideoMean:
    """Mean over videos of each video's score with end points. skip_single_class: leave out videos
    whose own labels have one class (the reference keeps them: the end points make them defined)."""
    kept = [(labels, scores) for labels, scores in videos if not skip_single_class or len(np.unique(np.asarray(labels))) == 2]
    values = [extended_score(labels, scores, metric) for labels, scores in kept]
    return VideoMean(mean=float(np.mean(values)) if values else None, n_used=len(values), n_skipped=len(videos) - len(values))


def logits_from_scores(scores: np.ndarray) -> np.ndarray:
    """Sigmoid scores -> the logits they came from, float64 (log p - log(1 - p)). A score that
    saturated to exactly 0 or 1 (float32 does at |logit| > ~17) maps to -/+SATURATED_LOGIT."""
    p = np.asarray(scores, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(p) - np.log1p(-p)
    return np.clip(logits, -SATURATED_LOGIT, SATURATED_LOGIT)


SATURATED_LOGIT = 1e4  # stands for +-inf: above every finite logit a float32 sigmoid can be inverted from


def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """int64 [n_out]: the source of each output row under torch's 'nearest' (floor(dst * scale) with
    the scale n_in / n_out in float32, as torch's kernel computes it)."""
    if n_in == n_out:
        return np.arange(n_out, dtype=np.int64)
    scale = np.float32(n_in) / np.float32(n_out)
    index = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, n_in - 1)


def nearest_resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps [N, h, w] -> [N, H, W] by nearest neighbour (torch's 'nearest': source = floor(dst * h / H))."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise InputError(f"maps must be [N, h, w], got shape {maps.shape}")
    rows = nearest_index(maps.shape[1], size[0])  # [H]
    cols = nearest_index(maps.shape[2], size[1])  # [W]
    return maps[:, rows[:, None], cols[None, :]]  # [N, H, W]


# The reference's pixel protocol (train_acc.py `validate` with eval_pixel): the model's mask logits
# are upsampled bilinearly to SAM2's input size (REFERENCE_IMAGE_SIZE square; frames without an
# object hold NO_OBJECT_LOGIT everywhere), the ground truth is resized (nearest) to that size by the
# input transform, and then both are resized (nearest) to REFERENCE_PIXEL_SIZE and pooled.
REFERENCE_IMAGE_SIZE = 1024
REFERENCE_PIXEL_SIZE = (158, 238)
NO_OBJECT_LOGIT = -1024.0


def reference_pixel_truth(masks: np.ndarray, size: tuple[int, int] = REFERENCE_PIXEL_SIZE) -> np.ndarray:
    """Ground truth [N, H, W] -> [N, *size]: nearest to the square input size, then nearest to `size`."""
    masks = np.asarray(masks)
    rows = nearest_index(masks.shape[1], REFERENCE_IMAGE_SIZE)[nearest_index(REFERENCE_IMAGE_SIZE, size[0])]  # [size[0]]
    cols = nearest_index(masks.shape[2], REFERENCE_IMAGE_SIZE)[nearest_index(REFERENCE_IMAGE_SIZE, size[1])]  # [size[1]]
    return masks[:, rows[:, None], cols[None, :]]


def reference_pixel_logits(mask_logits: np.ndarray, size: tuple[int, int] = REFERENCE_PIXEL_SIZE) -> np.ndarray:
    """The model's mask logits [N, h, w] -> the reference's pixel maps float32 [N, *size]: the values
    torch's bilinear upsampling to REFERENCE_IMAGE_SIZE (align_corners=False) has at the pixels the
    nearest resize to `size` then picks (only those are computed, not the 1024 x 1024 maps)."""
    logits = np.asarray(mask_logits, dtype=np.float32)
    if logits.ndim != 3:
        raise InputError(f"mask logits must be [N, h, w], got shape {logits.shape}")
    r0, r1, wr = _bilinear_taps(logits.shape[1], nearest_index(REFERENCE_IMAGE_SIZE, size[0]))  # [H] each
    c0, c1, wc = _bilinear_taps(logits.shape[2], nearest_index(REFERENCE_IMAGE_SIZE, size[1]))  # [W] each
    top = logits[:, r0[:, None], c0[None, :]] * (1 - wc) + logits[:, r0[:, None], c1[None, :]] * wc  # [N, H, W]
    bottom = logits[:, r1[:, None], c0[None, :]] * (1 - wc) + logits[:, r1[:, None], c1[None, :]] * wc
    return ((1 - wr[:, None]) * top + wr[:, None] * bottom).astype(np.float32)


def _bilinear_taps(n_in: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For output positions `targets` of a bilinear resize n_in -> REFERENCE_IMAGE_SIZE (torch,
    align_corners=False): (lower source index, upper source index, weight of the upper)."""
    scale = np.float32(n_in) / np.float32(REFERENCE_IMAGE_SIZE)
    source = np.maximum(scale * (targets.astype(np.float32) + np.float32(0.5)) - np.float32(0.5), np.float32(0))  # [n]
    lower = source.astype(np.int64)
    upper = lower + (lower < n_in - 1)
    return lower, upper, (source - lower).astype(np.float32)


class PixelAuc:
    """Pooled pixel ROC AUC, accumulated frame batch by frame batch.

    pixels = PixelAuc()
    pixels.add(predicted [N, h, w] float, truth [N, H, W] 0/1)   # predicted resized to [H, W]
    pixels.value()                                               # == roc_auc_score(all truth, all predicted)
    """

    def __init__(self) -> None:
        self._values = np.zeros(0, dtype=np.float64)  # [V] distinct predicted values seen, sorted
        self._positives = np.zeros(0, dtype=np.int64)  # [V] anomalous pixels per value
        self._negatives = np.zeros(0, dtype=np.int64)  # [V] normal pixels per value
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # chunk histograms not merged yet
        self._pending_size = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        truth = np.asarray(truth)
        if truth.ndim != 3 or np.asarray(predicted).ndim != 3 or len(predicted) != len(truth):
            raise InputError(f"predicted {np.shape(predicted)} and truth {truth.shape} must be [N, h, w] and [N, H, W]")
        resized = nearest_resize(predicted, truth.shape[1:]).astype(np.float64).reshape(-1)  # [N*H*W]
        positive = truth.reshape(-1) != 0  # [N*H*W]
        values, inverse = np.unique(resized, return_inverse=True)
        positives = np.bincount(inverse, weights=positive, minlength=len(values)).astype(np.int64)
        negatives = np.bincount(inverse, minlength=len(values)) - positives
        self._merge(values, positives, negatives)

    def _merge(self, values: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> None:
        """Adds a chunk's histogram. Chunks wait in `_pending` until they outgrow the merged
        histogram, so continuous maps (logits: nearly every pixel its own value) merge in
        amortised O(n log n) instead of re-sorting everything per chunk."""
        self._pending.append((values, positives, negatives))
        self._pending_size += len(values)
        if self._pending_size > max(len(self._values), PENDING_VALUES):
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        values = np.concatenate([v for v, _, _ in self._pending])
        positives = np.concatenate([p for _, p, _ in self._pending])
        negatives = np.concatenate([n for _, _, n in self._pending])
        self._pending, self._pending_size = [], 0
        all_values = np.concatenate([self._values, values])
        merged, inverse = np.unique(all_values, return_inverse=True)
        self._positives = np.bincount(inverse, weights=np.concatenate([self._positives, positives]), minlength=len(merged)).astype(np.int64)
        self._negatives = np.bincount(inverse, weights=np.concatenate([self._negatives, negatives]), minlength=len(merged)).astype(np.int64)
        self._values = merged

    @property
    def n_pixels(self) -> int:
        self._flush()
        return int(self._positives.sum() + self._negatives.sum())

    def value(self) -> float:
        """AUC = P(score of a random anomalous pixel > a random normal one) + half of the ties."""
        self._flush()
        n_pos, n_neg = int(self._positives.sum()), int(self._negatives.sum())
        if n_pos == 0 or n_neg == 0:
            raise InputError(f"pixel AUC needs anomalous and normal pixels, got {n_pos} and {n_neg}")
        negatives_below = np.cumsum(self._negatives) - self._negatives  # [V] normal pixels with a lower value
        wins = (self._positives * (negatives_below + 0.5 * self._negatives)).sum(dtype=np.float64)
        return float(wins / (n_pos * n_neg))


def pixel_auc(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Pooled pixel AUC over (predicted [N, h, w], truth [N, H, W]) pairs."""
    accumulator = PixelAuc()
    for predicted, truth in pairs:
        accumulator.add(predicted, truth)
    return accumulator.value()
