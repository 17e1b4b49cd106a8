"""A scan profile: what scored a video (model, anomaly types, sample interval, frames per clip).

Scores from different profiles are not comparable, so OUT records each video's profile
(`videos.profile_id`, and the settings in its run's `runs` row), and a scan whose profile differs
from what OUT holds is refused (`jobs/scan/write.py`) unless it is asked to re-score (`--rescan`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from lavida_core.clips import SAMPLE_KEYFRAMES


@dataclass(frozen=True)
class ScanProfile:
    model: str
    anomaly_types: tuple[str, ...]
    sample_interval: int
    frames_per_clip: int
    # frames converted at the model's sizes by the decoder (--frames-at-model-size): pixels differ a
    # little from the model's own resize, so its scores are another profile's (the id of a profile
    # without it is what it was before the option existed)
    frames_at_model_size: bool = False

    @property
    def profile_id(self) -> str:
        fields = [self.model, list(self.anomaly_types), self.sample_interval, self.frames_per_clip]
        text = json.dumps(fields + (["frames at model size"] if self.frames_at_model_size else []))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        names = ", ".join(repr(name) for name in self.anomaly_types)
        return (
            f"model {self.model}, anomaly types [{names}], sample interval {sampling(self.sample_interval)}, "
            f"{self.frames_per_clip} frames per clip"
        )

    def differences(self, other: ScanProfile) -> str:
        """What `other` (OUT's) has that this one does not, in words."""
        said = []
        if other.model != self.model:
            said.append(f"model {other.model} (this scan: {self.model})")
        if other.anomaly_types != self.anomaly_types:
            said.append(f"anomaly types {list(other.anomaly_types)} (this scan: {list(self.anomaly_types)})")
        if other.sample_interval != self.sample_interval:
            said.append(f"sample interval {sampling(other.sample_interval)} (this scan: {sampling(self.sample_interval)})")
        if other.frames_per_clip != self.frames_per_clip:
            said.append(f"{other.frames_per_clip} frames per clip (this scan: {self.frames_per_clip})")
        if not said and other.profile_id != self.profile_id:  # all that the runs table shows is the same
            said.append(f"frames {'not ' if self.frames_at_model_size else ''}decoded at the model's sizes (--frames-at-model-size)")
        return "; ".join(said)


def sampling(sample_interval: int) -> str:
    """A run's sample interval in words: the number, or 'keyframes' (lavida_core.clips.SAMPLE_KEYFRAMES)."""
    return "keyframes" if sample_interval == SAMPLE_KEYFRAMES else str(sample_interval)
