"""Tokens kept and time per clip with and without each token-compression step.

    python bench/bench_model.py --preset tiny --device cpu [--pixels 50176] [--repeats 5]

The clip is surveillance-like: a static textured background with one moving square, 8 frames.
Prints one table: visual tokens entering the LLM, median seconds per clip at batch 1, and clips/s at
batch 1 vs --batch, for: no compression, temporal pruning only, token sampling only, both.
On a GPU (`--device cuda --preset paper`) it also reports peak GPU memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from lavida_core.checkpoint import build_lavida
from lavida_core.config import PRESETS, preset
from lavida_core.detector import LavidaDetector

VARIANTS = {
    "none": dict(temporal_pruning=False, token_sampling=False),
    "temporal pruning": dict(temporal_pruning=True, token_sampling=False),
    "token sampling": dict(temporal_pruning=False, token_sampling=True),
    "both (paper)": dict(temporal_pruning=True, token_sampling=True),
}


def surveillance_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    clip = np.repeat(background[None], frames, axis=0)
    side = max(4, height // 6)
    for t in range(frames):
        x = (t * width // frames) % (width - side)
        clip[t, height // 3 : height // 3 + side, x : x + side] = (255, 40, 40)
    return clip


def measure(detector: LavidaDetector, clip: np.ndarray, *, batch: int, repeats: int) -> dict[str, float]:
    types = ["a person climbing the fence", "fire"]
    inputs = detector.prepare([clip], types)
    with torch.inference_mode():
        out = detector.model(inputs)
    detector.detect(clip, types)  # warm-up
    if detector.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    single = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.detect(clip, types)
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeats):
        detector.detect_batch([clip] * batch, types)
    batched = (time.perf_counter() - start) / repeats
    peak = torch.cuda.max_memory_allocated() / 2**30 if detector.device.type == "cuda" else float("nan")
    return {
        "tokens_in": out.visual_tokens_in[0],
        "tokens_out": out.visual_tokens_out[0],
        "s_per_clip": statistics.median(single),
        "clips_per_s_b1": 1 / statistics.median(single),
        "clips_per_s_bN": batch / batched,
        "peak_gib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pixels", type=int, default=None, help="pixels per frame for the vision tower (default: the preset's)")
    parser.add_argument("--size", default="240x320", help="HxW of the generated frames")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    clip = surveillance_clip(8, height, width)
    base = preset(args.preset)
    if args.pixels:
        base = base.replace(mllm=dataclasses.replace(base.mllm, min_pixels=args.pixels, max_pixels=args.pixels))
    print(f"preset={args.preset} device={args.device} frames=8x{height}x{width} batch={args.batch} repeats={args.repeats}")
    print("| compression | visual tokens in -> LLM | s/clip (batch 1) | clips/s batch 1 | clips/s batch N | peak GPU GiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, switches in VARIANTS.items():
        config = base.replace(compression=dataclasses.replace(base.compression, **switches))
        torch.manual_seed(0)
        detector = LavidaDetector(build_lavida(config), model_name=args.preset, device=args.device)
        m = measure(detector, clip, batch=args.batch, repeats=args.repeats)
        print(
            f"| {name} | {m['tokens_in']} -> {m['tokens_out']} | {m['s_per_clip']:.3f} | {m['clips_per_s_b1']:.2f} "
            f"| {m['clips_per_s_bN']:.2f} | {m['peak_gib']:.1f} |"
        )
        del detector


if __name__ == "__main__":
    main()
