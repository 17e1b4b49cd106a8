"""`lavida index OUT`: back-fill the clip embeddings search retrieves from, without running LAVIDA.

A scan writes each clip's CLIP image embedding with its scores (OUT's `embeddings` table). An OUT
scanned before that (or by a model without an image tower) has none: this command decodes the
clips of every 'ok' video that has no embeddings from the model, runs only the model's CLIP image
tower, and commits the embeddings with the video's `videos` row again (jobs/scan/write.py, index
runs): the same claims, batches and exactly-once rules as a scan, so it may run beside scans, be
killed and re-run. Videos are decoded with the sampling they were scanned with.

Then it brings the approximate clip index up to date (jobs/out/clip_index.py): the embeddings rows no
shard holds become a new shard once there are `--min-shard-rows` of them (default 50,000; fewer are
searched exactly, in under ~0.5 s). The end of each scan does the same, so the index grows by a shard a
night, and never has to be rebuilt.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field

from jobs.common.arguments import add_out_arguments, storage_options_of
from jobs.common.errors import EXIT_FAILED_VIDEOS, EXIT_OK, UserError
from jobs.out import duck
from jobs.out.clip_index import DEFAULT_MIN_ROWS, update_index
from jobs.out.duck import fetch
from jobs.out.profile import sampling

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class IndexOptions:
    out: str
    model: str | None = None  # None: the model of OUT's latest scan
    device: str = "cpu"
    ray_address: str | None = None
    min_shard_rows: int = DEFAULT_MIN_ROWS
    storage_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class IndexSummary:
    model: str
    n_indexed: int
    n_failed: int
    n_skipped: int  # indexed already, or being indexed / scanned by another run
    n_sharded: int = 0  # embeddings put into a new shard of the approximate index


def unindexed(con, model: str) -> dict[tuple[int, int], list[str]]:
    """(sample_interval, frames_per_clip) -> the uris of OUT's 'ok' videos without embeddings from `model`."""
    _, rows = fetch(
        con,
        """
        SELECT v.uri, r.sample_interval, r.frames_per_clip FROM videos AS v JOIN runs AS r ON r.run_id = v.run_id
        WHERE v.status = 'ok'
          AND v.video_id NOT IN (SELECT video_id FROM embeddings WHERE embedding_model = $model)
        ORDER BY v.uri
        """,
        {"model": model},
    )
    groups: dict[tuple[int, int], list[str]] = {}
    for uri, sample_interval, frames_per_clip in rows:
        groups.setdefault((int(sample_interval), int(frames_per_clip)), []).append(uri)
    return groups


def index(options: IndexOptions) -> IndexSummary:
    from jobs.scan.job import ScanOptions, scan
    from jobs.search.search import scan_settings
    from lavida_core.clip_query import ClipQuery
    from lavida_core.errors import InputError

    out = duck.open_out(options.out, storage_options=options.storage_options)
    con = duck.connect(out, storage_options=options.storage_options)
    model = options.model or scan_settings(con)["model"]
    try:
        dim = ClipQuery.load(model).dim  # refuses a model without an image tower, before any video is decoded
    except InputError as error:
        raise UserError(str(error)) from None
    groups = unindexed(con, model)
    if not groups:
        log.info("every video of %s has clip embeddings from %s", options.out, model)
    n_ok = n_failed = n_skipped = 0
    for (sample_interval, frames_per_clip), uris in groups.items():
        log.info(
            "indexing %d videos (sample interval %s, %d per clip) with %s", len(uris), sampling(sample_interval), frames_per_clip, model
        )
        summary = scan(
            ScanOptions(
                source=None,
                uris=tuple(uris),
                out=options.out,
                model=model,
                anomaly_types=(),
                sample_interval=sample_interval,
                frames_per_clip=frames_per_clip,
                device=options.device,
                gpus_per_actor=1.0 if options.device == "cuda" else 0.0,
                ray_address=options.ray_address,
                kind="index",
                storage_options=dict(options.storage_options),
            )
        )
        n_ok, n_failed, n_skipped = n_ok + summary.n_ok, n_failed + summary.n_failed, n_skipped + summary.n_skipped
    fresh = duck.connect(out, storage_options=options.storage_options)  # a snapshot with the back-filled rows
    n_sharded = update_index(out, fresh, model, dim, min_rows=options.min_shard_rows)
    return IndexSummary(model, n_ok, n_failed, n_skipped, n_sharded)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out_arguments(parser, as_of=False)
    parser.add_argument("--model", help="the model whose CLIP image tower embeds the clips (default: the model OUT was scanned with)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the image tower runs (default cpu)")
    parser.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start a local Ray)")
    parser.add_argument(
        "--min-shard-rows", type=int, default=DEFAULT_MIN_ROWS, metavar="N",
        help=f"put the embeddings no index shard holds into a new shard once there are N of them (default {DEFAULT_MIN_ROWS}; "
        "0: whatever there is); fewer are searched exactly",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.min_shard_rows < 0:
        raise UserError(f"--min-shard-rows must be >= 0, got {args.min_shard_rows}")
    summary = index(IndexOptions(out=args.out, model=args.model, device=args.device, ray_address=args.ray_address,
                                 min_shard_rows=args.min_shard_rows, storage_options=storage_options_of(args)))  # fmt: skip
    line = f"indexed {summary.n_indexed} videos with {summary.model}: {summary.n_failed} failed, {summary.n_skipped} skipped"
    if summary.n_sharded:
        line += f"; {summary.n_sharded} clip embeddings into a new index shard"
    print(line)
    return EXIT_FAILED_VIDEOS if summary.n_failed else EXIT_OK
