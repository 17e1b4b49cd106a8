"""`lavida search OUT "DESCRIPTION"`: forensic search — LAVIDA with the description as the anomaly type.

Candidates: OUT's scanned videos (default), those a `--where` SQL filter selects, or `--source`.
The candidates go through the same Ray Data job as the scan (`jobs.scan.job.scan`, kind='search'),
which writes its results in the same schema under

    OUT/searches/<search_id>/{frames,clips,videos,runs}/…

so `lavida events|query|report OUT/searches/<search_id>` work on them as on any OUT. The search id
is a digest of (description, model, sample interval, frames per clip): the same search again
scans only candidates it has not scanned yet, and a killed search resumes where it stopped.
The ranked events (highest peak first) of the candidates are printed.

The description is data: it travels in ScanOptions to the model and the `runs` table, and is never
put into SQL text. `--where` is user SQL, with the same trust as `lavida query`: it is a boolean
expression over the columns of `videos` plus `n_events` and `max_peak_score` (from `events`), run
as one checked SELECT on a sandboxed connection.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from dataclasses import dataclass, field

import duckdb

from jobs.common.arguments import add_out_arguments, storage_options_of
from jobs.common.errors import UserError
from jobs.common.output import add_format_argument, render
from jobs.out import duck
from jobs.out.duck import fetch
from jobs.query.events import add_event_arguments, event_params, fetch_events
from schemas.views import DEFAULT_EVENT_PARAMS, EventParams

log = logging.getLogger(__name__)

RANKED_COLUMNS = ("peak_score", "uri", "start_s", "end_s", "peak_frame_index", "mean_score", "video_id", "event_index")

# `--where` filters this relation: one row per scanned video, with its event statistics.
_CANDIDATES_SQL = """
WITH event_stats AS (
    SELECT video_id, count(*) AS n_events, max(peak_score) AS max_peak_score FROM events GROUP BY video_id
), candidates AS (
    SELECT v.*, coalesce(e.n_events, 0) AS n_events, e.max_peak_score
    FROM videos AS v LEFT JOIN event_stats AS e USING (video_id)
    WHERE v.status = 'ok'
)
SELECT uri FROM candidates
WHERE (
{where}
)
ORDER BY uri
"""


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    out: str
    description: str
    where: str | None = None  # SQL filter over OUT's videos (see module docstring)
    source: str | None = None  # search these videos instead of OUT's
    model: str | None = None  # None: the model of OUT's latest scan, else 'tiny'
    device: str = "cpu"
    ray_address: str | None = None
    top_k: int = 20
    params: EventParams = DEFAULT_EVENT_PARAMS
    storage_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    search_id: str
    out: str  # OUT/searches/<search_id>
    n_candidates: int
    columns: list[str]
    rows: list[tuple]  # ranked events, highest peak first


def search_id(description: str, model: str, sample_interval: int, frames_per_clip: int) -> str:
    key = "\n".join([description, model, str(sample_interval), str(frames_per_clip)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def candidate_uris(con: duckdb.DuckDBPyConnection, options: SearchOptions) -> list[str]:
    """The videos to search: from --source, from a --where filter over OUT, or all of OUT's scanned videos."""
    if options.source is not None:
        from jobs.scan.listing import list_videos

        return [video.uri for video in list_videos(options.source, options.storage_options)]
    from jobs.query.sandbox import run_select

    sql = _CANDIDATES_SQL.format(where=options.where if options.where is not None else "true")
    _, rows = run_select(con, sql, what="--where filter")
    return [uri for (uri,) in rows]


def scan_settings(con: duckdb.DuckDBPyConnection) -> dict:
    """Model and sampling of OUT's latest scan (a search samples frames as the scan did)."""
    from jobs.scan.options import DEFAULT_FRAMES_PER_CLIP, DEFAULT_SAMPLE_INTERVAL

    _, rows = fetch(
        con,
        "SELECT model, sample_interval, frames_per_clip FROM runs WHERE kind = 'scan' ORDER BY started_at DESC LIMIT 1",
    )
    if not rows:
        return {"model": "tiny", "sample_interval": DEFAULT_SAMPLE_INTERVAL, "frames_per_clip": DEFAULT_FRAMES_PER_CLIP}
    model, sample_interval, frames_per_clip = rows[0]
    return {"model": model, "sample_interval": sample_interval, "frames_per_clip": frames_per_clip}


def search(options: SearchOptions) -> SearchResult:
    """Scan the candidates for the description under OUT/searches/<id> and rank their events."""
    from jobs.scan.job import ScanOptions, scan

    description = options.description.strip()
    if not description:
        raise UserError('give a description of the anomaly to search for, e.g. "a person climbing a fence"')
    con = duck.connect(options.out, storage_options=options.storage_options, sandbox=True)
    settings = scan_settings(con)
    model = options.model or settings["model"]
    uris = candidate_uris(con, options)
    the_id = search_id(description, model, settings["sample_interval"], settings["frames_per_clip"])
    results_out = duck.open_out(options.out, storage_options=options.storage_options).join("searches", the_id)
    if not uris:
        log.info("search %s: no candidate videos", the_id)
        return SearchResult(the_id, results_out, 0, list(RANKED_COLUMNS), [])
    summary = scan(
        ScanOptions(
            source=None,
            uris=tuple(uris),
            out=results_out,
            model=model,
            anomaly_types=(description,),
            sample_interval=settings["sample_interval"],
            frames_per_clip=settings["frames_per_clip"],
            device=options.device,
            gpus_per_actor=1.0 if options.device == "cuda" else 0.0,
            ray_address=options.ray_address,
            kind="search",
            description=description,
            storage_options=dict(options.storage_options),
        )
    )
    log.info(
        "search %s: %d candidates, %d scanned, %d failed, %d already searched; results in %s",
        the_id,
        len(uris),
        summary.n_ok,
        summary.n_failed,
        summary.n_skipped,
        results_out,
    )
    columns, rows = rank(results_out, uris, options)
    return SearchResult(the_id, results_out, len(uris), columns, rows)


def rank(results_out: str, uris: list[str], options: SearchOptions) -> tuple[list[str], list[tuple]]:
    """The candidates' events in the search results, highest peak first, top k."""
    con = duck.connect(results_out, storage_options=options.storage_options)
    _, rows = fetch(con, "SELECT video_id FROM videos WHERE list_contains($uris, uri)", {"uris": uris})
    return fetch_events(con, options.params, columns=RANKED_COLUMNS, video_ids=[v for (v,) in rows], order="score", limit=options.top_k)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out_arguments(parser, as_of=False)
    parser.add_argument("description", metavar="DESCRIPTION", help='the anomaly in words, e.g. "a person climbing a fence"')
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--where",
        metavar="SQL",
        help="search only OUT's videos this SQL condition selects; columns: those of `videos`, "
        'plus n_events and max_peak_score (e.g. "n_events > 0 AND duration_s > 60")',
    )
    which.add_argument("--source", metavar="SOURCE", help="search these videos (folder, glob or s3:// prefix) instead")
    parser.add_argument("--top-k", type=int, default=20, metavar="K", help="print the K best events (default 20)")
    parser.add_argument("--model", help="a preset name or a model folder (default: the model OUT was scanned with)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the detector runs (default cpu)")
    parser.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start a local Ray)")
    add_event_arguments(parser)
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    result = search(
        SearchOptions(
            out=args.out,
            description=args.description,
            where=args.where,
            source=args.source,
            model=args.model,
            device=args.device,
            ray_address=args.ray_address,
            top_k=args.top_k,
            params=event_params(args),
            storage_options=storage_options_of(args),
        )
    )
    print(render(args.format, result.columns, result.rows))
    log.info("search %s over %d videos; all results: %s", result.search_id, result.n_candidates, result.out)
    return 0
