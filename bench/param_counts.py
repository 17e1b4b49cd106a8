"""Parameter counts per part of a preset, built on the meta device (no memory, no weights).

    python bench/param_counts.py --preset paper

Public sizes to compare with: Qwen2-VL-7B-Instruct 8.29 B (vision tower 0.68 B); SAM2.1 Hiera-S
46 M in all, of which the image encoder (trunk + FPN neck) is about 34 M; CLIP ViT-B/32 text tower
63 M (the whole CLIP ViT-B/32 is 151 M).
"""

from __future__ import annotations

import argparse

import torch

from lavida_core.checkpoint import build_empty, trained_part_keys
from lavida_core.config import PRESETS, preset


def count(module: torch.nn.Module, *, skip_lora: bool = True) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not (skip_lora and ".lora_" in n))


def rows(name: str) -> list[tuple[str, int]]:
    model = build_empty(preset(name))
    mllm = model.mllm.qwen
    return [
        ("MLLM (Qwen2-VL), all", count(mllm)),
        ("  vision tower (incl. merger)", count(mllm.model.visual)),
        ("  language model + LM head", count(mllm.model.language_model) + count(mllm.lm_head)),
        ("  LoRA adapters (q_proj, v_proj)", count(mllm, skip_lora=False) - count(mllm)),
        ("text encoder (CLIP text tower)", count(model.text_encoder)),
        ("SAM2 image encoder (Hiera + FPN)", count(model.segmenter.image_encoder)),
        ("SAM2 prompt encoder + mask decoder", count(model.segmenter.sam_prompt_encoder) + count(model.segmenter.sam_mask_decoder)),
        ("Multi-scale Semantic Projector", count(model.projector)),
        ("LAVIDA total (incl. LoRA)", sum(p.numel() for p in model.parameters())),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    args = parser.parse_args()
    print(f"| part ({args.preset}) | parameters |")
    print("| --- | ---: |")
    for label, n in rows(args.preset):
        print(f"| {label} | {n:,} ({n / 1e6:,.1f} M) |")
    full, small = folder_sizes(args.preset)
    print(
        f"\nmodel folder, float32 weights: self-contained {full / 2**30:,.2f} GiB; small form (trained parts only) {small / 2**20:,.1f} MiB"
    )


def folder_sizes(name: str) -> tuple[int, int]:
    """Bytes of weights in a float32 model folder of `name`: every weight, and the trained parts only."""
    model = build_empty(preset(name))
    state = model.state_dict()
    trained = set(trained_part_keys(model))
    return sum(t.numel() * 4 for t in state.values()), sum(state[k].numel() * 4 for k in trained)


if __name__ == "__main__":
    main()
