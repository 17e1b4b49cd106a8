"""TEMPORARY STAND-IN (owner: the model session) — the real detector replaces this file.

Interface that jobs rely on (stable):

    det = LavidaDetector.load("tiny", device="cpu")   # a preset name or a model folder
    det.trained            -> bool: False for a preset built from its config (random weights)
    det.model_name         -> str: what was loaded ("tiny", "/path/to/model")
    det.detect(frames, anomaly_types) -> ClipDetection
        frames: np.ndarray uint8 [T, H, W, 3] (RGB), anomaly_types: list[str] (non-empty)
    det.detect_batch(clips, anomaly_types) -> list[ClipDetection]   # clips: list of such arrays
    ClipDetection.scores: np.ndarray float32 [T] in 0..1
    ClipDetection.masks:  np.ndarray bool [T, H, W] at each frame's own resolution
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipDetection:
    scores: np.ndarray  # float32 [T], 0..1
    masks: np.ndarray  # bool [T, H, W]


class LavidaDetector:
    def __init__(self, model_name: str, device: str) -> None:
        self.model_name = model_name
        self.device = device
        self.trained = False

    @classmethod
    def load(cls, model: str = "tiny", *, device: str = "cpu") -> "LavidaDetector":
        return cls(model, device)

    def detect(self, frames: np.ndarray, anomaly_types: list[str]) -> ClipDetection:
        return self.detect_batch([frames], anomaly_types)[0]

    def detect_batch(self, clips: list[np.ndarray], anomaly_types: list[str]) -> list[ClipDetection]:
        out = []
        for frames in clips:
            mean = frames.reshape(frames.shape[0], -1).mean(axis=1) / 255.0
            masks = frames.mean(axis=-1) > 200
            out.append(ClipDetection(scores=mean.astype(np.float32), masks=masks))
        return out
