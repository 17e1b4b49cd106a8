"""Detect stage: clips of frames -> per-frame scores and COCO-RLE masks (Ray Data actor pool).

`DetectClips` is the callable class given to `map_batches`: `__init__` loads the detector once per
actor; `__call__` takes a batch of `schemas.stage_rows.DecodedRow` columns and returns
`DetectedRow` columns: the frame columns replaced by `scores` float32 [T] and `mask_counts` (the
T COCO compressed RLE counts joined by `lavida_core.rle.join_counts`; the mask size is the frame's
`height` x `width`) and `embedding` (the clip's CLIP image embedding, float32 [P]; empty when the
detector has no image tower). Error rows pass through. A clip the model fails on becomes an error
row with status 'detect_error' (its video fails, the job goes on).
"""

from __future__ import annotations

import importlib
import logging

import numpy as np

from lavida_core.errors import InputError
from lavida_core.frames import Clip, ScaledClip
from lavida_core.rle import encode_rles, join_counts
from schemas.stage_rows import ROW_CLIP, ROW_ERROR, DecodedRow

log = logging.getLogger(__name__)

FRAME_COLUMNS = ("frames", "sam_frames", "clip_frames")  # what detection replaces


class DetectClips:
    def __init__(
        self,
        *,
        model: str,
        device: str,
        anomaly_types: list[str],
        dtype: str | None = None,
        model_base: dict[str, str] | None = None,
        detector_class: str = "lavida_core.detector:LavidaDetector",
        embed_only: bool = False,
    ) -> None:
        self.anomaly_types = list(anomaly_types)
        self.embed_only = embed_only  # `lavida index`: the clips' embeddings, no LAVIDA scores or masks
        try:
            self.detector = load_class(detector_class).load(model, device=device, dtype=dtype, base_paths=model_base)
        except InputError as error:
            # Raised from the first __call__ instead: Ray turns an actor constructor's error into an
            # ActorDiedError that keeps only its text (ray/exceptions.py), while a call's error reaches
            # the driver as itself (the scan sets DataContext.raise_original_map_exception).
            self.refused: InputError | None = error
            return
        self.refused = None
        log.info("detector %s loaded on %s (trained=%s)", self.detector.model_name, device, self.detector.trained)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.refused is not None:
            raise self.refused
        n_rows = len(batch["row_kind"])
        clip_rows = [i for i in range(n_rows) if batch["row_kind"][i] == ROW_CLIP]
        empty = np.zeros(0, dtype=np.float32)
        scores: list[np.ndarray] = [empty] * n_rows
        counts: list[str] = [""] * n_rows
        embeddings: list[np.ndarray] = [empty] * n_rows
        failures: dict[int, str] = {}
        clips = [clip_of(batch, i) for i in clip_rows]
        for i, detection in zip(clip_rows, [] if self.embed_only else self._detect(clips, failures, clip_rows)):
            if detection is None:
                continue
            scores[i] = np.asarray(detection.scores, dtype=np.float32)  # [T]
            counts[i] = join_counts(encode_rles(detection.masks))
        for i, vector in zip(clip_rows, self._embed(clips, failures, clip_rows)):
            embeddings[i] = empty if vector is None else vector  # [P]
        out = {name: batch[name] for name in DecodedRow.columns() if name not in FRAME_COLUMNS}  # + DetectedRow's own:
        out["scores"] = _object_column(scores)
        out["mask_counts"] = np.array(counts, dtype=object)
        out["model_trained"] = np.full(n_rows, bool(self.detector.trained))
        out["embedding"] = _object_column(embeddings)
        if failures:
            out["row_kind"], out["status"], out["error"] = (np.array(batch[c], dtype=object) for c in ("row_kind", "status", "error"))
            for i, message in failures.items():
                out["row_kind"][i], out["status"][i], out["error"][i] = ROW_ERROR, "detect_error", message
        return out

    def _detect(self, clips: list[np.ndarray], failures: dict[int, str], rows: list[int]) -> list:
        """detect_batch on all clips; if that raises, clip by clip so one bad clip fails one video only."""
        if not clips:
            return []
        try:
            return list(self.detector.detect_batch(clips, self.anomaly_types))
        except Exception:  # noqa: BLE001 - retried one by one below to find the failing clip
            log.warning("detect_batch failed on %d clips; retrying one by one", len(clips), exc_info=True)
        results = []
        for row, clip in zip(rows, clips):
            try:
                results.append(self.detector.detect(clip, self.anomaly_types))
            except Exception as error:  # noqa: BLE001 - becomes the video's error row
                failures[row] = f"model failed on clip of shape {shape_of(clip)}: {type(error).__name__}: {error}"
                results.append(None)
        return results

    def _embed(self, clips: list[np.ndarray], failures: dict[int, str], rows: list[int]) -> list:
        """embed_clips on all clips (None each when the detector has no image tower); clip by clip if that raises."""
        if not clips or not getattr(self.detector, "embeds", False):
            return [None] * len(clips)
        try:
            return list(self.detector.embed_clips(clips))
        except Exception:  # noqa: BLE001 - retried one by one below to find the failing clip
            log.warning("embed_clips failed on %d clips; retrying one by one", len(clips), exc_info=True)
        results = []
        for row, clip in zip(rows, clips):
            try:
                results.append(self.detector.embed_clips([clip])[0])
            except Exception as error:  # noqa: BLE001 - becomes the video's error row
                failures.setdefault(row, f"CLIP image tower failed on clip of shape {shape_of(clip)}: {type(error).__name__}: {error}")
                results.append(None)
        return results


def clip_of(batch: dict[str, np.ndarray], i: int) -> Clip:
    """Row i's clip: its frames, or (decoded with --frames-at-model-size) a ScaledClip of its arrays."""
    if len(batch["sam_frames"][i]) == 0:
        return batch["frames"][i]
    clip = batch["clip_frames"][i]
    height, width = int(batch["height"][i]), int(batch["width"][i])
    return ScaledClip(batch["frames"][i], batch["sam_frames"][i], clip if len(clip) else None, height, width)


def shape_of(clip: Clip) -> tuple[int, ...]:
    """The clip's shape at the video's size, for messages."""
    return tuple(clip.shape) if isinstance(clip, np.ndarray) else (len(clip), clip.height, clip.width, 3)


def load_class(path: str) -> type:
    """'package.module:Class' -> the class."""
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _object_column(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column
