"""A FAKE detector with LavidaDetector's interface, for tests that need known scores and masks.

The tiny LAVIDA preset has random weights: its masks are usually empty and its scores arbitrary, so
tests that check mask encoding or compare runs row by row use this instead (ScanOptions.detector_class
= "fake_detector:BrightDetector"): score = mean brightness of the frame, mask = pixels brighter than
200 (the moving square of video_factory.make_frames); clip embedding = the unit vector of the clip's
mean R, G, B and 1 (so the scan writes an `embeddings` row per clip, as with LAVIDA's image tower).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from lavida_core.detector import ClipDetection
from lavida_core.errors import InputError


class BrightDetector:
    trained = False
    embeds = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    @classmethod
    def load(cls, model: str = "tiny", *, device: str = "cpu", dtype: str | None = None, base_paths: dict | None = None) -> BrightDetector:
        return cls(model)

    def detect(self, frames: np.ndarray, anomaly_types: list[str]) -> ClipDetection:
        return self.detect_batch([frames], anomaly_types)[0]

    def detect_batch(self, clips: list[np.ndarray], anomaly_types: list[str]) -> list[ClipDetection]:
        out = []
        for frames in clips:  # [T, H, W, 3]
            scores = frames.reshape(frames.shape[0], -1).mean(axis=1) / 255.0  # [T]
            masks = frames.mean(axis=-1) > 200  # [T, H, W]
            out.append(ClipDetection(scores=scores.astype(np.float32), masks=masks))
        return out

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        vectors = np.array([[*frames.reshape(-1, 3).mean(axis=0), 1.0] for frames in clips], dtype=np.float32)  # [B, 4]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class PickyDetector(BrightDetector):
    """FAKE: fails (like a model refusing its input) on clips wider than 80 pixels."""

    def detect_batch(self, clips: list[np.ndarray], anomaly_types: list[str]) -> list[ClipDetection]:
        for frames in clips:
            if frames.shape[2] > 80:
                raise InputError(f"frames of width {frames.shape[2]} are not supported")
        return super().detect_batch(clips, anomaly_types)


class SlowBrightDetector(BrightDetector):
    """FAKE: BrightDetector that takes LAVIDA_FAKE_DELAY_S seconds (default 0.2) per clip, so a test can
    kill or overlap scans mid-run on any machine."""

    def detect_batch(self, clips: list[np.ndarray], anomaly_types: list[str]) -> list[ClipDetection]:
        time.sleep(float(os.environ.get("LAVIDA_FAKE_DELAY_S", "0.2")) * len(clips))
        return super().detect_batch(clips, anomaly_types)


class GpuShareDetector(BrightDetector):
    """FAKE: BrightDetector that records, once per actor, the GPU ids Ray assigned it: a file
    `<pid>.txt` in the folder $LAVIDA_FAKE_GPU_LOG (a test reads them to see fractional GPU actors
    share one GPU; a file, because Ray forwards actor logs to the driver late or not at all)."""

    @classmethod
    def load(cls, model: str = "tiny", *, device: str = "cpu", dtype: str | None = None, base_paths: dict | None = None) -> BrightDetector:
        import ray

        record = f"gpu_ids={ray.get_gpu_ids()} cuda_visible={os.environ.get('CUDA_VISIBLE_DEVICES')}"
        folder = os.environ["LAVIDA_FAKE_GPU_LOG"]
        with open(os.path.join(folder, f"{os.getpid()}.txt"), "w") as file:
            file.write(record)
        # Wait (up to 60 s) until a second actor has loaded too: the fake scores 4 small videos so fast
        # that one actor could finish them all before the other's constructor runs.
        deadline = time.monotonic() + 60
        while len([f for f in os.listdir(folder) if f.endswith(".txt")]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        return cls(model)


class PlacementDetector(BrightDetector):
    """FAKE: BrightDetector that records, once per actor, where Ray placed it: a file `<pid>.json` in
    $LAVIDA_FAKE_GPU_LOG with its node's id and total resources and the resources the actor holds."""

    @classmethod
    def load(cls, model: str = "tiny", *, device: str = "cpu", dtype: str | None = None, base_paths: dict | None = None) -> BrightDetector:
        import ray

        context = ray.get_runtime_context()
        node = next(n for n in ray.nodes() if n["NodeID"] == context.get_node_id())
        held = {name: amount for name, amount in context.get_assigned_resources().items() if name in ("CPU", "GPU")}
        node_resources = {name: node["Resources"].get(name, 0.0) for name in ("CPU", "GPU")}
        record = {"node_id": node["NodeID"], "node": node_resources, "held": held}
        with open(os.path.join(os.environ["LAVIDA_FAKE_GPU_LOG"], f"{os.getpid()}.json"), "w") as file:
            json.dump(record, file)
        return cls(model)
