"""`lavida eval`: a model on a standard VAD benchmark, scored as the paper scores it.

    read the test split (jobs/eval/vad_datasets.py) -> scan(...) into OUT (the scan's Ray Data path,
    resumable: videos already in OUT are skipped) -> frame scores back from OUT with DuckDB
    -> metrics (lavida_core/vad_metrics.py) -> a table with the paper's numbers beside ours

Protocols (jobs/eval/vad_datasets.py PROTOCOLS; README, "Evaluation protocols", has each choice's
source). `reference`, the default, defines every number as the reference code does: clips of
`--frames-per-clip` frames every `--sample-interval` frames (default: the paper's per dataset), whole
windows only, object-score logits repeated to every frame, frame AUC micro-averaged over all test
frames with the 0/1 end points, the per-video mean over all videos, and with `--pixel` the pooled
pixel AUC of mask logits at 158 x 238. `lavida` keeps our deliberate differences (the UBnormal
authors' full test split, every frame scored, sigmoid scores, AP for XD-Violence, single-class
videos out of the per-video mean, mask x score maps at the truth's size). Both print frame AP for
XD-Violence, the paper's metric there.

`metrics_of` is the scoring, pure (no OUT, no Ray): `lavida eval` reads the scan's scores back from
OUT into it, training validation (jobs/train/validation.py) gives it what the model scored in process.

Pixel maps. OUT keeps each frame's binary mask (COCO RLE) and its score, not the mask logits. The
`lavida` protocol scores mask x frame score (pixels inside the predicted mask rank by how anomalous
the frame is, all others are 0; a frame without a mask is all 0). The reference protocol pools the
mask logits: `lavida eval --pixel` then runs the model over the scanned videos once more, in process,
keeping them (`score_in_process`).

Default anomaly types per dataset are the reference's anomaly names for it (BENCHMARKS in
jobs/eval/vad_datasets.py); `--anomaly` replaces them.

A video the scan could not decode is left out of the metrics and counted (`n_failed`). Re-running
with other sampling or another model into the same OUT would mix runs: that is refused unless
`--rescan` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from jobs.common.errors import UserError
from jobs.eval.vad_datasets import BENCHMARKS, PROTOCOLS, Benchmark, BenchmarkVideo, EvalProtocol, protocol_of
from jobs.out.profile import sampling
from jobs.scan.job import ScanOptions, add_runner_arguments, frame_scaler, runner_fields, sample_interval_arg
from lavida_core.clips import SAMPLE_KEYFRAMES

if TYPE_CHECKING:
    from jobs.video.frame_scaling import FrameScaler

log = logging.getLogger(__name__)

PIXEL_CHUNK = 32  # frames per pixel-AUC update (bounds memory on long frame folders)


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    dataset: str  # a key of BENCHMARKS
    root: str  # the dataset's folder in its published layout
    scan: ScanOptions  # OUT, model, device, clip length, Ray/actor/storage settings; videos, anomaly
    #                    types and sample interval are filled in per benchmark by `evaluate`
    sample_interval: int | None = None  # None: the paper's for the dataset
    anomaly_types: tuple[str, ...] = ()  # empty: the dataset's defaults
    pixel: bool = False  # also compute pixel AUC (datasets with pixel masks)
    protocol: str = "reference"  # a key of PROTOCOLS: how the split is read and the numbers defined


@dataclass(frozen=True)
class EvalResult:
    dataset: str
    title: str
    protocol: str
    model: str
    model_trained: bool | None
    sample_interval: int
    frames_per_clip: int
    anomaly_types: list[str]
    n_videos: int  # in the test split
    n_scored: int
    n_failed: int  # could not be decoded: left out
    n_too_short: int  # shorter than one window of frames_per_clip x sample_interval (reference protocol): left out
    n_frames: int  # labelled frames the frame metrics pool
    frame_auc: float
    frame_ap: float | None  # XD-Violence only (the paper's metric there)
    video_mean: float | None  # per-video mean of video_metric
    video_metric: str  # 'auc' | 'ap'
    n_videos_skipped: int  # single-class videos left out of the per-video mean
    pixel_auc: float | None
    paper_metric: str  # e.g. 'frame AUC'
    paper_value: float | None
    ours_for_paper: float | None  # our number for the paper's metric, in percent
    failed: list[str] = field(default_factory=list)  # 'name: status: error'


def evaluate(options: EvalOptions) -> EvalResult:
    """Scan the benchmark's test videos into OUT (skipping what is there) and score them."""
    from jobs.scan.job import scan

    benchmark = _benchmark(options.dataset)
    sample_interval = benchmark.sample_interval if options.sample_interval is None else options.sample_interval
    anomaly_types = options.anomaly_types or benchmark.anomaly_types
    videos = benchmark.read(options.root, options.protocol)
    if not videos:
        raise UserError(f"{benchmark.title}: no test videos found in {options.root}")
    if options.pixel:
        _check_pixel_masks(benchmark, videos)
    log.info("%s: %d test videos, sample interval %s", benchmark.title, len(videos), sampling(sample_interval))
    scan_options = dataclasses.replace(
        options.scan,
        source=None,
        uris=tuple(v.uri for v in videos),
        anomaly_types=tuple(anomaly_types),
        sample_interval=sample_interval,
    )
    scan(scan_options)  # refuses videos OUT holds with other settings, unless --rescan
    return score(benchmark, options, videos, scan_options)


def _benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise UserError(f"--dataset {name!r}: choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def _check_pixel_masks(benchmark: Benchmark, videos: list[BenchmarkVideo]) -> None:
    if not benchmark.has_pixel_masks:
        raise UserError(f"--pixel: {benchmark.title} has no pixel masks (only frame labels)")
    missing = next((v.name for v in videos if v.pixel_masks is None), None)
    if missing:
        raise UserError(f"--pixel: {benchmark.title} test video {missing} has no pixel masks in {benchmark.title}'s layout")


# --- reading OUT back -------------------------------------------------------------------------


def _connect(options: ScanOptions, uris):
    """DuckDB over the scan's OUT, with a temp table `wanted(uri)` of the benchmark's videos."""
    from jobs.out import duck

    con = duck.connect(options.out, storage_options=options.storage_options)
    con.execute("create temp table wanted(uri varchar)")
    con.executemany("insert into wanted values (?)", [[uri] for uri in uris])
    return con


@dataclass(frozen=True)
class ScoredVideo:
    """One video's model output at its sampled frames: what the metrics need, from OUT or in process."""

    n_frames: int
    frame_indices: np.ndarray  # [K] sampled frames
    scores: np.ndarray  # [K] 0..1 (sigmoid of the object-score logits)
    masks: list  # [K] COCO RLE dicts or None (only read with --pixel)
    height: int
    width: int
    score_logits: np.ndarray | None = None  # [K] object-score logits; None: recovered from `scores`
    pixel_logits: np.ndarray | None = None  # [K, 158, 238] the reference's pixel maps, made from the
    #                                         model's mask logits by vad_metrics.reference_pixel_logits


def read_scores(options: ScanOptions, videos: list[BenchmarkVideo], *, with_masks: bool) -> tuple[dict[str, ScoredVideo], dict[str, str]]:
    """(uri -> its committed scores, uri -> 'status: error' of the videos that failed)."""
    con = _connect(options, [v.uri for v in videos])
    status_rows = con.sql("select uri, status, error, n_frames, height, width from videos where uri in (select uri from wanted)").fetchall()
    mask_column = "mask_rle" if with_masks else "null"
    frames = con.sql(
        f"""select uri, list(frame_index order by frame_index), list(score order by frame_index),
                   list({mask_column} order by frame_index)
            from frames where uri in (select uri from wanted) group by uri"""
    ).fetchall()
    by_uri = {uri: (indices, scores, masks) for uri, indices, scores, masks in frames}
    scored, failed = {}, {}
    for uri, status, error, n_frames, height, width in status_rows:
        if status != "ok" or uri not in by_uri:
            failed[uri] = f"{status}: {error}"
            continue
        indices, scores, masks = by_uri[uri]
        scored[uri] = ScoredVideo(
            int(n_frames), np.array(indices, dtype=np.int64), np.array(scores, dtype=np.float64), masks, int(height), int(width)
        )
    for video in videos:
        if video.uri not in scored and video.uri not in failed:
            failed[video.uri] = "missing: not in OUT after the scan"
    return scored, failed


def model_trained(options: ScanOptions) -> bool | None:
    con = _connect(options, options.uris)
    [(trained,)] = con.sql(
        "select bool_and(model_trained) from runs where run_id in (select run_id from frames where uri in (select uri from wanted))"
    ).fetchall()
    return trained


# --- scoring ----------------------------------------------------------------------------------


def score(benchmark: Benchmark, options: EvalOptions, videos: list[BenchmarkVideo], scan_options: ScanOptions) -> EvalResult:
    rules = protocol_of(options.protocol)
    logit_maps = options.pixel and rules.pixel_maps == "logits"
    scored, failed = read_scores(scan_options, videos, with_masks=options.pixel and not logit_maps)
    for uri, why in failed.items():
        log.warning("left out of the metrics: %s (%s)", uri, why)
    if logit_maps:
        scored = rescore_with_logits(scan_options, list(scored), whole_windows_only=rules.full_windows_only)
    metrics = metrics_of(
        benchmark, videos, scored, protocol=options.protocol, pixel=options.pixel,
        sample_interval=scan_options.sample_interval, frames_per_clip=scan_options.frames_per_clip,
    )  # fmt: skip
    ours = {"frame AUC": metrics.frame_auc, "frame AP": metrics.frame_ap, "pixel AUC": metrics.pixel_auc}[benchmark.paper_metric]
    return EvalResult(
        dataset=options.dataset, title=benchmark.title, protocol=options.protocol, model=scan_options.model,
        model_trained=model_trained(scan_options), sample_interval=scan_options.sample_interval,
        frames_per_clip=scan_options.frames_per_clip, anomaly_types=list(scan_options.anomaly_types),
        n_videos=len(videos), n_scored=metrics.n_scored, n_failed=len(failed), n_too_short=metrics.n_too_short,
        n_frames=metrics.n_frames, frame_auc=metrics.frame_auc, frame_ap=metrics.frame_ap,
        video_mean=metrics.video_mean, video_metric=metrics.video_metric, n_videos_skipped=metrics.n_videos_skipped,
        pixel_auc=metrics.pixel_auc, paper_metric=benchmark.paper_metric,
        paper_value=benchmark.paper_value, ours_for_paper=None if ours is None else 100 * ours,
        failed=[f"{uri}: {why}" for uri, why in failed.items()],
    )  # fmt: skip


@dataclass(frozen=True)
class Metrics:
    n_scored: int  # videos in the metrics
    n_too_short: int  # scored but shorter than one window (full_windows_only): left out, as the reference does
    n_frames: int  # labelled frames the frame metrics pool
    frame_auc: float
    frame_ap: float | None  # XD-Violence only (the paper's metric there)
    video_mean: float | None  # per-video mean of `video_metric`
    video_metric: str  # 'auc' | 'ap'
    n_videos_skipped: int  # single-class videos left out of the per-video mean
    pixel_auc: float | None  # with pixel=True


def metrics_of(
    benchmark: Benchmark,
    videos: list[BenchmarkVideo],
    scored: dict[str, ScoredVideo],
    *,
    protocol: str = "reference",
    pixel: bool = False,
    sample_interval: int | None = None,
    frames_per_clip: int = 8,
) -> Metrics:
    """The benchmark's numbers from the model's output per video (uri -> ScoredVideo; videos
    missing from `scored` are left out), as `protocol` (PROTOCOLS) defines them. Pure: no OUT, no
    Ray. sample_interval: the one the videos were scored with (default: the benchmark's)."""
    from lavida_core.vad_metrics import micro_score, per_video_mean

    rules = protocol_of(protocol)
    interval = benchmark.sample_interval if sample_interval is None else sample_interval
    window = frames_per_clip * interval if rules.full_windows_only and interval != SAMPLE_KEYFRAMES else 1  # keyframes: no fixed window
    kept = [(video, scored[video.uri], _scored_length(scored[video.uri].n_frames, window)) for video in videos if video.uri in scored]
    too_short = [video for video, _, length in kept if length == 0]
    kept = [item for item in kept if item[2] > 0]
    if not kept:
        raise UserError(
            f"{benchmark.title}: none of the {len(videos)} test videos could be scored ({len(too_short)} shorter than one window)"
        )
    pairs = [_frame_pair(video, result, length, rules) for video, result, length in kept]  # (labels [n], scores [n])
    video_metric = rules.video_metric_xd_violence if benchmark.paper_metric == "frame AP" else "auc"
    video_mean = per_video_mean(pairs, video_metric, skip_single_class=rules.skip_single_class_videos)
    return Metrics(
        n_scored=len(pairs), n_too_short=len(too_short), n_frames=int(sum(len(labels) for labels, _ in pairs)),
        frame_auc=micro_score(pairs, "auc"), frame_ap=micro_score(pairs, "ap") if benchmark.paper_metric == "frame AP" else None,
        video_mean=video_mean.mean, video_metric=video_metric, n_videos_skipped=video_mean.n_skipped,
        pixel_auc=pixel_auc_of(kept, rules) if pixel else None,
    )  # fmt: skip


def _scored_length(n_frames: int, window: int) -> int:
    """Frames that count: all, or (window > 1) the whole windows only, the tail dropped."""
    return n_frames // window * window


def _frame_pair(video: BenchmarkVideo, result: ScoredVideo, length: int, rules: EvalProtocol) -> tuple[np.ndarray, np.ndarray]:
    from lavida_core.vad_metrics import logits_from_scores, scores_to_frames

    if rules.frame_scores == "logits":
        values = result.score_logits if result.score_logits is not None else logits_from_scores(result.scores)
    else:
        values = result.scores
    frame_scores = scores_to_frames(result.frame_indices, values, result.n_frames)  # [n_frames]
    labels = video.labels.for_frames(result.n_frames)[:length]
    return labels, frame_scores[: len(labels)]


def pixel_auc_of(kept: list[tuple[BenchmarkVideo, ScoredVideo, int]], rules: EvalProtocol) -> float:
    """Pooled pixel AUC over the sampled frames that count, as `rules.pixel_maps` makes the maps."""
    from lavida_core.vad_metrics import PixelAuc

    accumulator = PixelAuc()
    for video, result, length in kept:
        for predicted, truth in _pixel_chunks(video, result, length, rules):
            accumulator.add(predicted, truth)
    return accumulator.value()


def _pixel_chunks(video: BenchmarkVideo, result: ScoredVideo, length: int, rules: EvalProtocol) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(predicted [N, h, w], truth [N, H, W]) per chunk of the video's sampled frames below `length`."""
    from lavida_core.vad_metrics import reference_pixel_truth

    n_sampled = int(np.count_nonzero(result.frame_indices < length))  # frame_indices ascend
    for start in range(0, n_sampled, PIXEL_CHUNK):
        chunk = slice(start, min(start + PIXEL_CHUNK, n_sampled))
        truth = video.pixel_masks.masks(result.frame_indices[chunk].tolist())  # [N, Hg, Wg]
        if rules.pixel_maps == "logits":
            if result.pixel_logits is None:
                raise UserError(
                    "pixel AUC of the reference protocol needs the mask logits (ScoredVideo.pixel_logits; see score_in_process)"
                )
            yield result.pixel_logits[chunk], reference_pixel_truth(truth, rules.pixel_size)
        else:
            yield _mask_x_score(result, chunk), truth


def _mask_x_score(result: ScoredVideo, chunk: slice) -> np.ndarray:
    """[N, H, W] float32: the binary mask times the frame's score (0 where no mask)."""
    from lavida_core.rle import decode_rle

    rles, values = result.masks[chunk], result.scores[chunk]
    maps = np.zeros((len(values), result.height, result.width), dtype=np.float32)  # [N, H, W]
    for i, (rle, value) in enumerate(zip(rles, values)):
        if rle is not None:
            maps[i] = decode_rle(rle) * value
    return maps


# --- logits in process: the reference's pixel maps ----------------------------------------------
#
# OUT keeps each sampled frame's binary mask and score, not the mask logits the reference pools for
# pixel AUC (a 256 x 256 float map per frame would multiply the frames table's size for every scan).
# So `--pixel --protocol reference` runs the model once more over the scanned videos here, on this
# process (the scan's clips, `--device`), keeping the logits, and scores that pass: its frame scores
# are the raw object-score logits too, so no number depends on a sigmoid round trip.

CLIPS_PER_BATCH = 4


def rescore_with_logits(options: ScanOptions, uris: list[str], *, whole_windows_only: bool) -> dict[str, ScoredVideo]:
    """uri -> the video scored in process with its logits (the scan's model, anomaly types and clips)."""
    from jobs.scan.detect import load_class

    detector = load_class(options.detector_class).load(
        options.model, device=options.device, dtype=options.dtype, base_paths=options.model_base
    )
    log.info("pixel AUC (reference protocol): scoring %d videos again in process for their mask logits", len(uris))
    return {
        uri: score_in_process(
            detector,
            uri,
            anomaly_types=list(options.anomaly_types),
            frames_per_clip=options.frames_per_clip,
            sample_interval=options.sample_interval,
            whole_windows_only=whole_windows_only,
            scaler=frame_scaler(options),  # the frames the scan scored
        )  # fmt: skip
        for uri in uris
    }


def score_in_process(
    detector,
    uri: str,
    *,
    anomaly_types: list[str],
    frames_per_clip: int,
    sample_interval: int,
    whole_windows_only: bool = True,
    scaler: FrameScaler | None = None,
) -> ScoredVideo:
    """One video through `detector` (LavidaDetector's interface) here, clip batch by clip batch: the
    clips `lavida scan` plans (whole_windows_only: without a short last clip, which the reference
    never scores), with the object-score logits and the reference's pixel maps of every sampled frame;
    `scaler`: the frames at the model's sizes, as a --frames-at-model-size scan reads them."""
    from jobs.video.reader import VideoError, open_video
    from lavida_core.frames import frame_size
    from lavida_core.rle import encode_rles
    from lavida_core.vad_metrics import reference_pixel_logits

    indices, scores, logits, masks, maps = [], [], [], [], []
    try:
        with open_video(uri) as opened:
            n_frames = opened.info.n_frames
            clips = [c for c in opened.plan(frames_per_clip, sample_interval) if len(c) == frames_per_clip or not whole_windows_only]
            height = width = 0  # stays 0 for a video without a clip to score (left out of the metrics)
            for start in range(0, len(clips), CLIPS_PER_BATCH):
                batch = clips[start : start + CLIPS_PER_BATCH]
                frames = [opened.read(c, scaler)[0] for c in batch]  # [T, H, W, 3] each (or ScaledClips)
                height, width = frame_size(frames[0])
                for clip, found in zip(batch, detector.detect_batch(frames, anomaly_types)):
                    if found.score_logits is None or found.mask_logits is None:
                        raise UserError(f"the detector {type(detector).__name__} gives no logits; the reference's pixel AUC needs them")
                    indices.extend(clip.tolist())
                    scores.append(found.scores)
                    logits.append(found.score_logits)
                    masks.extend(encode_rles(found.masks))
                    maps.append(reference_pixel_logits(found.mask_logits))  # [T, 158, 238]
    except VideoError as error:
        raise UserError(f"cannot read {uri} again ({error.kind}): {error}") from error
    empty = np.zeros(0, dtype=np.float32)
    return ScoredVideo(
        n_frames, np.array(indices, dtype=np.int64), np.concatenate(scores or [empty]).astype(np.float64), masks, int(height), int(width),
        score_logits=np.concatenate(logits or [empty]).astype(np.float64),
        pixel_logits=np.concatenate(maps) if maps else np.zeros((0, 158, 238), dtype=np.float32),
    )  # fmt: skip


# --- output -----------------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def format_result(result: EvalResult) -> str:
    from jobs.common.output import format_table

    trained = {True: "trained", False: "UNTRAINED: random weights", None: "unknown"}[result.model_trained]
    too_short = f" ({_count(result.n_too_short, 'video')} shorter than one clip window, left out)" if result.n_too_short else ""
    header = (
        f"{result.title}: {result.n_scored} of {result.n_videos} test videos scored"
        f"{f' ({result.n_failed} failed, left out)' if result.n_failed else ''}, {result.n_frames} frames; "
        f"sample interval {sampling(result.sample_interval)}, {result.frames_per_clip} frames per clip; model {result.model} ({trained}); "
        f"protocol {result.protocol}{too_short}"
    )
    paper_for = {"frame AUC": "frame_auc", "frame AP": "frame_ap", "pixel AUC": "pixel_auc"}[result.paper_metric]
    kept = result.n_scored - result.n_videos_skipped
    skipped = f"; {result.n_videos_skipped} single-class skipped" if result.n_videos_skipped else ""
    rows = [
        ("frame AUC (micro, all frames)", "frame_auc", result.frame_auc),
        ("frame AP (micro, all frames)", "frame_ap", result.frame_ap),
        (f"video mean {result.video_metric.upper()} ({_count(kept, 'video')}{skipped})", "video_mean", result.video_mean),
        (f"pixel AUC (pooled, {PIXEL_MAPS[PROTOCOLS[result.protocol].pixel_maps]})", "pixel_auc", result.pixel_auc),
    ]
    table = [
        (
            label,
            _percent(value),
            f"{result.paper_value:.2f}" if key == paper_for and result.paper_value is not None else "-",
            follows(result, key),
        )
        for label, key, value in rows
        if value is not None or key == paper_for
    ]
    return header + "\n" + format_table(("metric (%)", "ours", "paper", "definition"), table).rsplit("\n", 1)[0]


PIXEL_MAPS = {"logits": "mask logits", "mask_x_score": "mask x score"}


def follows(result: EvalResult, key: str) -> str:
    """Whose definition a printed number follows: the protocol's, or the paper's where the paper and
    the reference disagree (XD-Violence: the paper reports frame AP; the reference's metric switch
    never selects AP, so its validation prints frame AUC and a per-video AUC mean)."""
    if result.paper_metric == "frame AP" and key == "frame_ap":
        return "paper (the reference never computes it)" if result.protocol == "reference" else "paper"
    if result.paper_metric == "frame AP" and result.protocol == "reference":
        return "reference (the paper reports AP)"
    return result.protocol


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=list(BENCHMARKS), help="the benchmark")
    parser.add_argument(
        "--root", required=True, metavar="DIR", help="the dataset's folder, in its published layout (see jobs/eval/vad_datasets.py)"
    )
    parser.add_argument("--out", required=True, metavar="OUT", help="where the scan writes its tables (re-runs skip what is there)")
    parser.add_argument(
        "--sample-interval",
        type=sample_interval_arg,
        metavar="N|keyframes",
        help="score every N-th frame, or the keyframes (default: the paper's: "
        + ", ".join(f"{k} {b.sample_interval}" for k, b in BENCHMARKS.items())
        + ")",
    )
    parser.add_argument("--frames-per-clip", type=int, default=8, metavar="N", help="sampled frames per clip (default 8)")
    parser.add_argument(
        "--anomaly", action="append", default=[], metavar="TEXT", help="an anomaly type (repeatable; default: the dataset's list)"
    )
    parser.add_argument("--pixel", action="store_true", help="also compute pixel AUC (UCSD Ped2, ShanghaiTech, UBnormal)")
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="reference",
        help="how the test split is read and each number defined: 'reference' (default) as the reference code does "
        "(VitaminCreed/LAVIDA), 'lavida' with our documented differences (README, protocol table)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    add_runner_arguments(parser)


def run(args: argparse.Namespace) -> int:
    result = evaluate(
        EvalOptions(
            dataset=args.dataset,
            root=args.root,
            sample_interval=args.sample_interval,
            anomaly_types=tuple(args.anomaly),
            pixel=args.pixel,
            protocol=args.protocol,
            scan=ScanOptions(source=None, out=args.out, frames_per_clip=args.frames_per_clip, **runner_fields(args)),
        )  # fmt: skip
    )
    print(json.dumps(asdict(result), indent=2) if args.format == "json" else format_result(result))
    return 0
