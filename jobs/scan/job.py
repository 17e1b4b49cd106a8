"""`lavida scan`: list an archive, decode sampled clips, run LAVIDA on an actor pool, commit to OUT's Delta tables.

    list (driver, fsspec) -> plan + decode (Ray Data flat_maps, CPU tasks, jobs/video)
        -> detect (Ray Data map_batches, actor pool, LAVIDA) -> write (driver, batched commits)

Other jobs (search, eval) call `scan(ScanOptions(...)) -> ScanSummary`. Stages: jobs/scan/listing.py,
jobs/scan/decode.py, jobs/scan/detect.py, jobs/scan/write.py (which documents the exactly-once commit protocol).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jobs.common.arguments import parse_pairs, parse_storage_options
from jobs.common.errors import EXIT_FAILED_VIDEOS, EXIT_OK, Interrupted, UserError, cause_of
from jobs.common.progress import Progress
from jobs.out.leases import LEASES
from jobs.out.storage import is_remote
from jobs.out.tables import OutUnavailable
from jobs.scan.listing import VideoFile, describe_uris, list_videos
from jobs.scan.options import (
    DEFAULT_ANOMALY_TYPES,
    DEFAULT_CLIPS_PER_SEGMENT,
    DEFAULT_COMMIT_EVERY,
    DEFAULT_COMMIT_SECONDS,
    DEFAULT_FRAMES_PER_CLIP,
    DEFAULT_PLAN_BYTES,
    DEFAULT_SAMPLE_INTERVAL,
)
from jobs.scan.ray_session import check_reachable, connect_ray
from lavida_core.clips import SAMPLE_KEYFRAMES
from schemas.stage_rows import DetectedRow
from schemas.tables import SCHEMA_VERSION, TABLE_NAMES

if TYPE_CHECKING:
    from jobs.scan.write import OutWriter, ToScan

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ScanOptions:
    """Everything one scan (or a search's re-scan) needs; see `lavida scan --help`."""

    source: str | None  # a folder, a glob or an s3:// prefix; None when `uris` is given
    out: str  # a local folder or an s3:// prefix
    model: str = "tiny"  # a preset name or a model folder (LavidaDetector.load)
    anomaly_types: tuple[str, ...] = DEFAULT_ANOMALY_TYPES
    sample_interval: int = DEFAULT_SAMPLE_INTERVAL
    frames_per_clip: int = DEFAULT_FRAMES_PER_CLIP
    device: str = "cpu"  # 'cpu' | 'cuda'
    dtype: str | None = None  # 'float32' | 'bfloat16'; None: bfloat16 on cuda, float32 on cpu (LavidaDetector)
    model_base: dict[str, str] = field(default_factory=dict)  # a small model folder's bases, where mounted
    ray_address: str | None = None  # join this cluster; None starts (or reuses) a local Ray
    rescan: bool = False  # redo videos that are already committed in OUT (also with another profile)
    batch_videos: int = DEFAULT_COMMIT_EVERY  # commit every N finished videos ...
    batch_seconds: float = DEFAULT_COMMIT_SECONDS  # ... or every T seconds, whichever comes first
    clips_per_segment: int = DEFAULT_CLIPS_PER_SEGMENT  # a longer video is decoded (and committed) in segments
    plan_bytes: int = DEFAULT_PLAN_BYTES  # local files this big are planned first (segments in parallel); 0: all
    decode_cpus: int = 1  # Ray CPUs each decode task reserves, and the FFmpeg threads it decodes with
    frames_at_model_size: bool = False  # the decoder converts frames at the model's input sizes (jobs/video/frame_scaling.py)
    batch_size: int = 4  # clips per detect call
    num_actors: int = 1  # detector actors in the pool
    gpus_per_actor: float = 0.0  # num_gpus per actor (0 on CPU)
    kind: str = "scan"  # 'scan' | 'search' | 'index' (embeddings only: jobs/search/index.py; written to the runs table)
    description: str | None = None  # the search text for kind='search'
    uris: tuple[str, ...] | None = None  # explicit videos instead of listing `source`
    # uri -> the clips to score (a search's candidates, jobs/search); None: every clip of every video
    only_clips: dict[str, tuple[int, ...]] | None = None
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for s3:// (endpoint, keys)
    # "module:Class" with LavidaDetector's interface (`load`, `trained`, `detect_batch`): another
    # detector (a baseline, or a test's deterministic fake) through the same pipeline
    detector_class: str = "lavida_core.detector:LavidaDetector"


@dataclass(frozen=True)
class ScanSummary:
    run_id: str
    n_ok: int
    n_failed: int
    n_skipped: int


def scan(options: ScanOptions) -> ScanSummary:
    """Run the whole pipeline for `options`; returns the run's id and counts.

    Connects to `options.ray_address` (or reuses an already initialised Ray, or starts a local one).
    Raises UserError for bad options, an unreadable source or OUT, or a profile OUT does not hold.
    """
    from jobs.scan.write import OutWriter, WriterOptions

    validate(options)
    videos = _list(options)
    run_id = new_run_id()
    started_at = datetime.now(UTC)
    card = model_card(options)
    writer = OutWriter(
        WriterOptions(
            out=options.out,
            storage_options=dict(options.storage_options),
            profile=profile_of(options),
            rescan=options.rescan,
            batch_videos=options.batch_videos,
            batch_seconds=options.batch_seconds,
            subset=options.only_clips is not None,
            index=options.kind == "index",
        ),
        run_id,
    )
    try:
        plan = writer.start(videos, run_row(options, run_id, started_at, card=card))
        n_skipped = plan.n_done + len(plan.held)
        log.info(
            "run %s: %d videos to scan, %d already done, %d being scanned by another run (skipped)",
            run_id,
            len(plan.todo),
            plan.n_done,
            len(plan.held),
        )
        if card:
            warn = "WARNING" in card or card.startswith("trained weights: NO")
            (log.warning if warn else log.info)("model %s: %s", options.model, card)
        model_trained: list[bool] = []
        try:
            if plan.todo:
                _run_pipeline(options, plan.todo, writer, model_trained)

            def final_row() -> dict:
                summary = ScanSummary(run_id=run_id, n_ok=writer.counts["ok"], n_failed=writer.counts["failed"], n_skipped=n_skipped)
                return run_row(options, run_id, started_at, card=card, summary=summary, model_trained=(model_trained or [None])[0])

            writer.finish(final_row)
        except KeyboardInterrupt:
            writer.commit()  # what is finished is kept (a second Ctrl-C waits for this commit)
            raise Interrupted(
                f"{writer.counts['ok'] + writer.counts['failed']} of {len(plan.todo)} videos were committed by this run "
                f"({writer.counts['ok']} ok, {writer.counts['failed']} failed) and nothing half-written is visible; "
                "run the same command again to resume"
            ) from None
        except OutUnavailable as error:  # OUT's store failed mid-run (a server down, a disk full): say what was kept
            raise OutUnavailable(
                f"{error}; {writer.counts['ok'] + writer.counts['failed']} of {len(plan.todo)} videos were committed by this run "
                "and nothing half-written is visible: run the same command again to resume once OUT's storage is back"
            ) from error
    finally:
        writer.close()
    return ScanSummary(run_id=run_id, n_ok=writer.counts["ok"], n_failed=writer.counts["failed"], n_skipped=n_skipped)


def profile_of(options: ScanOptions):
    from jobs.out.profile import ScanProfile

    return ScanProfile(
        options.model, tuple(options.anomaly_types), options.sample_interval, options.frames_per_clip, options.frames_at_model_size
    )


def validate(options: ScanOptions) -> None:
    """UserError for options that cannot work, before anything starts."""
    problems = [
        (options.source is None) == (options.uris is None) and "give either a source or a list of uris",
        options.sample_interval < 0 and "--sample-interval must be >= 1, or keyframes",
        options.frames_per_clip < 1 and "--frames-per-clip must be >= 1",
        options.batch_size < 1 and "--batch-size must be >= 1",
        options.num_actors < 1 and "--num-actors must be >= 1",
        options.batch_videos < 1 and "--commit-every must be >= 1",
        options.batch_seconds <= 0 and "--commit-seconds must be > 0",
        options.clips_per_segment < 1 and "--clips-per-segment must be >= 1",
        options.plan_bytes < 0 and "--plan-bytes must be >= 0",
        options.decode_cpus < 1 and "--decode-cpus must be >= 1",
        options.gpus_per_actor < 0 and "--gpus-per-actor must be >= 0",
        options.device not in ("cpu", "cuda") and "--device must be cpu or cuda",
        options.device == "cuda" and options.gpus_per_actor == 0 and "--device cuda needs --gpus-per-actor > 0",
        not options.anomaly_types and options.kind != "index" and "give at least one anomaly type (--anomaly TEXT or --prompts FILE)",
        options.kind not in ("scan", "search", "index") and "kind must be 'scan', 'search' or 'index'",
        options.only_clips is not None and any(not clips for clips in options.only_clips.values()) and "only_clips: a video with no clip",
        _out_problem(options.out),
        ("/" in options.model and not os.path.isdir(options.model)) and f"--model {options.model}: no such model folder",
        options.frames_at_model_size
        and options.detector_class != ScanOptions.detector_class
        and "--frames-at-model-size works with LAVIDA's detector only (the sizes come from its model's config)",
    ]
    for problem in problems:
        if problem:
            raise UserError(problem)
    if options.ray_address is not None:
        check_reachable(options.ray_address)


OUT_ENTRIES = frozenset({*TABLE_NAMES, "searches", LEASES})  # what an OUT folder holds


def _out_problem(out: str) -> str | None:
    """Why a local OUT cannot be written, or None: it is a file, or a folder of other things."""
    if "://" in out or not os.path.exists(out):
        return None
    if not os.path.isdir(out):
        return f"--out {out} is a file; give a folder (created if missing) or an s3:// prefix"
    entries = {name for name in os.listdir(out) if not name.startswith(".")}
    if entries and not entries & OUT_ENTRIES:
        shown = ", ".join(sorted(entries)[:3]) + (", …" if len(entries) > 3 else "")
        return f"--out {out} is a folder of other things ({shown}), not a lavida OUT; give a new or empty folder"
    return None


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def run_row(
    options: ScanOptions,
    run_id: str,
    started_at: datetime,
    *,
    card: str | None,
    summary: ScanSummary | None = None,
    model_trained: bool | None = None,
) -> dict:
    """The run's `runs` row: written at the start (counts null) and rewritten at the end."""
    return {
        "run_id": run_id,
        "kind": options.kind,
        "source": options.source,
        "out": options.out,
        "model": options.model,
        "model_trained": model_trained,
        "anomaly_types": list(options.anomaly_types),
        "sample_interval": options.sample_interval,
        "frames_per_clip": options.frames_per_clip,
        "device": options.device,
        "started_at": started_at,
        "finished_at": datetime.now(UTC) if summary else None,
        "n_ok": summary.n_ok if summary else None,
        "n_failed": summary.n_failed if summary else None,
        "n_skipped": summary.n_skipped if summary else None,
        "description": options.description,
        "schema_version": SCHEMA_VERSION,
        "model_card": card,  # model_card(options), read once per run
        "profile_id": profile_of(options).profile_id,
    }


def model_card(options: ScanOptions) -> str | None:
    """The model's card (lavida_core.model_folders.ModelCard) in one line, read from lavida.json
    without torch or weights; None for another detector class."""
    from lavida_core.config import PRESETS
    from lavida_core.model_folders import PRESET_CARD, model_folder, read_model_card

    if options.detector_class != ScanOptions.detector_class:
        return None
    if options.model in PRESETS:
        return PRESET_CARD.summary()
    folder = model_folder(options.model)
    return read_model_card(folder).summary() if folder is not None else None


def _list(options: ScanOptions) -> list[VideoFile]:
    try:
        if options.uris is not None:
            return describe_uris(list(options.uris), options.storage_options)
        return list_videos(options.source, options.storage_options)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot list {options.source or 'the given uris'}: {error}") from error


def build_dataset(options: ScanOptions, todo: list[ToScan]):
    """The Ray Data pipeline: listed videos -> segments -> decoded clips -> detected clips (jobs/scan/detect.py).

    A video that may be long (a local file of `options.plan_bytes` or more) is planned first, by a task of its
    own, and its segments decode in parallel tasks. Any other video (a short file, or a remote one,
    which one task downloads and decodes whole anyway) goes straight to the decode stage as a ROW_WHOLE
    row, several to a task: an archive of short clips pays one task per few videos, not three per video.
    """
    import ray

    from jobs.scan.decode import DecodeConfig, decode_segment, plan_video

    config = DecodeConfig(
        frames_per_clip=options.frames_per_clip,
        sample_interval=options.sample_interval,
        storage_options=dict(options.storage_options),
        clips_per_segment=options.clips_per_segment,
        num_threads=options.decode_cpus,
        scaler=frame_scaler(options),
    )
    ray.data.DataContext.get_current().raise_original_map_exception = True  # typed errors from the stages (_rows)
    only = options.only_clips or {}
    items = [
        {**dataclasses.asdict(item.video), "kept_clips": list(item.kept_clips), "only_clips": list(only.get(item.video.uri, ()))}
        for item in todo
    ]
    planned_first = [item for item in items if not is_remote(item["uri"]) and item["size_bytes"] >= options.plan_bytes]
    whole = [whole_row(item) for item in items if is_remote(item["uri"]) or item["size_bytes"] < options.plan_bytes]
    branches = []
    if planned_first:
        dataset = ray.data.from_items(planned_first, override_num_blocks=min(len(planned_first), 1000))  # one plan task per video
        dataset = dataset.flat_map(plan_video, fn_kwargs={"config": config}, num_cpus=1)
        dataset = dataset.repartition(target_num_rows_per_block=1)  # one segment per block: they decode in parallel tasks
        branches.append(dataset.flat_map(decode_segment, fn_kwargs={"config": config}, num_cpus=options.decode_cpus))
    if whole:
        dataset = ray.data.from_items(whole, override_num_blocks=whole_blocks(whole))
        branches.append(dataset.flat_map(decode_segment, fn_kwargs={"config": config}, num_cpus=options.decode_cpus))
    dataset = branches[0] if len(branches) == 1 else branches[0].union(branches[1])
    return detect_stage(options, dataset)


def frame_scaler(options: ScanOptions):
    """The decoder's FrameScaler for the model with --frames-at-model-size (jobs/video/frame_scaling.py), else None."""
    if not options.frames_at_model_size:
        return None
    from jobs.video.frame_scaling import scaler_for

    return scaler_for(options.model)


# Videos decoded whole go by tasks of up to WHOLE_VIDEOS_PER_TASK videos and about WHOLE_BYTES_PER_TASK bytes.
WHOLE_VIDEOS_PER_TASK = 8
WHOLE_BYTES_PER_TASK = 16 * 2**20


def whole_row(item: dict) -> dict:
    """A listed video as a ROW_WHOLE row: the decode stage opens it once and decodes every segment."""
    from jobs.scan.decode import video_file, whole_video

    return whole_video(video_file(item), kept_clips=item["kept_clips"], only_clips=item["only_clips"]).as_row()


def whole_blocks(rows: list[dict]) -> int:
    """Blocks (= decode tasks) for videos decoded whole: at most WHOLE_VIDEOS_PER_TASK each, about
    WHOLE_BYTES_PER_TASK bytes each, never fewer than one video per block."""
    by_count = -(-len(rows) // WHOLE_VIDEOS_PER_TASK)
    by_bytes = -(-sum(int(row["size_bytes"]) for row in rows) // WHOLE_BYTES_PER_TASK)
    return max(1, min(len(rows), max(by_count, by_bytes)))


def detect_stage(options: ScanOptions, dataset):
    """The decoded clips through the detector actor pool."""
    import ray

    from jobs.scan.detect import DetectClips

    return dataset.map_batches(
        DetectClips,
        fn_constructor_kwargs={
            "model": options.model,
            "device": options.device,
            "dtype": options.dtype,
            "model_base": dict(options.model_base),
            "anomaly_types": list(options.anomaly_types),
            "detector_class": options.detector_class,
            "embed_only": options.kind == "index",
        },
        batch_size=options.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.num_actors),
        num_gpus=options.gpus_per_actor or None,
        num_cpus=1 if options.gpus_per_actor == 0 else None,
    )


def _run_pipeline(options: ScanOptions, todo: list[ToScan], writer: OutWriter, model_trained: list[bool]) -> None:
    """Stream the detected rows into the writer, which commits them in batches."""
    connect_ray(options.ray_address)
    _check_gpus(options)
    progress = Progress(total=len(todo))
    for row in _rows(build_dataset(options, todo)):
        if not model_trained and row.is_clip:
            model_trained.append(bool(row.model_trained))
        for video in writer.add(row):
            progress.done(video.status, video.uri, video.detail)
    for video in writer.commit():
        progress.done(video.status, video.uri, video.detail)
    progress.close()


def _rows(dataset) -> Iterator[DetectedRow]:
    """The dataset's rows, typed. A detector that refuses its model or device (an InputError raised
    in the actor, which Ray wraps in a RayTaskError) is re-raised as that InputError, which the CLI
    prints as one line, instead of Ray's traceback."""
    try:
        for row in dataset.iter_rows():
            yield DetectedRow.from_row(row)
    except Exception as error:
        cause = cause_of(error)
        if cause is None or cause is error:
            raise
        raise cause from None


def _check_gpus(options: ScanOptions) -> None:
    """UserError for GPU actors the cluster cannot run, or actors that would leave too few CPUs for one
    decode task (each actor takes one CPU, a GPU actor too; a decode task --decode-cpus): with too few
    left, the scan would wait forever."""
    import ray

    resources = ray.cluster_resources()
    if options.gpus_per_actor == 0:
        cpus = resources.get("CPU", 0)
        if cpus < options.num_actors + options.decode_cpus:
            raise UserError(
                f"--num-actors {options.num_actors} detector actors take one CPU each and a decode task "
                f"{options.decode_cpus} (--decode-cpus), but the Ray cluster has {cpus:g} CPUs: use fewer actors or a smaller --decode-cpus"
            )
        return
    if resources.get("GPU", 0) < options.gpus_per_actor:
        raise UserError(
            f"--gpus-per-actor {options.gpus_per_actor} but the Ray cluster has no such GPUs; "
            "use --device cpu --gpus-per-actor 0, or join a GPU cluster with --ray-address"
        )
    cpus = resources.get("CPU", 0)
    if cpus < options.num_actors + options.decode_cpus:
        raise UserError(
            f"--num-actors {options.num_actors} GPU actors take one CPU each and decoding needs {options.decode_cpus} more "
            f"(--decode-cpus), but the Ray cluster has {cpus:g} CPUs: use fewer actors "
            f"(--num-actors {max(1, int(cpus) - options.decode_cpus)}) or a node with more CPUs"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a folder, a glob (quoted) or an s3:// prefix of videos")
    parser.add_argument("--out", required=True, help="a local folder or an s3:// prefix for the Delta tables")
    parser.add_argument("--anomaly", action="append", default=[], metavar="TEXT", help="an anomaly type to look for (repeatable)")
    parser.add_argument("--prompts", metavar="FILE", help="a text file with one anomaly type per line (# comments)")
    parser.add_argument(
        "--sample-interval",
        type=sample_interval_arg,
        default=DEFAULT_SAMPLE_INTERVAL,
        metavar="N|keyframes",
        help=f"score every N-th frame (default {DEFAULT_SAMPLE_INTERVAL}: about 2 frames a second at 30 fps), or only the "
        "keyframes (one intra-frame decode per sample: cheapest for long static cameras; the spacing follows the encoder's GOP)",
    )
    parser.add_argument(
        "--frames-per-clip", type=int, default=DEFAULT_FRAMES_PER_CLIP, metavar="N", help="sampled frames per clip (default 8)"
    )
    add_runner_arguments(parser)


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, device, Ray and storage options: shared by every job that runs the scan pipeline."""
    parser.add_argument("--model", default="tiny", help="a preset name (random weights) or a model folder (default: tiny)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the detector runs (default cpu)")
    parser.add_argument(
        "--model-base", action="append", default=[], metavar="PART=PATH",
        help="where a small model folder's base is mounted (qwen_dir, clip_dir, sam2_path), if not where it was trained",
    )  # fmt: skip
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16"), help="the detector's weights and compute (default: bfloat16 on cuda, float32 on cpu)"
    )
    parser.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start a local Ray)")
    parser.add_argument(
        "--rescan", action="store_true", help="score again videos that OUT already holds (needed to score them with other settings)"
    )
    parser.add_argument(
        "--commit-every", type=int, default=DEFAULT_COMMIT_EVERY, metavar="N",
        help=f"commit to OUT every N finished videos (default {DEFAULT_COMMIT_EVERY}) ...",
    )  # fmt: skip
    parser.add_argument(
        "--commit-seconds", type=float, default=DEFAULT_COMMIT_SECONDS, metavar="T",
        help=f"... or every T seconds, whichever comes first (default {DEFAULT_COMMIT_SECONDS:g}); a kill loses at most this batch",
    )  # fmt: skip
    parser.add_argument(
        "--clips-per-segment", type=int, default=DEFAULT_CLIPS_PER_SEGMENT, metavar="N",
        help=f"decode a long video in segments of N clips, in parallel, committed as they finish (default {DEFAULT_CLIPS_PER_SEGMENT})",
    )  # fmt: skip
    parser.add_argument(
        "--plan-bytes", type=int, default=DEFAULT_PLAN_BYTES, metavar="BYTES",
        help="a local file this big or bigger is planned first and its segments decode in parallel; smaller ones are decoded "
        f"whole, several to a task (default {DEFAULT_PLAN_BYTES}; 0 plans every file: for long low-bitrate recordings)",
    )  # fmt: skip
    parser.add_argument(
        "--decode-cpus", type=int, default=1, metavar="N",
        help="Ray CPUs each decode task reserves and FFmpeg threads it decodes with (default 1: one task per free core)",
    )  # fmt: skip
    parser.add_argument(
        "--frames-at-model-size", action="store_true",
        help="decode tasks scale frames to the sizes the model's towers read (FFmpeg's scaler) instead of handing full-size frames "
        "to the detector to resize: for a detector on CPU over HD video; pixels a little different (another scan profile)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=4, metavar="N", help="clips per detector call (default 4)")
    parser.add_argument("--num-actors", type=int, default=1, metavar="N", help="detector actors (default 1)")
    parser.add_argument("--gpus-per-actor", type=float, metavar="G", help="GPUs per actor (default 1 with --device cuda, else 0)")
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an fsspec storage option for s3:// (e.g. endpoint_url=http://127.0.0.1:8333); repeatable",
    )
    parser.add_argument(
        "--detector-class",
        default=ScanOptions.detector_class,
        metavar="MODULE:CLASS",
        help="advanced: another detector with LavidaDetector's interface (default: %(default)s)",
    )


def runner_fields(args: argparse.Namespace) -> dict:
    """The ScanOptions fields that `add_runner_arguments` parsed."""
    gpus = args.gpus_per_actor if args.gpus_per_actor is not None else (1.0 if args.device == "cuda" else 0.0)
    return dict(
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        model_base=parse_pairs(args.model_base, "--model-base"),
        ray_address=args.ray_address,
        rescan=args.rescan,
        batch_videos=args.commit_every,
        batch_seconds=args.commit_seconds,
        clips_per_segment=args.clips_per_segment,
        plan_bytes=args.plan_bytes,
        decode_cpus=args.decode_cpus,
        frames_at_model_size=args.frames_at_model_size,
        batch_size=args.batch_size,
        num_actors=args.num_actors,
        gpus_per_actor=gpus,
        storage_options=parse_storage_options(args.storage_option),
        detector_class=args.detector_class,
    )


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    summary = scan(options)
    line = f"run {summary.run_id}: {summary.n_ok} ok, {summary.n_failed} failed, {summary.n_skipped} skipped"
    if summary.n_failed:
        query = "SELECT uri, status, error FROM videos WHERE status <> 'ok'"
        print(f'{line}; list the failed videos with: lavida query {options.out} "{query}"')
        return EXIT_FAILED_VIDEOS
    print(line)
    return EXIT_OK


def options_from_args(args: argparse.Namespace) -> ScanOptions:
    anomaly_types = list(args.anomaly) + (read_prompts(args.prompts) if args.prompts else [])
    return ScanOptions(
        source=args.source,
        out=args.out,
        anomaly_types=tuple(anomaly_types) or DEFAULT_ANOMALY_TYPES,
        sample_interval=args.sample_interval,
        frames_per_clip=args.frames_per_clip,
        **runner_fields(args),
    )


def sample_interval_arg(text: str) -> int:
    """--sample-interval: N >= 1, 'keyframes' (SAMPLE_KEYFRAMES), or -1 for anything else, which
    `validate` refuses in one line (0 must never mean keyframes by accident)."""
    if text.strip().lower() == "keyframes":
        return SAMPLE_KEYFRAMES
    try:
        return int(text) if int(text) >= 1 else -1
    except ValueError:
        return -1


def read_prompts(path: str) -> list[str]:
    """Anomaly types from a file: one per line; blank lines and lines starting with # are ignored."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = [line.strip() for line in file]
    except OSError as error:
        raise UserError(f"cannot read --prompts {path}: {error.strerror}") from None
    names = [line for line in lines if line and not line.startswith("#")]
    if not names:
        raise UserError(f"--prompts {path} has no anomaly type (one per line)")
    return names
