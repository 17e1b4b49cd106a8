"""The LAVIDA predictor: uint8 frames and anomaly names in, per-frame scores and masks out.

Interface that jobs rely on (stable):

    det = LavidaDetector.load("tiny", device="cpu", dtype=None)   # a preset, `demo` or a model folder
    det.trained            -> bool: False for a preset built from its config (random weights)
    det.model_name         -> str: what was loaded ("tiny", "/path/to/model")
    det.detect(frames, anomaly_types) -> ClipDetection
        frames: np.ndarray uint8 [T, H, W, 3] (RGB), anomaly_types: list[str] (non-empty)
    det.detect_batch(clips, anomaly_types) -> list[ClipDetection]   # clips: list of such arrays
        (or of lavida_core.frames.ScaledClip: frames decoded at the towers' sizes, masks at the video's)
    ClipDetection.scores: np.ndarray float32 [T] in 0..1
    ClipDetection.masks:  np.ndarray bool [T, H, W] at each frame's own resolution
    ClipDetection.score_logits, .mask_logits: float32 [T], [T, h, w] the raw logits (evaluation)
    det.embeds             -> bool: the model has a CLIP image tower (config `retrieval`)
    det.embed_clips(clips) -> float32 [B, P]: per clip, the mean of its frames' CLIP image
        embeddings, L2-normalised (search; lavida_core.clip_query embeds the text side)

Runs in eval mode without gradients, in `dtype` (DTYPES): bfloat16 is bf16 weights under bf16
autocast on any device (the default on CUDA), float32 the default on CPU. Several clips (of any
sizes) run as one batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lavida_core.checkpoint import LoadedLavida, build_lavida, load_lavida, parameter_count
from lavida_core.config import PRESETS, LavidaConfig, preset
from lavida_core.errors import InputError
from lavida_core.frames import Clip, clip_frames, clip_pixels, frame_size, masks_at_frame_size, validate_clip
from lavida_core.inputs import build_inputs, move_inputs
from lavida_core.model_folders import SHIPPED_MODELS, model_folder
from lavida_core.modeling.model import LavidaInputs

log = logging.getLogger(__name__)

MAX_ANOMALY_TYPES = 64
MAX_ANOMALY_TYPE_CHARS = 300


@dataclass(frozen=True)
class ClipDetection:
    scores: np.ndarray  # float32 [T], 0..1
    masks: np.ndarray  # bool [T, H, W]
    score_logits: np.ndarray | None = None  # float32 [T] object-score logits (scores = their sigmoid)
    mask_logits: np.ndarray | None = None  # float32 [T, h, w] the model's mask logits at its own grid
    #                                        (NO_OBJECT_LOGIT where no object): what the reference's pixel AUC pools


# The dtypes a detector runs in. bfloat16: weights in bf16 under bf16 autocast (the default on CUDA;
# the same path runs on CPU, which is how CI exercises it); float32: the default on CPU.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def default_dtype(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


class LavidaDetector:
    def __init__(self, loaded: LoadedLavida, *, model_name: str, device: str = "cpu", dtype: str | None = None) -> None:
        _check_device(device)
        self.model_name = model_name
        self.device = torch.device(device)
        self.trained = loaded.trained
        self.loaded = loaded
        self.dtype = _check_dtype(dtype or default_dtype(device))
        self._dtype = DTYPES[self.dtype]
        self.model = loaded.model.to(device=self.device, dtype=self._dtype).eval()
        self.config = self.model.config
        self.card = loaded.card
        if not self.trained:
            log.warning(
                "model %r has NO trained LAVIDA weights (built from its config with random weights): "
                "its scores and masks are not meaningful detections",
                model_name,
            )
        elif self.card.warning:
            log.warning("model %r: %s", model_name, self.card.summary())

    @classmethod
    def load(
        cls, model: str = "tiny", *, device: str = "cpu", dtype: str | None = None, base_paths: dict[str, str] | None = None
    ) -> LavidaDetector:
        """A preset name (random weights), a shipped model (`demo`) or a model folder written by
        `save_lavida` / `lavida train`, on `device` in `dtype` (DTYPES; default by device). `base_paths`:
        where a small model folder's base checkpoints are mounted, if not where it recorded them."""
        _check_device(device)
        dtype = _check_dtype(dtype or default_dtype(device))
        if model in PRESETS:
            config = preset(model)
            if device == "cpu":
                _check_fits_in_memory(config, model)
            return cls(build_lavida(config, device=device, dtype=DTYPES[dtype]), model_name=model, device=device, dtype=dtype)
        folder = model_folder(model)
        if folder is not None:
            bases = {part: Path(path) for part, path in (base_paths or {}).items()}
            loaded = load_lavida(folder, device=device, dtype=DTYPES[dtype], base_paths=bases)  # straight to the device
            return cls(loaded, model_name=str(model), device=device, dtype=dtype)
        named = ", ".join(sorted([*PRESETS, *SHIPPED_MODELS]))
        raise InputError(f"--model {model!r} is neither a preset or shipped model ({named}) nor a model folder")

    def detect(self, frames: np.ndarray, anomaly_types: list[str]) -> ClipDetection:
        return self.detect_batch([frames], anomaly_types)[0]

    @torch.inference_mode()
    def detect_batch(self, clips: list[Clip], anomaly_types: list[str]) -> list[ClipDetection]:
        if not isinstance(clips, (list, tuple)) or len(clips) == 0:
            raise InputError("give at least one clip")
        clips = [validate_clip(c) for c in clips]
        names = _validate_anomaly_types(anomaly_types)
        inputs = self.prepare(clips, names)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self._dtype == torch.bfloat16):
            outputs = self.model(inputs)
        logits = outputs.masks.object_score_logits.float().squeeze(1)  # [sum T]
        scores = torch.sigmoid(logits).cpu().numpy()  # in float32: a bf16 sigmoid saturates at logit ~7
        logits = logits.cpu().numpy()
        best = outputs.masks.best()
        best_logits = best.float().cpu().numpy()  # [sum T, h, w]
        results, start = [], 0
        for clip in clips:
            t, (h, w) = len(clip), frame_size(clip)
            frames = slice(start, start + t)
            start += t
            results.append(
                ClipDetection(
                    scores=scores[frames].astype(np.float32),
                    masks=masks_at_frame_size(best[frames], h, w),
                    score_logits=logits[frames],
                    mask_logits=best_logits[frames],
                )
            )
        return results

    @property
    def embeds(self) -> bool:
        return self.model.retrieval is not None

    @torch.inference_mode()
    def embed_clips(self, clips: list[Clip]) -> np.ndarray:
        """float32 [B, P]: each clip's mean frame embedding in CLIP's joint space, L2-normalised.
        The mean of unit vectors retrieves a clip by what most of its frames show; a short event
        inside a clip still moves it (measured in bench/RESULTS.md, issue 30)."""
        if not self.embeds:
            raise InputError(f"model {self.model_name!r} has no CLIP image tower (its config has no `retrieval` part)")
        clips = [validate_clip(c) for c in clips]
        retrieval = self.model.retrieval
        pixels = torch.cat([clip_pixels(clip_frames(c), image_size=retrieval.config.image_size, device=self.device) for c in clips])
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self._dtype == torch.bfloat16):
            frames = retrieval.embed_images(pixels.to(self.device, self._dtype)).float()  # [sum T, P]
        means = torch.stack([part.mean(dim=0) for part in torch.split(frames, [len(c) for c in clips])])
        return torch.nn.functional.normalize(means, dim=-1).cpu().numpy().astype(np.float32)

    def prepare(self, clips: list[Clip], names: list[str]) -> LavidaInputs:
        """The model's inputs for validated clips, on the detector's device (what detect_batch runs): the
        frames go there as uint8 and are resized and normalised there (on a GPU, not the actor's CPU)."""
        inputs = build_inputs(
            clips,
            [names] * len(clips),
            config=self.config,
            qwen_tokenizer=self.loaded.qwen_tokenizer,
            clip_tokenizer=self.loaded.clip_tokenizer,
            device=self.device,
        )
        return move_inputs(inputs, self.device, self._dtype)


def _check_device(device: str) -> None:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")


def _check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def _check_fits_in_memory(config: LavidaConfig, name: str) -> None:
    """A float32 model that cannot fit in free RAM would be killed mid-build: say so up front."""
    import psutil

    needed = parameter_count(config) * 4
    available = psutil.virtual_memory().available
    if needed > 0.9 * available:
        raise InputError(
            f"model {name!r} needs about {needed / 2**30:.0f} GiB of memory in float32 on the CPU but only "
            f"{available / 2**30:.0f} GiB is free: use --device cuda on a GPU machine, or --model tiny"
        )


def _validate_anomaly_types(anomaly_types: object) -> list[str]:
    if isinstance(anomaly_types, str) or not isinstance(anomaly_types, (list, tuple)):
        raise InputError("anomaly_types must be a list of names, e.g. ['fighting', 'a person falling']")
    names = [n.strip() if isinstance(n, str) else n for n in anomaly_types]
    if not names:
        raise InputError("give at least one anomaly type to look for (e.g. --anomaly 'fighting')")
    if len(names) > MAX_ANOMALY_TYPES:
        raise InputError(f"at most {MAX_ANOMALY_TYPES} anomaly types per scan, got {len(names)}")
    for name in names:
        if not isinstance(name, str) or not name:
            raise InputError(f"anomaly type names must be non-empty text, got {name!r}")
        if len(name) > MAX_ANOMALY_TYPE_CHARS:
            raise InputError(f"anomaly type {name[:40]!r}… is longer than {MAX_ANOMALY_TYPE_CHARS} characters")
    return names
