"""Loading a model folder: peak host memory added by the load, over the bytes of the loaded parameters,
and the load time; the old path (build the model with random weights, then read the file on top)
against the new one (lavida_core.checkpoint.load_lavida: parameters on the meta device, each tensor
read straight to its device and dtype). Each load runs in a fresh process whose peak RSS is reset after
its imports (first-run bytecode compiling must not count), and reads every weight once after the load.

    python bench/bench_load.py                 # a ~270 M-parameter LAVIDA (paper architecture, fewer and narrower layers)
    python bench/bench_load.py --scale small   # ~60 M, a quick run (the test suite's bound uses it)

Target (issue 13): added RSS / parameter bytes <= 1.15 on CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def config(scale: str):
    """The paper preset's architecture with fewer / narrower layers (sizes in the module docstring)."""
    from lavida_core.config import preset

    paper = preset("paper")
    # LLM width and layers, vision tower width and blocks, CLIP text layers
    width, layers, vision_width, vision_depth, clip_layers = {"mid": (1024, 2, 1280, 1, 4), "small": (256, 1, 256, 1, 1)}[scale]
    mllm = dataclasses.replace(
        paper.mllm, vocab_size=32000, hidden_size=width, intermediate_size=width * 11 // 4, num_hidden_layers=layers,
        num_attention_heads=width // 64, num_key_value_heads=4, mrope_section=(8, 12, 12),
        vision_embed_dim=vision_width, vision_num_heads=vision_width // 80 or 1, vision_depth=vision_depth,
    )  # fmt: skip
    text = dataclasses.replace(paper.text_encoder, num_hidden_layers=clip_layers)
    return dataclasses.replace(paper, name=f"bench-{scale}", mllm=mllm, text_encoder=text)


def write_folder(scale: str, folder: Path) -> int:
    """A self-contained model folder of `config(scale)` with random float32 weights; returns its parameter count."""
    from lavida_core.checkpoint import build_lavida, save_lavida

    loaded = build_lavida(config(scale))
    loaded.trained = True
    save_lavida(loaded, folder)
    return sum(p.numel() for p in loaded.model.parameters())


def child(path: str, way: str) -> None:
    """One load in this (fresh) process; prints {"added_rss", "seconds", "param_bytes"}."""
    import torch
    from safetensors.torch import load_file

    from lavida_core.checkpoint import build_lavida, load_lavida  # imports paid before measuring
    from lavida_core.config import LavidaConfig

    folder = Path(path)
    _reset_peak_rss()  # the imports' own peak (first-run bytecode compiling, say) is not the load's
    before = _rss_kb()
    start = time.perf_counter()
    if way == "new":
        model = load_lavida(folder).model
    else:  # the old path, as it was: random weights first, then the whole file read on top
        meta = json.loads((folder / "lavida.json").read_text())
        model = build_lavida(LavidaConfig.from_dict(meta["config"])).model
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    seconds = time.perf_counter() - start
    with torch.no_grad():  # touch every weight, as a first forward pass would (mapped pages count once read)
        for parameter in model.parameters():
            parameter.sum()
    peak = _status_kb("VmHWM")  # KiB, the high-water mark of this process since the reset
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"added_rss": (peak - before) * 1024, "seconds": seconds, "param_bytes": param_bytes}))


def _rss_kb() -> int:
    return _status_kb("VmRSS")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


def _reset_peak_rss() -> None:
    """Linux: writing 5 to /proc/self/clear_refs resets VmHWM (the peak RSS) to the current RSS."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def measure(folder: Path, way: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), way], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("mid", "small"), default="mid")
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp) / "model"
        n_params = write_folder(args.scale, folder)
        size = (folder / "model.safetensors").stat().st_size
        print(f"config {args.scale}: {n_params / 1e6:.0f} M parameters, model.safetensors {size / 2**20:.0f} MiB (float32)")
        print(f"{'path':<6} {'added RSS MiB':>14} {'/ param bytes':>14} {'load s':>8}")
        for way in ("old", "new"):
            result = measure(folder, way)
            ratio = result["added_rss"] / result["param_bytes"]
            print(f"{way:<6} {result['added_rss'] / 2**20:>14.0f} {ratio:>14.2f} {result['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
