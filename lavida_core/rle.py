"""Masks <-> COCO compressed RLE (the `frames.mask_rle` column), through pycocotools.

An RLE is a dict {"size": [height, width], "counts": str} that `pycocotools.mask.decode` reads as is
(after `counts` is turned back into bytes, which pycocotools also accepts as str). An empty mask
(nothing segmented) encodes to None, the column's null.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from lavida_core.errors import InputError

Rle = dict  # {"size": [int, int], "counts": str}


def encode_rle(mask: np.ndarray) -> Rle | None:
    """One mask bool/0-1 [H, W] -> its COCO compressed RLE, or None when no pixel is set."""
    return encode_rles(np.asarray(mask)[None])[0]


def encode_rles(masks: np.ndarray) -> list[Rle | None]:
    """Masks bool/0-1 [T, H, W] -> T RLEs (None for an empty mask), in one pycocotools call."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise InputError(f"masks must be [T, H, W], got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    # 1. pycocotools wants uint8 [H, W, T] in Fortran (column-major) order.
    stacked = np.asfortranarray(np.moveaxis(masks != 0, 0, -1).astype(np.uint8))  # [H, W, T]
    # 2. encode all T masks at once.
    encoded = mask_utils.encode(stacked)
    # 3. plain Python values; None where the mask is empty.
    non_empty = masks.reshape(masks.shape[0], -1).any(axis=1)  # [T]
    return [
        {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")} if keep else None
        for rle, keep in zip(encoded, non_empty)
    ]


def decode_rle(rle: Rle | None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """An RLE -> mask bool [H, W]; a None RLE (empty mask) needs `shape` = (H, W) and gives all False."""
    if rle is None:
        if shape is None:
            raise InputError("an empty (None) RLE decodes only with shape=(height, width)")
        return np.zeros(shape, dtype=bool)
    counts = rle["counts"]
    coco = {"size": [int(v) for v in rle["size"]], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(coco).astype(bool)  # [H, W]


def join_counts(rles: list[Rle | None]) -> str:
    """T RLEs -> one string: their counts joined by newlines, '' for an empty (None) mask.
    (One plain string per clip keeps a column's type the same in every Ray block; the mask size is
    the frame's height x width, carried beside it.)"""
    return "\n".join(rle["counts"] if rle else "" for rle in rles)


def split_counts(joined: str, n_frames: int) -> list[str | None]:
    """Inverse of join_counts for a clip of n_frames frames: T counts strings, None for an empty mask."""
    counts = joined.split("\n") if n_frames else []
    if len(counts) != n_frames:
        raise InputError(f"{len(counts)} masks for {n_frames} frames")
    return [c or None for c in counts]
