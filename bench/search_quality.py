"""Search quality on held-out demo shapes: recall@K of the clips that show a planted anomaly when the
anomaly's name is the description, for the demo model's CLIP image tower and the untrained `tiny`.

    OMP_NUM_THREADS=2 python bench/search_quality.py                   # models/demo vs tiny, test seeds 5201..5205
    OMP_NUM_THREADS=2 python bench/search_quality.py --model runs/demo_clip/model --seeds 401 402   # tuning seeds

Sets, one per seed and kind (seen / novel colour-shape combinations), all drawn like the demo model's
training videos (models/demo_train.json's shapes) with the set's own seed, none of which trained or
chose anything:
- the 20 anomaly videos of 16 frames that bench/demo_model_eval.py scores for that seed and kind
  (jobs/eval/shapes_testset.py: disjoint_anomaly_videos, 4 anomaly types, no video's normal shapes
  are any video's anomaly);
- `--normal-videos` videos without an anomaly (the training-video generator with the set's seed,
  those that show none of the set's anomaly types), so that the planted clips are few among many,
  as in an archive: 20 + 480 videos make 1,000 clips, about 7 of them per anomaly type.
Frames go through JPEG at quality 95, as the sets `lavida eval` reads hold them. Clips are the scan's
(8 frames, sample interval 1: two per video); a clip is relevant to a type when one of its frames
shows the planted anomaly of that type. Clip embeddings: `LavidaDetector.embed_clips` (the scan's);
the description's: `ClipQuery.embed(type)` (the search's). Within a set, clips are ranked by cosine
similarity to the description; recall@K = relevant clips in the top K / relevant clips. The table
gives it per anomaly type (averaged over the sets that plant it), and the mean over types of each kind.

bench/search_coverage.py measures the indexed search's top-10 events against the exhaustive one's.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from jobs.cli.demo import demo_shapes
from lavida_core.clip_query import ClipQuery
from lavida_core.clips import plan_clips
from lavida_core.detector import LavidaDetector
from lavida_core.training.synthetic_shapes import disjoint_anomaly_videos, render_training_video, through_jpeg

TEST_SEEDS = (5201, 5202, 5203, 5204, 5205)  # bench/demo_model_eval.py's test seeds
KINDS = ("seen", "novel")
KS = (16, 64, 256)
FRAMES_PER_CLIP = 8
N_FRAMES = 16


@dataclass(frozen=True)
class Clip:
    video: int  # index in its set
    frames: np.ndarray  # uint8 [8, H, W, 3]
    anomaly: str | None  # the planted anomaly's type when one of these frames shows it


@dataclass(frozen=True)
class TestSet:
    name: str  # "seen_5201"
    kind: str
    types: tuple[str, ...]  # the anomaly types planted in it
    clips: tuple[Clip, ...]
    videos: tuple[tuple[np.ndarray, str | None], ...]  # (frames, the video's anomaly type or None)


def make_set(seed: int, kind: str, *, anomaly_videos: int, normal_videos: int) -> TestSet:
    """The set of one seed and kind (module docstring)."""
    config = demo_shapes(n_frames=N_FRAMES, seed=seed)
    planted = disjoint_anomaly_videos(config, anomaly_videos, novel=(kind == "novel",), max_types=4)
    types = tuple(sorted({v.anomaly_type for v in planted}))
    videos: list[tuple[np.ndarray, str | None, np.ndarray]] = [(v.frames, v.anomaly_type, v.frame_labels) for v in planted]
    normal_config = dataclasses.replace(config, jpeg_quality=None)  # JPEG 95 below, as the anomaly videos
    index = 0
    while len(videos) < anomaly_videos + normal_videos:
        video = render_training_video(normal_config, index)
        index += 1
        if not {obj.name for obj in video.objects} & set(types):
            videos.append((video.frames, None, np.zeros(N_FRAMES, dtype=bool)))
    clips, kept = [], []
    for number, (frames, anomaly, labels) in enumerate(videos):
        frames = through_jpeg(frames, 95)
        kept.append((frames, anomaly))
        for indices in plan_clips(len(frames), FRAMES_PER_CLIP, 1):
            clips.append(Clip(video=number, frames=frames[indices], anomaly=anomaly if labels[indices].any() else None))
    return TestSet(name=f"{kind}_{seed}", kind=kind, types=types, clips=tuple(clips), videos=tuple(kept))


def embed_set(detector: LavidaDetector, test_set: TestSet, *, pooling: str = "mean", batch: int = 64) -> np.ndarray:
    """float32 [clips, P], the scan's clip embeddings (pooling 'mean'), or [clips, frames, P], each
    frame's own (pooling 'max': a clip then scores as its most similar frame)."""
    clips = [c.frames for c in test_set.clips]
    if pooling == "max":  # a one-frame clip's embedding is that frame's, normalised
        frames = [f[None] for clip in clips for f in clip]
        per_frame = np.concatenate([detector.embed_clips(frames[i : i + batch]) for i in range(0, len(frames), batch)])
        return per_frame.reshape(len(clips), -1, per_frame.shape[-1])
    return np.concatenate([detector.embed_clips(clips[i : i + batch]) for i in range(0, len(clips), batch)])


def recalls(embeddings: np.ndarray, query: np.ndarray, relevant: np.ndarray) -> dict[int, float]:
    """recall@K for each K of KS: relevant clips among the K most similar / relevant clips."""
    scores = embeddings @ query  # [clips] or [clips, frames]
    order = np.argsort(-(scores if scores.ndim == 1 else scores.max(axis=1)), kind="stable")
    return {k: float(relevant[order[:k]].sum() / relevant.sum()) for k in KS}


def retrieval_table(model: str, sets: list[TestSet], *, pooling: str = "mean") -> dict[str, list[dict[int, float]]]:
    """type -> recall@K per set that plants it."""
    detector, query = LavidaDetector.load(model, device="cpu"), ClipQuery.load(model)
    by_type: dict[str, list[dict[int, float]]] = {}
    for test_set in sets:
        embeddings = embed_set(detector, test_set, pooling=pooling)
        for anomaly in test_set.types:
            relevant = np.array([c.anomaly == anomaly for c in test_set.clips])
            by_type.setdefault(anomaly, []).append(recalls(embeddings, query.embed(anomaly).vector, relevant))
    return by_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="the model whose search is measured (default: the shipped demo)")
    parser.add_argument("--baseline", default="tiny", help="the model compared with (default: the untrained tiny preset)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(TEST_SEEDS))
    parser.add_argument("--no-baseline", action="store_true", help="measure --model alone")
    parser.add_argument(
        "--pooling",
        choices=["mean", "max"],
        default="mean",
        help="mean: a clip is its frames' mean embedding (what the scan stores); max: its most similar frame (per-frame index)",
    )
    parser.add_argument("--anomaly-videos", type=int, default=20, help="videos with a planted anomaly per set (default 20)")
    parser.add_argument("--normal-videos", type=int, default=480, help="videos without one per set (default 480)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    begun = time.monotonic()
    sets = [make_set(s, k, anomaly_videos=args.anomaly_videos, normal_videos=args.normal_videos) for k in KINDS for s in args.seeds]
    print(f"{len(sets)} sets of {len(sets[0].clips)} clips drawn in {time.monotonic() - begun:.0f} s")
    tables = {}
    for model in (args.model, args.baseline)[: 1 if args.no_baseline else 2]:
        begun = time.monotonic()
        tables[model] = retrieval_table(model, sets, pooling=args.pooling)
        print(f"{model}: embedded and ranked in {time.monotonic() - begun:.0f} s")
    print_table(args, sets, tables)


def print_table(args: argparse.Namespace, sets: list[TestSet], tables: dict[str, dict]) -> None:
    n_clips = len(sets[0].clips)
    relevant = {t: [sum(c.anomaly == t for c in s.clips) for s in sets if t in s.types] for s in sets for t in s.types}
    print(
        f"\nrecall@K of the planted clips; seeds {' '.join(map(str, args.seeds))}; {len(sets)} sets of {n_clips} clips "
        f"({args.anomaly_videos} anomaly + {args.normal_videos} normal videos of {N_FRAMES} frames); "
        f"{platform.processor() or platform.machine()}\n"
    )
    models = list(tables)
    head = " | ".join(f"{m} R@{k}" for m in models for k in KS)
    print(f"| kind | anomaly type | sets | relevant clips / set | {head} |")
    print("| --- | --- | ---: | ---: |" + " ---: |" * (len(models) * len(KS)))
    for kind in KINDS:
        types = sorted({t for s in sets if s.kind == kind for t in s.types})
        for anomaly in types:
            cells = " | ".join(f"{np.mean([r[k] for r in tables[m][anomaly]]):.2f}" for m in models for k in KS)
            print(f"| {kind} | {anomaly} | {len(relevant[anomaly])} | {np.mean(relevant[anomaly]):.1f} | {cells} |")
        means = " | ".join(f"**{np.mean([np.mean([r[k] for r in tables[m][t]]) for t in types]):.2f}**" for m in models for k in KS)
        print(f"| {kind} | mean over types | | | {means} |")
    chance = " | ".join(f"{min(1.0, k / n_clips):.2f}" for _ in models for k in KS)
    print(f"| | chance (K / clips) | | | {chance} |")


if __name__ == "__main__":
    main()
