"""`lavida search OUT "DESCRIPTION"`: forensic search — retrieve the best clips from the index the
scan wrote, then LAVIDA with the description as the anomaly type re-scores only those.

1. Index (at scan time): one CLIP image embedding per clip, in OUT's `embeddings` table
   (`lavida index OUT` back-fills an OUT scanned without them).
2. Retrieve (jobs/search/retrieve.py): the description's CLIP text embedding -> the `--candidates K`
   most similar clips of the candidate videos, exact, in DuckDB.
3. Re-rank: those clips and their neighbours (so an event has its extent) go through the scan's
   own job (`jobs.scan.job.scan`, kind='search': same decode, actors, writer), which writes
   LAVIDA's scores and masks under OUT/searches/<search_id>/…; the ranked events are printed.

`--exhaustive` re-scores every clip of every candidate instead (audits; today's cost of a scan),
and so does `--source` (videos outside OUT have no index). Candidates: OUT's scanned videos, those a
`--where` SQL filter selects, committed in `--since/--until`. The search id is a digest of the
description, model, sampling and what is re-scored (every candidate, or the retrieved clips): the
same search over the same OUT re-uses its results, and a killed search resumes where it stopped.

The description is data: it travels in ScanOptions to the model and the `runs` table, and is never
put into SQL text. `--where` is user SQL, with the same trust as `lavida query`: it is a boolean
expression over the columns of `videos` plus `n_events` and `max_peak_score` (from `events`), run
as one checked SELECT on a sandboxed connection.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np

from jobs.common.arguments import add_out_arguments, storage_options_of
from jobs.common.errors import UserError
from jobs.common.output import add_format_argument, render
from jobs.out import duck
from jobs.out.clip_index import ShardSet
from jobs.out.duck import fetch
from jobs.query.events import add_event_arguments, event_params, fetch_events
from jobs.search.retrieve import Scope, clip_selection, coverage, top_clips
from lavida_core.tokenizer import CLIP_MAX_LENGTH
from schemas.views import DEFAULT_EVENT_PARAMS, EventParams

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = 64  # clips LAVIDA re-scores per search (bench/RESULTS.md, issue 30)
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
){window}
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
    candidates: int = DEFAULT_CANDIDATES  # clips retrieved from the index for LAVIDA to re-score
    exhaustive: bool = False  # re-score every clip of every candidate video instead
    since: datetime | None = None  # candidates committed to OUT at or after ...
    until: datetime | None = None  # ... and before
    params: EventParams = DEFAULT_EVENT_PARAMS
    storage_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    search_id: str
    out: str  # OUT/searches/<search_id>
    n_candidates: int  # candidate videos
    columns: list[str]
    rows: list[tuple]  # ranked events, highest peak first
    n_rescored_videos: int = 0  # videos LAVIDA re-scored (some clips of each, unless exhaustive)
    n_rescored_clips: int | None = None  # clips it re-scored; None: every clip (exhaustive)
    n_unindexed: int = 0  # candidates without embeddings, which an indexed search could not look at


def search_id(description: str, model: str, sample_interval: int, frames_per_clip: int, selection: str = "exhaustive") -> str:
    """`selection`: 'exhaustive', or a digest of the retrieved clips (what LAVIDA re-scores)."""
    key = "\n".join([description, model, str(sample_interval), str(frames_per_clip)])
    if selection != "exhaustive":
        key += "\n" + selection
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def candidate_uris(con: duckdb.DuckDBPyConnection, options: SearchOptions) -> list[str]:
    """The videos to search: from --source, or OUT's scanned videos (those a --where filter selects,
    committed in --since/--until)."""
    if options.source is not None:
        from jobs.scan.listing import list_videos

        return [video.uri for video in list_videos(options.source, options.storage_options)]
    from jobs.query.sandbox import run_select

    window, params = "", {}
    for name, condition in (("since", "committed_at >= $since"), ("until", "committed_at < $until")):
        if getattr(options, name) is not None:
            window += f" AND {condition}"
            params[name] = getattr(options, name)
    sql = _CANDIDATES_SQL.format(where=options.where if options.where is not None else "true", window=window)
    _, rows = run_select(con, sql, params, what="--where filter")
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
    """Retrieve the description's best clips (or take every candidate, exhaustive), scan them under
    OUT/searches/<id> and rank their events."""
    description = options.description.strip()
    if not description:
        raise UserError('give a description of the anomaly to search for, e.g. "a person climbing a fence"')
    out = duck.open_out(options.out, storage_options=options.storage_options)
    con = duck.connect(out, storage_options=options.storage_options, sandbox=True)
    settings = scan_settings(con)
    model = options.model or settings["model"]
    if options.exhaustive or options.source is not None:
        uris = candidate_uris(con, options)
        return rescore(options, description, model, settings, uris, only_clips=None)
    query = _query_encoder(model)  # refuses a model without an image tower first
    scope = Scope(uris=candidate_uris(con, options) if options.where is not None else None, since=options.since, until=options.until)
    shards = ShardSet.load(out, model)
    covered = coverage(con, model, scope, shards)
    if covered.n_videos and not covered.n_indexed:
        raise UserError(
            f"OUT {options.out} has no clip embeddings from model {model!r} for these videos (scanned before search indexing, "
            f"or by another model): run `lavida index {options.out}`, or re-score every video with --exhaustive"
        )
    if covered.n_missing:
        log.warning(
            "%d of %d candidate videos have no clip embeddings and are NOT searched: run `lavida index %s`, or use --exhaustive",
            covered.n_missing,
            covered.n_videos,
            options.out,
        )
    hits = top_clips(con, _query_vector(query, description), model=model, scope=scope, k=options.candidates, shards=shards)
    selection = clip_selection(con, hits)
    result = rescore(options, description, model, settings, sorted(selection), only_clips=selection)
    log.info(
        "retrieved %d clips of %d videos (best similarity %s) from %d indexed candidates (%s)",
        len(hits),
        len(selection),
        f"{hits[0].similarity:.3f}" if hits else "-",
        covered.n_indexed,
        f"{len(shards.shards)} index shards of {shards.n_vectors} clips, the rest exact" if shards.shards else "exact",
    )
    return dataclasses.replace(result, n_candidates=covered.n_videos, n_unindexed=covered.n_missing)


def _query_encoder(model: str):
    from lavida_core.clip_query import ClipQuery
    from lavida_core.errors import InputError

    try:
        return ClipQuery.load(model)
    except InputError as error:
        raise UserError(str(error)) from None


def _query_vector(query, description: str) -> np.ndarray:
    embedded = query.embed(description)
    if embedded.truncated:
        log.warning(
            "the description is %d tokens; CLIP's text tower reads the first %d: retrieval uses only its start "
            "(LAVIDA re-scores with all of it)",
            embedded.n_tokens,
            CLIP_MAX_LENGTH,
        )
    return embedded.vector


def rescore(
    options: SearchOptions, description: str, model: str, settings: dict, uris: list[str], *, only_clips: dict | None
) -> SearchResult:
    """LAVIDA with the description over these videos (every clip, or `only_clips`) into OUT/searches/<id>; ranked events."""
    from jobs.scan.job import ScanOptions, scan

    selection = "exhaustive"
    if only_clips is not None:
        listed = "\n".join(f"{uri}\t{','.join(map(str, clips))}" for uri, clips in sorted(only_clips.items()))
        selection = hashlib.sha256(listed.encode("utf-8")).hexdigest()
    the_id = search_id(description, model, settings["sample_interval"], settings["frames_per_clip"], selection)
    results_out = duck.open_out(options.out, storage_options=options.storage_options).join("searches", the_id)
    n_clips = sum(len(clips) for clips in only_clips.values()) if only_clips is not None else None
    if not uris:
        log.info("search %s: no candidate videos", the_id)
        return SearchResult(the_id, results_out, 0, list(RANKED_COLUMNS), [], 0, n_clips)
    summary = scan(
        ScanOptions(
            source=None,
            uris=tuple(uris),
            only_clips=only_clips,
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
    return SearchResult(the_id, results_out, len(uris), columns, rows, len(uris), n_clips)


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
    which.add_argument(
        "--source", metavar="SOURCE", help="search these videos (folder, glob or s3:// prefix) instead; re-scores all of them (no index)"
    )
    parser.add_argument("--top-k", type=int, default=20, metavar="K", help="print the K best events (default 20)")
    parser.add_argument(
        "--candidates", type=int, default=DEFAULT_CANDIDATES, metavar="K",
        help=f"clips retrieved from OUT's clip index for LAVIDA to re-score, with their neighbours (default {DEFAULT_CANDIDATES})",
    )  # fmt: skip
    parser.add_argument(
        "--exhaustive", action="store_true", help="re-score every clip of every candidate video with LAVIDA (audits; costs a scan)"
    )
    parser.add_argument("--since", metavar="TIME", help="only videos committed to OUT at or after TIME (ISO date or date-time, UTC)")
    parser.add_argument("--until", metavar="TIME", help="only videos committed to OUT before TIME (ISO date or date-time, UTC)")
    parser.add_argument("--model", help="a preset name or a model folder (default: the model OUT was scanned with)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the detector runs (default cpu)")
    parser.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start a local Ray)")
    add_event_arguments(parser)
    add_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    if args.candidates < 1:
        raise UserError(f"--candidates must be >= 1, got {args.candidates}")
    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    if args.source is not None and (since or until):
        raise UserError("--since/--until select among OUT's videos (when they were committed); they do not apply to --source")
    if since is not None and until is not None and since >= until:
        raise UserError(f"--since {args.since} is not before --until {args.until}")
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
            candidates=args.candidates,
            exhaustive=args.exhaustive,
            since=since,
            until=until,
            params=event_params(args),
            storage_options=storage_options_of(args),
        )
    )
    print(render(args.format, result.columns, result.rows))
    rescored = "every clip" if result.n_rescored_clips is None else f"{result.n_rescored_clips} clips"
    log.info(
        "search %s over %d videos: LAVIDA re-scored %s of %d; all results: %s",
        result.search_id,
        result.n_candidates,
        rescored,
        result.n_rescored_videos,
        result.out,
    )
    if result.n_unindexed:
        log.warning("%d candidate videos have no clip embeddings and were not searched (lavida index OUT)", result.n_unindexed)
    return 0


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it names its zone), or None."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a date or date-time; use e.g. 2026-11-30 or 2026-11-30T18:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
