"""The demo model's held-out figures: fresh test seeds, seen and novel colour-shape combinations,
mean / min / spread. One command:

    OMP_NUM_THREADS=1 python bench/demo_model_eval.py                   # models/demo, test seeds 5201..5205
    OMP_NUM_THREADS=1 python bench/demo_model_eval.py --model runs/demo/model --seeds 6001 6002
    # a candidate trained by another recipe, on sets drawn like its training videos, seen ones only:
    OMP_NUM_THREADS=1 python bench/demo_model_eval.py --model runs/e4/model --recipe e4.json --kind seen --seeds 105 107
    # the prompt check of the novel combinations (below):
    OMP_NUM_THREADS=1 python bench/demo_model_eval.py --kind decoy --seeds 106 108

Seeds, and what each was used for (a figure is only honest on seeds nothing was chosen on):
- 0: the training videos (models/demo_train.json);
- 101, 103 (seen) and 102, 104 (novel): the validation sets `lavida train` probes every 250 steps to
  keep the best checkpoint (models/demo_train.json, "validation"); every recipe choice was made on
  them (101 / 102 alone for recipe D);
- 301, 302: diagnostic sets, looked at video by video to find why recipe D failed (bench/RESULTS.md);
- 7: the test sets an earlier recipe was tuned on; 1234, 99, 2026: tried on that earlier model
  (issue 16); 31: tests/test_demo_model.py before this protocol. None of these is a test seed now;
- 5001..5005: the test seeds of recipe D, scored once on it and published; not test seeds any more;
- 5201..5205: the test seeds, scored once on the final model (bench/RESULTS.md, ## demo model);
- 5101..5102: tests/test_demo_model.py.

Each set is `--videos` videos of 16 frames drawn like the training videos (jobs/eval/shapes_testset.py,
the same generator and ShanghaiTech layout that `bench/make_shapes_testset.py` writes for
`lavida eval`), with 4 anomaly types named in every prompt, sample interval 1, 8-frame clips. The
sets are scored in process by the training validation's code (jobs/train/validation.py over
jobs/eval.score_in_process and metrics_of), which gives the numbers `lavida eval` gives on the same
set and model (tests/test_train_validation.py checks that): frame AUC, video mean AUC and pixel AUC
as `--protocol` defines them (default: the reference's, README "Evaluation protocols"), and pixel AUC
as the `lavida` protocol defines it too (binary mask x score, the maps OUT stores).

`--kind decoy` checks what a novel figure measures. In a novel set the anomaly is the one object of a
colour-shape combination never trained on, so a score that rises on anything unfamiliar ranks its
frames well without reading the prompt (bench/RESULTS.md, W1_S1). A decoy set is a novel set whose
anomalies use half the held-out combinations; it is scored twice, with a prompt naming the anomaly
types it shows ("named") and with one naming the other held-out combinations, which no frame shows
("decoy"). A model that binds the named colour to the named shape scores the decoy prompt near
chance (50); one that answers to unfamiliarity scores both alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from jobs.cli.demo import DEMO_TRAIN_CONFIG, demo_shapes
from jobs.train.validation import ValidationConfig, ValidationSet, decoy_sets, prepare_sets, score_sets, set_metrics
from lavida_core.checkpoint import load_lavida
from lavida_core.model_folders import model_folder

TEST_SEEDS = (5201, 5202, 5203, 5204, 5205)
KINDS = ("seen", "novel")
DECOY = "decoy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="a model folder, or `demo` (default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(TEST_SEEDS))
    parser.add_argument("--videos", type=int, default=20, help="videos per set (default 20)")
    parser.add_argument("--protocol", default="reference", help="frame metrics as `lavida eval --protocol` (default reference)")
    parser.add_argument("--work", type=Path, help="where the sets are written (default: a temporary folder)")
    parser.add_argument(
        "--recipe", type=Path, default=DEMO_TRAIN_CONFIG, help="draw the sets like this train config's videos (default: the demo's)"
    )
    parser.add_argument(
        "--kind", choices=[*KINDS, "both", DECOY], default="both",
        help="seen or novel combinations, or both (default); decoy: the prompt check of novel ones (above)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_lavida(model_folder(args.model))
    shapes = demo_shapes(n_frames=16, seed=0, recipe=args.recipe)
    with tempfile.TemporaryDirectory(prefix="demo-eval-") as scratch:
        work = args.work or Path(scratch)
        if args.kind == DECOY:
            print_decoy_table(args, score_decoys(loaded, args.seeds, videos=args.videos, protocol=args.protocol, work=work, shapes=shapes))
            return
        kinds = KINDS if args.kind == "both" else (args.kind,)
        rows = score_seeds(loaded, args.seeds, videos=args.videos, protocol=args.protocol, work=work, shapes=shapes, kinds=kinds)
    print_table(args, rows, kinds)


def score_seeds(loaded, seeds: list[int], *, videos: int, protocol: str, work: Path, shapes, kinds=KINDS) -> list[tuple[str, int, dict]]:
    """(kind, seed, metrics) per test set: the set written under `work`, then probed once."""
    sets = tuple(
        ValidationSet(name=f"{kind}_{seed}", pixel=True, synthetic_shapes={"seed": seed, "videos": videos, "novel": kind == "novel"})
        for kind in kinds
        for seed in seeds
    )
    prepared = prepare_sets(ValidationConfig(every=1, sets=sets), work, shapes)
    begun = time.monotonic()
    scored = score_sets(loaded, prepared, protocol=protocol, device=torch.device("cpu"))
    print(f"scored {len(prepared)} sets in {time.monotonic() - begun:.0f} s")
    rows = []
    for entry in prepared:
        kind, seed = entry.name.split("_")
        metrics = set_metrics(entry, scored[entry.name], protocol=protocol)
        # also the pixel maps `lavida` defines (binary mask x score, what OUT stores)
        ours = set_metrics(entry, scored[entry.name], protocol="lavida")["pixel_auc"]
        rows.append((kind, int(seed), {**metrics, "pixel_auc_lavida": ours}))
    return rows


DecoyRow = tuple[int, list[str], list[str], float, float]  # seed, named types, decoy types, their frame AUCs


def score_decoys(loaded, seeds: list[int], *, videos: int, protocol: str, work: Path, shapes) -> list[DecoyRow]:
    """(seed, named types, decoy types, named frame AUC, decoy frame AUC) per decoy set."""
    pairs = decoy_sets(seeds, videos=videos, out=work, shapes=shapes)
    begun = time.monotonic()
    scored = score_sets(loaded, [prepared for pair in pairs for prepared in pair], protocol=protocol, device=torch.device("cpu"))
    print(f"scored {len(pairs)} decoy sets twice in {time.monotonic() - begun:.0f} s")

    def frame_auc(prepared) -> float:
        return set_metrics(prepared, scored[prepared.name], protocol=protocol)["frame_auc"]

    return [
        (seed, named.anomaly_types, decoy.anomaly_types, frame_auc(named), frame_auc(decoy)) for seed, (named, decoy) in zip(seeds, pairs)
    ]


def print_decoy_table(args: argparse.Namespace, rows: list[DecoyRow]) -> None:
    print(f"\nmodel {args.model}; {args.videos} novel videos of 16 frames per set; frame metrics: --protocol {args.protocol}\n")
    print("| seed | shown (named) | decoy prompt | frame AUC, named | frame AUC, decoy | named - decoy |")
    print("| ---: | --- | --- | ---: | ---: | ---: |")
    for seed, shown, decoys, named, decoy in rows:
        aucs = f"{100 * named:.2f} | {100 * decoy:.2f} | {100 * (named - decoy):.2f}"
        print(f"| {seed} | {', '.join(shown)} | {', '.join(decoys)} | {aucs} |")
    named, decoy = (100 * np.array([row[i] for row in rows]) for i in (3, 4))
    print(f"| mean | | | {named.mean():.2f} | {decoy.mean():.2f} | {(named - decoy).mean():.2f} |")


def print_table(args: argparse.Namespace, rows: list[tuple[str, int, dict]], kinds=KINDS) -> None:
    print(f"\nmodel {args.model}; {args.videos} videos of 16 frames per set; frame metrics: --protocol {args.protocol}\n")
    print("| set | seed | frame AUC | video mean AUC | pixel AUC | pixel AUC (lavida: mask x score) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, seed, m in rows:
        video = "-" if m["video_mean_auc"] is None else f"{100 * m['video_mean_auc']:.2f}"
        pixel = f"{100 * m['pixel_auc']:.2f} | {100 * m['pixel_auc_lavida']:.2f}"
        print(f"| {kind} | {seed} | {100 * m['frame_auc']:.2f} | {video} | {pixel} |")
    print("\n| set | metric | mean | min | max | std |\n| --- | --- | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        for metric in ("frame_auc", "video_mean_auc", "pixel_auc", "pixel_auc_lavida"):
            values = 100 * np.array([m[metric] for k, _, m in rows if k == kind])
            print(f"| {kind} | {metric} | {values.mean():.2f} | {values.min():.2f} | {values.max():.2f} | {values.std():.2f} |")


if __name__ == "__main__":
    main()
