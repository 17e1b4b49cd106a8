"""One command for a machine with a GPU: what the paper preset (random weights, bf16) does there.

    python bench/gpu_check.py                                  # paper preset on cuda, bf16
    python bench/gpu_check.py --preset small --device cpu      # the same code on a reduced config (CI runs it)

Prints, in one run:
  1. detect throughput at batch 1, 2, 4, 8, 16 clips of 8 frames at 480x640 (clips/s, frames/s, peak
     GPU memory), LLM tokens/s and an MFU estimate: FLOPs = 2 x parameters x tokens for the LLM and
     for the vision tower (the dominant parts; SAM2, CLIP and the projector are left out, so it is a
     lower bound), over the device's peak (--peak-tflops; H100/H200 bf16 dense: 989);
  2. a 2-actor scan of generated videos against max(decode alone, model alone) (bench/bench_scan.py's
     stages): near 1 when decode and detect overlap;
  3. 5 training steps with gradient checkpointing on (steps/s, peak memory; bench/bench_train.py).
`--preset small` is the tiny architecture with smaller frames and batches, so that a CPU gets through it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import bench_scan  # noqa: E402
import bench_train  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from jobs.scan.job import ScanOptions, scan  # noqa: E402
from jobs.scan.ray_session import connect_ray  # noqa: E402
from lavida_core.detector import LavidaDetector  # noqa: E402

# preset -> (model preset, frame height, width, batches, scan videos, scan seconds)
SETTINGS = {
    "paper": ("paper", 480, 640, (1, 2, 4, 8, 16), 8, 60.0),
    "small": ("tiny", 120, 160, (1, 2, 4), 4, 8.0),
}
TYPES = ["fighting", "a person falling down", "fire", "smoke"]


def llm_flops(detector: LavidaDetector, clips: list[np.ndarray]) -> tuple[int, int, float]:
    """(LLM tokens, vision patches, FLOPs) of one detect_batch: 2 x parameters x tokens per part."""
    inputs = detector.prepare(clips, TYPES)
    qwen = detector.model.mllm.qwen
    llm = sum(p.numel() for p in qwen.model.language_model.parameters())
    vision = sum(p.numel() for p in qwen.model.visual.parameters())
    tokens, patches = int(inputs.input_ids.numel()), int(inputs.pixel_values.shape[0])
    return tokens, patches, 2.0 * (llm * tokens + vision * patches)


def detect_rows(args: argparse.Namespace) -> list[dict]:
    name, height, width, batches, _, _ = SETTINGS[args.preset]
    torch.manual_seed(0)
    detector = LavidaDetector.load(name, device=args.device, dtype=args.dtype)
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        clips = [rng.integers(0, 256, (8, height, width, 3), dtype=np.uint8) for _ in range(batch)]
        detector.detect_batch(clips, TYPES)  # warm-up
        _sync(args.device, reset=True)
        start = time.perf_counter()
        for _ in range(args.repeats):
            detector.detect_batch(clips, TYPES)
        _sync(args.device)
        seconds = (time.perf_counter() - start) / args.repeats
        tokens, patches, flops = llm_flops(detector, clips)
        rows.append({
            "batch": batch, "clips/s": batch / seconds, "frames/s": 8 * batch / seconds, "LLM tokens/s": tokens / seconds,
            "vision patches": patches, "TFLOP/s": flops / seconds / 1e12,
            "MFU": flops / seconds / (args.peak_tflops * 1e12) if args.peak_tflops else float("nan"),
            "peak GiB": _peak_gib(args.device),
        })  # fmt: skip
    return rows


def scan_row(args: argparse.Namespace) -> dict:
    name, height, width, _, videos, seconds = SETTINGS[args.preset]
    folder = Path(tempfile.mkdtemp(prefix="lavida-gpu-check-"))
    archive = argparse.Namespace(videos=videos, seconds=seconds, fps=25, width=width, height=height, codec="h264")
    bench_scan.make_archive(folder / "archive", archive)
    options = ScanOptions(
        source=str(folder / "archive"), out=str(folder / "out"), model=name, device=args.device, dtype=args.dtype,
        anomaly_types=tuple(TYPES), batch_size=4, num_actors=2,
        gpus_per_actor=0.5 if args.device == "cuda" else 0.0,  # two actors share the one GPU
    )  # fmt: skip
    if args.device == "cpu":  # two 1-CPU actors plus decode tasks: more logical CPUs than a laptop's 2 cores
        import ray

        ray.init(address="local", num_cpus=max(4, os.cpu_count() or 1), logging_level=logging.WARNING)
    connect_ray(None)
    t_decode, clips = bench_scan.timed(lambda: bench_scan.decode_only(options))
    t_model = bench_scan.model_only(clips, options)
    t_scan, summary = bench_scan.timed(lambda: scan(options))
    return {
        "videos": videos, "clips": len(clips), "decode s": t_decode, "model s": t_model, "2-actor scan s": t_scan,
        "scan / max(decode, model)": t_scan / max(t_decode, t_model), "ok": summary.n_ok,
    }  # fmt: skip


def train_row(args: argparse.Namespace) -> dict:
    name = SETTINGS[args.preset][0]
    run = argparse.Namespace(preset=name, device=args.device, batch=1 if args.preset == "paper" else 2, frames=8, steps=5, warmup=1,
                             gradient_checkpointing=True)  # fmt: skip
    return bench_train.measure(run)


def _sync(device: str, *, reset: bool = False) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        if reset:
            torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(SETTINGS), default="paper")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--dtype",
        choices=("bfloat16", "float32"),
        help="default: bfloat16 on cuda, float32 on cpu (bf16 matmuls crawl on CPUs without bf16 units)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed detect calls per batch size (default 3)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak dense TFLOP/s in the dtype (H100/H200 bf16: 989)")
    parser.add_argument("--skip", action="append", default=[], choices=("detect", "scan", "train"))
    args = parser.parse_args()
    args.dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    logging.basicConfig(level=logging.WARNING)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU is visible; on a CPU run `--preset small --device cpu`")
    where = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"gpu_check: preset {args.preset} ({SETTINGS[args.preset][0]}), {args.dtype}, on {where}, random weights")
    if "detect" not in args.skip:
        table("detect (clips of 8 frames)", detect_rows(args))
    if "scan" not in args.skip:
        table("scan", [scan_row(args)])
    if "train" not in args.skip:
        table("train (5 steps, gradient checkpointing on)", [train_row(args)])


if __name__ == "__main__":
    main()
