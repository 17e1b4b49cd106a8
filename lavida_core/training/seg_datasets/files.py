"""Reading one local annotation or image file; anything that does not fit raises an InputError naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from lavida_core.errors import InputError


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


def _open_image(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: not a readable image ({err})") from None
    return image


def read_rgb(path: Path) -> np.ndarray:
    """uint8 [H, W, 3]."""
    return np.asarray(_open_image(path).convert("RGB"))


def read_id_mask(path: Path) -> np.ndarray:
    """uint8 [H, W] of object ids (0 background) from a palette or greyscale PNG (YouTube-VOS)."""
    image = _open_image(path)
    if image.mode not in ("P", "L"):
        raise InputError(f"{path}: mask is mode {image.mode}; expected a palette (P) or greyscale (L) PNG whose values are object ids")
    return np.asarray(image)


def read_label_png(path: Path) -> np.ndarray:
    """uint8 [H, W] of class ids from a greyscale (L) or palette (P) label PNG, values as stored."""
    image = _open_image(path)
    if image.mode not in ("P", "L"):
        raise InputError(f"{path}: label image is mode {image.mode}; expected a greyscale (L) or palette (P) PNG of class ids")
    return np.asarray(image)


def require(condition: bool, path: Path, what: str) -> None:
    """Raise ``InputError("<path>: <what>")`` unless ``condition``."""
    if not condition:
        raise InputError(f"{path}: {what}")
