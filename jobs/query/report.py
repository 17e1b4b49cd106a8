"""`lavida report OUT --to DIR`: per video a score timeline, per event the peak frame with its mask,
and one DIR/index.html that links them with relative paths (opens from disk, no server).

    DIR/index.html
    DIR/videos/<k>-<video_id>.png           score timeline, events shaded, threshold drawn
    DIR/events/<k>-<video_id>-<e>.png       event e's peak frame with its mask overlaid

Peak frames are decoded from each video's uri (jobs/video/reader.py); a video that is gone is
reported as such on the page.
"""

from __future__ import annotations

import argparse
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from jobs.common.arguments import add_out_arguments, storage_options_of
from jobs.common.errors import UserError
from jobs.out import duck
from jobs.out.duck import fetch
from jobs.out.storage import filesystem_for, is_remote
from jobs.query.events import add_event_arguments, event_params, fetch_events
from jobs.query.report_html import EventItem, RunLine, VideoSection, render_index
from schemas.views import EVENT_COLUMNS, EventParams

log = logging.getLogger(__name__)

PRESIGN_EXPIRY_S = 24 * 3600  # how long an s3:// video's player link works


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out_arguments(parser)
    parser.add_argument("--to", required=True, metavar="DIR", help="folder to write index.html and its pictures into")
    add_event_arguments(parser)
    parser.add_argument("--video", action="append", metavar="VIDEO_ID", help="only this video (repeatable)")


def run(args: argparse.Namespace) -> int:
    params = event_params(args)
    if Path(args.to).exists() and not Path(args.to).is_dir():
        raise UserError(f"--to {args.to} is a file; give a folder for the report (created if missing)")
    storage_options = storage_options_of(args)
    con = duck.connect(args.out, storage_options=storage_options, as_of=args.as_of)
    index = write_report(con, out=args.out, to=Path(args.to), params=params, video_ids=args.video, storage_options=storage_options)
    print(index)
    return 0


def write_report(
    con: duckdb.DuckDBPyConnection,
    *,
    out: str,
    to: Path,
    params: EventParams,
    video_ids: list[str] | None = None,
    storage_options: dict | None = None,
) -> Path:
    """Write the report for OUT's committed videos into `to`; returns the path of index.html."""
    for folder in (to, to / "videos", to / "events"):
        folder.mkdir(parents=True, exist_ok=True)
    events = _events_by_video(con, params, video_ids)
    series = _score_series(con, video_ids)
    sections = []
    for k, video in enumerate(_by_peak(_videos(con, video_ids), events)):
        stem = f"{k:04d}-{_safe(video['video_id'])}"
        section = _video_section(video, series.get(video["video_id"]), events.get(video["video_id"], []), to=to, stem=stem, params=params)
        _add_peak_frames(section, events.get(video["video_id"], []), to=to, stem=stem, storage_options=storage_options)
        if section.events:
            section.player, section.player_note = video_link(section.uri, storage_options)
        sections.append(section)
        log.info("report: %s (%d events)", video["uri"], len(section.events))
    index = to / "index.html"
    index.write_text(render_index(out=out, params=params, runs=_runs(con), videos=sections), encoding="utf-8")
    return index


def _by_peak(videos: list[dict], events: dict[str, list[dict]]) -> list[dict]:
    """Videos with events first, highest peak first (ties by uri), then the others by uri (as `lavida events`)."""

    def key(video: dict) -> tuple:
        peaks = [e["peak_score"] for e in events.get(video["video_id"], [])]
        return (-max(peaks) if peaks else 1.0, video["uri"], video["video_id"])

    return sorted(videos, key=key)


def video_link(uri: str, storage_options: dict | None) -> tuple[str | None, str | None]:
    """(URL a browser can play the video from, note for the reader): a local file's file:// URL, a
    presigned https URL for s3:// (valid PRESIGN_EXPIRY_S), or None with the reason."""
    fs, path = filesystem_for(uri, storage_options)
    if not is_remote(uri):
        if Path(path).is_dir():
            return None, "a folder of frames: nothing to play, see the peak frame"
        if not Path(path).is_file():
            return None, f"the video is no longer at {uri}"
        return Path(path).as_uri(), None
    try:
        url = fs.sign(path, expiration=PRESIGN_EXPIRY_S)
    except (NotImplementedError, OSError, ValueError) as error:
        return None, f"no playable link for {uri} ({type(error).__name__})"
    until = datetime.now(UTC) + timedelta(seconds=PRESIGN_EXPIRY_S)
    return url, f"presigned link, valid until {until:%Y-%m-%d %H:%M} UTC (re-run the report for a new one)"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list[dict]:
    columns, rows = fetch(con, sql, params)
    return [dict(zip(columns, row)) for row in rows]


def _runs(con: duckdb.DuckDBPyConnection) -> list[RunLine]:
    rows = _rows(con, "SELECT * FROM runs ORDER BY started_at, run_id")
    return [
        RunLine(
            run_id=r["run_id"],
            kind=r["kind"],
            model=r["model"],
            model_trained=r["model_trained"],
            model_card=r.get("model_card"),
            anomaly_types=list(r["anomaly_types"] or []),
            description=r["description"],
            started_at=r["started_at"].isoformat(timespec="seconds") if r["started_at"] else "",
        )
        for r in rows
    ]


def _videos(con: duckdb.DuckDBPyConnection, video_ids: list[str] | None) -> list[dict]:
    sql = "SELECT video_id, uri, status, error, duration_s FROM videos"
    if video_ids is None:
        return _rows(con, sql + " ORDER BY uri, video_id")
    return _rows(con, sql + " WHERE list_contains($ids, video_id) ORDER BY uri, video_id", {"ids": list(video_ids)})


def _events_by_video(con, params: EventParams, video_ids: list[str] | None) -> dict[str, list[dict]]:
    columns, rows = fetch_events(con, params, columns=EVENT_COLUMNS, video_ids=video_ids)
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        event = dict(zip(columns, row))
        grouped.setdefault(event["video_id"], []).append(event)
    return grouped


def _score_series(con, video_ids: list[str] | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every video's sampled (timestamps float64 [N], scores float32 [N]) in time order, in two queries.

    One pass over `frames` for the whole report (not one query per video, which would list OUT's
    files once per video).
    """
    where, values = ("", None) if video_ids is None else (" WHERE list_contains($ids, video_id)", {"ids": list(video_ids)})
    table = duck.fetch_arrow(con, f"SELECT timestamp_s, score FROM frames{where} ORDER BY video_id, timestamp_s, frame_index", values)
    _, counts = fetch(con, f"SELECT video_id, count(*) FROM frames{where} GROUP BY video_id ORDER BY video_id", values)
    times = table.column("timestamp_s").to_numpy()  # [total]
    scores = table.column("score").to_numpy()  # [total]
    series, start = {}, 0
    for video_id, n in counts:
        series[video_id] = (times[start : start + n], scores[start : start + n])
        start += n
    return series


def _video_section(
    video: dict,
    series: tuple[np.ndarray, np.ndarray] | None,
    events: list[dict],
    *,
    to: Path,
    stem: str,
    params: EventParams,
) -> VideoSection:
    """The video's timeline PNG (for a scanned video) and its page section."""
    from jobs.query.report_plots import timeline_png

    section = VideoSection(
        video_id=video["video_id"],
        uri=video["uri"],
        status=video["status"],
        error=video["error"],
        duration_s=video["duration_s"],
        max_score=None,
        timeline=None,
    )
    if video["status"] != "ok":
        return section
    times, scores = series if series is not None else (np.zeros(0), np.zeros(0, dtype=np.float32))
    section.max_score = float(scores.max()) if len(scores) else None
    section.timeline = f"videos/{stem}.png"
    timeline_png(
        to / section.timeline,
        duration=video["duration_s"],
        times=times,
        scores=scores,
        spans=[(e["start_s"], e["end_s"]) for e in events],
        threshold=params.min_score,
        title=video["uri"],
    )
    return section


def _add_peak_frames(section: VideoSection, events: list[dict], *, to: Path, stem: str, storage_options) -> None:
    """One picture per event: the peak frame decoded from the video, with the peak mask overlaid."""
    from jobs.query.report_plots import overlay_png
    from jobs.video.reader import VideoError, VideoMissing, open_video

    if not events:
        return
    try:
        with open_video(section.uri, storage_options) as video:
            frames, _ = video.read([e["peak_frame_index"] for e in events])
        unavailable = None
    except VideoError as error:
        reason = f"the video is no longer at {section.uri}" if isinstance(error, VideoMissing) else str(error)
        frames, unavailable = None, f"peak frame not shown: {reason}"
        log.warning("report: %s", unavailable)
    for k, event in enumerate(events):
        image, note = None, unavailable
        if frames is not None:
            image = f"events/{stem}-{event['event_index']}.png"
            overlay_png(to / image, frames[k], event["peak_mask_rle"])
            note = None if event["peak_mask_rle"] is not None else "nothing segmented in the peak frame"
        section.events.append(
            EventItem(
                event_index=event["event_index"],
                start_s=event["start_s"],
                end_s=event["end_s"],
                peak_score=event["peak_score"],
                peak_frame_index=event["peak_frame_index"],
                mean_score=event["mean_score"],
                image=image,
                note=note,
            )
        )
