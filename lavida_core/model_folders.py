"""Model folders as people name and describe them, read without torch: the shipped models (`--model
demo`), lavida.json (format version, config, model card) and the card itself. The driver of a scan
reads a card from here before any actor loads weights (lavida_core.checkpoint does the loading)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lavida_core.config import PRESETS, LavidaConfig, preset
from lavida_core.errors import CheckpointError

CONFIG_FILE = "lavida.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    """What a model was trained on, as people see it next to "trained weights" (log, `runs`, report).

    Written into a model folder's lavida.json ("card") by `lavida train`; a preset's card says it has
    random weights."""

    trained: bool
    trained_on: str = ""  # datasets, e.g. "synthetic coloured shapes (shapes)"
    steps: int | None = None  # optimizer steps
    warning: str | None = None  # what not to use it for, e.g. "synthetic coloured shapes: not for real footage"
    selected: str | None = None  # which step's weights, when a validation probe chose them

    def summary(self) -> str:
        if not self.trained:
            return "trained weights: NO (random weights: scores and masks are not detections)"
        text = "trained weights: yes"
        if self.trained_on:
            text += f", trained on {self.trained_on}" + (f" ({self.steps} steps)" if self.steps else "")
        return text + (f"; WARNING: {self.warning}" if self.warning else "")

    def to_dict(self) -> dict:
        return {"trained_on": self.trained_on, "steps": self.steps, "warning": self.warning, "selected": self.selected}

    @classmethod
    def from_meta(cls, meta: dict) -> ModelCard:
        card = meta.get("card") or {}
        return cls(trained=bool(meta.get("trained", False)), trained_on=str(card.get("trained_on") or ""),
                   steps=card.get("steps"), warning=card.get("warning"), selected=card.get("selected"))  # fmt: skip


PRESET_CARD = ModelCard(trained=False)


# Models that ship with lavida, named like presets (`--model demo`), wherever the command runs.
SHIPPED_MODELS: dict[str, Path] = {"demo": Path(__file__).resolve().parents[1] / "models" / "demo"}


def model_folder(model: str) -> Path | None:
    """The folder a --model value names: a shipped model's, or the folder itself; None for anything else."""
    if model in SHIPPED_MODELS:
        folder = SHIPPED_MODELS[model]
        if not (folder / CONFIG_FILE).is_file():
            raise CheckpointError(f"--model {model}: the shipped model is missing from {folder} (it comes with the source checkout)")
        return folder
    return Path(model) if Path(model).is_dir() else None


def read_model_card(folder: Path) -> ModelCard:
    """A model folder's card, from lavida.json only (no weights are read)."""
    return ModelCard.from_meta(read_meta(Path(folder)))


def read_meta(folder: Path) -> dict:
    """A model folder's lavida.json (config, card, base references), checked for its format version."""
    meta_path = folder / CONFIG_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{folder} is not a LAVIDA model folder: {CONFIG_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{meta_path} is not valid JSON: {error}") from error
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path} has format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    return meta


def model_config(model: str) -> LavidaConfig:
    """The config of a --model value (a preset, a shipped model or a model folder), without its weights."""
    if model in PRESETS:
        return preset(model)
    folder = model_folder(model)
    if folder is None:
        raise CheckpointError(f"--model {model!r} is neither a preset, a shipped model nor a model folder")
    return LavidaConfig.from_dict(read_meta(folder)["config"])
