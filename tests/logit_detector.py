"""A FAKE detector that also gives logits (ClipDetection.score_logits / .mask_logits), for the
reference protocol's pixel AUC in tests (`--detector-class logit_detector:LogitBrightDetector`).

Like fake_detector.BrightDetector (score from the frame's brightness, mask = pixels > 200), with
object-score logit = 40 x (mean brightness - 0.2) (positive on the generated anomalous frames, which
hold a bright square) and mask logits = (pixel - 200) / 10 at the frame's size, NO_OBJECT_LOGIT
everywhere on frames whose object logit is <= 0 (as the model blanks them).
"""

from __future__ import annotations

import numpy as np
from fake_detector import BrightDetector

from lavida_core.detector import ClipDetection
from lavida_core.vad_metrics import NO_OBJECT_LOGIT


class LogitBrightDetector(BrightDetector):
    def detect_batch(self, clips: list[np.ndarray], anomaly_types: list[str]) -> list[ClipDetection]:
        out = []
        for frames in clips:  # [T, H, W, 3]
            brightness = frames.reshape(frames.shape[0], -1).mean(axis=1) / 255.0  # [T]
            logits = (40 * (brightness - 0.2)).astype(np.float32)  # [T]
            mask_logits = (frames.mean(axis=-1) - 200) / 10  # [T, H, W]
            mask_logits[logits <= 0] = NO_OBJECT_LOGIT
            scores = (1 / (1 + np.exp(-logits))).astype(np.float32)
            out.append(ClipDetection(scores=scores, masks=mask_logits > 0, score_logits=logits, mask_logits=mask_logits.astype(np.float32)))
        return out
