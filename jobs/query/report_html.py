"""The report's `index.html`: one self-contained page (inline CSS, relative links, no script).

It opens from disk (file://) without a server. Every text that comes from data (uris, errors,
anomaly types, descriptions) is HTML-escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from schemas.views import EventParams


@dataclass(frozen=True, kw_only=True)
class RunLine:
    run_id: str
    kind: str
    model: str
    model_trained: bool | None  # None: the run never loaded a model, or was killed
    model_card: str | None  # runs.model_card: what the model was trained on, and its warning
    anomaly_types: list[str]
    description: str | None
    started_at: str


@dataclass(frozen=True, kw_only=True)
class EventItem:
    event_index: int
    start_s: float
    end_s: float
    peak_score: float
    peak_frame_index: int
    mean_score: float
    image: str | None  # relative path of the peak frame with its mask, None when not available
    note: str | None  # why there is no image, or that nothing was segmented


@dataclass(kw_only=True)
class VideoSection:
    video_id: str
    uri: str
    status: str
    error: str | None
    duration_s: float | None
    max_score: float | None
    timeline: str | None  # relative path of the timeline PNG
    events: list[EventItem] = field(default_factory=list)
    player: str | None = None  # URL the browser plays the video from (file:// or presigned https)
    player_note: str | None = None  # the link's expiry, or why the video cannot be played


_CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #eee; text-align: left; }
.warning { background: #ffcc33; border: 2px solid #b36b00; padding: 10px 14px; font-weight: bold; }
.muted { color: #666; } .error { color: #b00020; }
.events { display: flex; flex-wrap: wrap; gap: 12px; }
.event { border: 1px solid #ccc; padding: 6px; font-size: 12px; width: 330px; }
.event img { width: 320px; image-rendering: pixelated; }
.event video { width: 320px; background: #000; display: block; margin-top: 4px; }
img.timeline { width: 1000px; max-width: 100%; }
"""


def _trained_banner(runs: list[RunLine]) -> str:
    untrained = [r for r in runs if r.model_trained is False]
    unknown = [r for r in runs if r.model_trained is None]
    parts = []
    if untrained:
        models = ", ".join(sorted({escape(r.model) for r in untrained}))
        parts.append(
            f'<p class="warning">The model had no trained weights ({models}: a preset built from its config with '
            "random weights). Its scores and masks do not mean anything: this report shows the pipeline, "
            "not anomalies.</p>"
        )
    warned = sorted({(r.model, r.model_card.split("WARNING: ", 1)[1]) for r in runs if r.model_card and "WARNING: " in r.model_card})
    for model, warning in warned:
        parts.append(f'<p class="warning">Model {escape(model)}: {escape(warning)}. Read its scores with that in mind.</p>')
    if unknown:
        parts.append(
            f'<p class="warning">{len(unknown)} run(s) did not record whether the model had trained weights '
            "(killed, or no video to scan).</p>"
        )
    return "\n".join(parts)


def _runs_table(runs: list[RunLine]) -> str:
    trained = {True: "yes", False: "NO (random weights)", None: "unknown"}
    rows = "".join(
        f"<tr><td>{escape(r.run_id)}</td><td>{escape(r.kind)}</td><td>{escape(r.model)}</td>"
        f"<td>{_trained_cell(r, trained)}</td>"
        f"<td>{escape(', '.join(r.anomaly_types))}</td>"
        f"<td>{escape(r.description or '')}</td><td>{escape(r.started_at)}</td></tr>"
        for r in runs
    )
    return (
        "<table><tr><th>run</th><th>kind</th><th>model</th><th>trained weights</th><th>anomaly types asked</th>"
        f"<th>search</th><th>started</th></tr>{rows}</table>"
    )


def _trained_cell(run: RunLine, labels: dict) -> str:
    """The run's model card without its "trained weights: " prefix, or yes/NO/unknown when it has none."""
    return escape(run.model_card.removeprefix("trained weights: ")) if run.model_card else labels[run.model_trained]


def _summary_table(videos: list[VideoSection]) -> str:
    rows = []
    for k, v in enumerate(videos):
        score = "" if v.max_score is None else f"{v.max_score:.3f}"
        status = escape(v.status) if v.status == "ok" else f'<span class="error">{escape(v.status)}</span>'
        rows.append(f'<tr><td><a href="#video-{k}">{escape(v.uri)}</a></td><td>{status}</td><td>{len(v.events)}</td><td>{score}</td></tr>')
    return "<table><tr><th>video</th><th>status</th><th>events</th><th>max score</th></tr>" + "".join(rows) + "</table>"


def _event_card(video: VideoSection, event: EventItem) -> str:
    picture = (
        f'<a href="{escape(event.image)}"><img src="{escape(event.image)}" alt="peak frame {event.peak_frame_index} with its mask"></a>'
        if event.image
        else ""
    )
    note = f'<div class="muted">{escape(event.note)}</div>' if event.note else ""
    return (
        f'<div class="event">{picture}{_player(video, event)}<div>event {event.event_index}: {event.start_s:.2f}–{event.end_s:.2f} s, '
        f"peak {event.peak_score:.3f} at frame {event.peak_frame_index}, mean {event.mean_score:.3f}</div>{note}</div>"
    )


def _player(video: VideoSection, event: EventItem) -> str:
    """The video, cued to the event (a media fragment #t=start,end: the browser seeks there and stops at its end)."""
    note = f'<div class="muted">{escape(video.player_note)}</div>' if video.player_note else ""
    if not video.player:
        return note
    src = f"{video.player}#t={event.start_s:.3f},{event.end_s:.3f}"
    return (
        f'<video class="player" controls preload="metadata" src="{escape(src)}" '
        f'data-start="{event.start_s:.3f}" data-end="{event.end_s:.3f}"></video>{note}'
    )


def _video_section(k: int, video: VideoSection) -> str:
    head = f'<h2 id="video-{k}">{escape(video.uri)}</h2><p class="muted">video_id {escape(video.video_id)}'
    if video.duration_s is not None:
        head += f", {video.duration_s:.1f} s"
    head += "</p>"
    if video.status != "ok":
        return head + f'<p class="error">not scanned: {escape(video.status)} — {escape(video.error or "")}</p>'
    timeline = (
        f'<a href="{escape(video.timeline)}"><img class="timeline" src="{escape(video.timeline)}" alt="score timeline"></a>'
        if video.timeline
        else ""
    )
    cards = "".join(_event_card(video, e) for e in video.events) or '<p class="muted">no events</p>'
    return head + timeline + f'<div class="events">{cards}</div>'


def render_index(*, out: str, params: EventParams, runs: list[RunLine], videos: list[VideoSection]) -> str:
    """The whole page as a string."""
    n_events = sum(len(v.events) for v in videos)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lavida report</title><style>{_CSS}</style></head>
<body>
<h1>lavida report</h1>
<p class="muted">OUT: {escape(out)}</p>
{_trained_banner(runs)}
<p>{len(videos)} videos, {n_events} events. Events: runs of sampled frames with score ≥ {params.min_score:g},
merged across gaps ≤ {params.max_gap:g} s, kept when ≥ {params.min_duration:g} s long.
Shaded spans on the timelines are events; the dashed line is the minimum score.</p>
<h2>Runs</h2>
{_runs_table(runs)}
<h2>Videos</h2>
{_summary_table(videos)}
{"".join(_video_section(k, v) for k, v in enumerate(videos))}
</body></html>
"""
