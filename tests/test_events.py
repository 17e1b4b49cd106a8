"""Events over hand-made frame tables whose events are known exactly, and `lavida events` itself.

Hand-made videos (tests/frames_factory.py) sample every 5th frame at 10 fps: one sample every
0.5 s, so sample i has timestamp i * 0.5 and, by the views' definition, stands until (i + 1) * 0.5.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from frames_factory import ANOMALY_TYPES, FakeVideo, box_mask, write_out
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from jobs.cli import main
from jobs.out import duck
from jobs.query.events import fetch_events
from schemas.tables import SCHEMA_VERSION
from schemas.views import EVENT_COLUMNS, VIEWS_VERSION, EventParams

LO, HI = 0.1, 0.9
ALL = EventParams(min_score=0.5, max_gap=0.0, min_duration=0.0)  # every run of hot frames is an event


def events_of(tmp_path, videos, params=ALL, **kwargs):
    con = duck.connect(str(write_out(tmp_path / "out", videos, **kwargs)))
    columns, rows = fetch_events(con, params, columns=EVENT_COLUMNS, order="time")
    return [dict(zip(columns, row)) for row in rows]


def spans(events):
    return [(e["video_id"], e["start_s"], e["end_s"], e["start_frame"], e["end_frame"]) for e in events]


def test_runs_of_hot_frames_are_events(tmp_path):
    video = FakeVideo(video_id="a", scores=[LO, HI, HI, LO, LO, HI, LO, LO])
    events = events_of(tmp_path, [video])
    assert spans(events) == [("a", 0.5, 1.5, 5, 10), ("a", 2.5, 3.0, 25, 25)]
    assert [e["n_frames"] for e in events] == [2, 1]
    assert [e["event_index"] for e in events] == [0, 1]


def test_score_equal_to_min_score_is_hot(tmp_path):
    events = events_of(tmp_path, [FakeVideo(video_id="a", scores=[LO, 0.5, LO, LO])])
    assert spans(events) == [("a", 0.5, 1.0, 5, 5)]


@pytest.mark.parametrize(
    ("max_gap", "expected"),
    [
        # two cold samples between the runs: 1.0 s of cold time
        (0.99, [(0.5, 1.0), (2.0, 2.5)]),
        (1.0, [(0.5, 2.5)]),
        (5.0, [(0.5, 2.5)]),
    ],
)
def test_runs_merge_across_gaps_up_to_max_gap(tmp_path, max_gap, expected):
    video = FakeVideo(video_id="a", scores=[LO, HI, LO, LO, HI, LO])
    params = EventParams(min_score=0.5, max_gap=max_gap, min_duration=0.0)
    events = events_of(tmp_path, [video], params)
    assert [(e["start_s"], e["end_s"]) for e in events] == expected


def test_merged_event_statistics_cover_hot_frames_only(tmp_path):
    video = FakeVideo(video_id="a", scores=[LO, 0.6, LO, 0.8, 0.7, LO])
    (event,) = events_of(tmp_path, [video], EventParams(min_score=0.5, max_gap=1.0, min_duration=0.0))
    assert (event["start_frame"], event["end_frame"], event["n_frames"]) == (5, 20, 3)
    assert event["mean_score"] == pytest.approx((0.6 + 0.8 + 0.7) / 3, abs=1e-6)
    assert event["peak_score"] == pytest.approx(0.8)
    assert (event["peak_frame_index"], event["peak_s"]) == (15, 1.5)


@pytest.mark.parametrize(
    ("min_duration", "kept"),
    [(0.0, [0.5, 1.0, 1.5]), (0.5, [0.5, 1.0, 1.5]), (0.51, [1.0, 1.5]), (1.0, [1.0, 1.5]), (1.5, [1.5]), (2.0, [])],
)
def test_min_duration_keeps_events_at_least_that_long(tmp_path, min_duration, kept):
    # events of one, two and three samples: 0.5 s, 1.0 s and 1.5 s long
    video = FakeVideo(video_id="a", scores=[HI, LO, LO, LO, HI, HI, LO, LO, LO, HI, HI, HI, LO])
    params = EventParams(min_score=0.5, max_gap=0.0, min_duration=min_duration)
    assert [e["duration_s"] for e in events_of(tmp_path, [video], params)] == kept


def test_edge_frames_first_and_last_sample(tmp_path):
    # the last sample stands for as long as the step before it
    video = FakeVideo(video_id="a", scores=[HI, HI, LO, LO, LO, HI])
    assert spans(events_of(tmp_path, [video])) == [("a", 0.0, 1.0, 0, 5), ("a", 2.5, 3.0, 25, 25)]


def test_one_frame_event_lasts_one_sampling_step(tmp_path):
    video = FakeVideo(video_id="a", scores=[LO, LO, HI, LO], fps=25.0, step=16)
    (event,) = events_of(tmp_path, [video])
    assert event["duration_s"] == pytest.approx(16 / 25)
    assert event["start_frame"] == event["end_frame"] == event["peak_frame_index"] == 32


def test_video_with_a_single_sample_has_a_zero_length_event(tmp_path):
    video = FakeVideo(video_id="a", scores=[HI])
    assert spans(events_of(tmp_path, [video])) == [("a", 0.0, 0.0, 0, 0)]
    assert events_of(tmp_path / "again", [video], EventParams(min_duration=0.01)) == []


def test_videos_without_events_and_failed_videos_give_none(tmp_path):
    videos = [
        FakeVideo(video_id="quiet", scores=[LO] * 10),
        FakeVideo(video_id="broken", scores=[], status="truncated"),
        FakeVideo(video_id="busy", scores=[LO, HI, LO]),
    ]
    assert [e["video_id"] for e in events_of(tmp_path, videos)] == ["busy"]


def test_uncommitted_videos_are_invisible(tmp_path):
    """Frames of a video without a `videos` row are a crashed run's leftovers: no view shows them."""
    videos = [FakeVideo(video_id="done", scores=[HI, HI]), FakeVideo(video_id="half", scores=[HI, HI], committed=False)]
    out = write_out(tmp_path / "out", videos)
    con = duck.connect(str(out))
    assert con.sql("SELECT DISTINCT video_id FROM frames").fetchall() == [("done",)]
    assert con.sql("SELECT DISTINCT video_id FROM clips").fetchall() == [("done",)]
    assert con.sql("SELECT DISTINCT video_id FROM events").fetchall() == [("done",)]
    assert con.execute("SELECT count(*) FROM _frames_delta").fetchone() == (4,)  # the leftovers are on disk


def test_peak_is_the_earliest_highest_frame_with_its_mask(tmp_path):
    mask = box_mask(24, 32, top=3, left=4, size=6)
    video = FakeVideo(video_id="a", scores=[LO, 0.8, 0.9, 0.9, LO], masks={2: mask, 3: ~mask})
    (event,) = events_of(tmp_path, [video])
    assert (event["peak_frame_index"], event["peak_s"]) == (10, 1.0)
    rle = {"size": event["peak_mask_rle"]["size"], "counts": event["peak_mask_rle"]["counts"].encode()}
    decoded = mask_utils.decode(rle)
    assert decoded.shape == (24, 32)
    np.testing.assert_array_equal(decoded.astype(bool), mask)


def test_peak_mask_is_null_when_nothing_was_segmented(tmp_path):
    (event,) = events_of(tmp_path, [FakeVideo(video_id="a", scores=[HI, LO])])
    assert event["peak_mask_rle"] is None


def test_events_carry_the_anomaly_types_asked(tmp_path):
    events = events_of(tmp_path, [FakeVideo(video_id="a", scores=[HI])], anomaly_types=("smoke", "fire"))
    assert events[0]["anomaly_types"] == ["smoke", "fire"]


def test_irregular_timestamps(tmp_path):
    """Variable frame rate: each sample stands until the next one, whatever the step."""
    out = write_out(tmp_path / "out", [FakeVideo(video_id="a", scores=[LO, HI, HI, LO], duration_s=5.0)])
    con = duck.connect(str(out))
    con.execute(
        "CREATE OR REPLACE VIEW frames AS SELECT * REPLACE ([0.0, 1.0, 1.25, 4.0][frame_index // 5 + 1] AS timestamp_s) FROM _frames_delta"
    )
    _, rows = fetch_events(con, ALL, columns=("start_s", "end_s"))
    assert rows == [(1.0, 4.0)]


def test_the_last_sample_stands_until_the_video_ends_not_past_it(tmp_path):
    """A 2.1 s video sampled every 0.5 s: its last sample (2.0 s) stands 0.1 s, not a whole step."""
    events = events_of(tmp_path, [FakeVideo(video_id="a", scores=[LO, LO, LO, LO, HI], duration_s=2.1)])
    assert [(e["start_s"], e["end_s"]) for e in events] == [(2.0, 2.1)]


def test_empty_out_has_typed_empty_views(tmp_path):
    (tmp_path / "out" / "runs").mkdir(parents=True)  # an OUT whose tables hold no row yet
    con = duck.connect(str(tmp_path / "out"))
    for view in ("frames", "clips", "videos", "runs", "events"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
    assert con.execute("SELECT * FROM lavida_versions").fetchall() == [(VIEWS_VERSION, SCHEMA_VERSION)]
    types = {row[0]: row[1] for row in con.execute("DESCRIBE frames").fetchall()}
    assert types["mask_rle"] == "STRUCT(size INTEGER[], counts VARCHAR)"
    assert types["score"] == "FLOAT"


def test_default_view_uses_surveillance_defaults(tmp_path):
    # default: min_score 0.5, max_gap 2 s, min_duration 1 s
    video = FakeVideo(video_id="a", scores=[HI, LO, LO, LO, LO, HI, LO, LO, LO, LO, LO, LO, LO, LO, HI, LO])
    con = duck.connect(str(write_out(tmp_path / "out", [video])))
    # samples 0 and 5 merge (2.0 s of cold time between them); sample 14 alone lasts 0.5 s < 1 s
    assert con.sql("SELECT start_s, end_s FROM events").fetchall() == [(0.0, 3.0)]


# --- the SQL against a plain-Python statement of the same definition --------------------------------


def reference_events(scores: list[float], times: list[float], p: EventParams, duration: float = float("inf")) -> list[tuple[float, float]]:
    n = len(times)
    until = [times[i + 1] if i + 1 < n else (2 * times[i] - times[i - 1] if n > 1 else times[i]) for i in range(n)]
    until = [min(u, max(duration, t)) for u, t in zip(until, times)]  # never past the video's end
    events: list[list[int]] = []  # [first hot sample, last hot sample]
    for i in range(n):
        if scores[i] < p.min_score:
            continue
        if events and (events[-1][1] == i - 1 or times[i] - until[events[-1][1]] <= p.max_gap):
            events[-1][1] = i
        else:
            events.append([i, i])
    return [(times[a], until[b]) for a, b in events if until[b] - times[a] >= p.min_duration]


score_lists = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=30)


@pytest.mark.slow  # over ~2 s of CPU work: the full tier's (conftest.py)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    videos=st.lists(score_lists, min_size=1, max_size=4),
    min_score=st.sampled_from([0.25, 0.5, 1.0]),
    max_gap=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    min_duration=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    tail=st.sampled_from([0.0, 0.1, 0.3, 0.5]),  # how long the video runs after its last sample (one step: 0.5 s)
)
def test_sql_events_match_the_reference_definition(tmp_path_factory, videos, min_score, max_gap, min_duration, tail):
    params = EventParams(min_score=min_score, max_gap=max_gap, min_duration=min_duration)
    fakes = [FakeVideo(video_id=f"v{i}", scores=s, duration_s=(len(s) - 1) * 0.5 + tail) for i, s in enumerate(videos)]
    got = events_of(tmp_path_factory.mktemp("prop"), fakes, params)
    expected = [(f.video_id, *span) for f in fakes for span in reference_events(f.scores, f.timestamps, params, f.duration)]
    assert [(e["video_id"], e["start_s"], e["end_s"]) for e in got] == expected


# --- the command -------------------------------------------------------------------------------


@pytest.fixture()
def two_event_out(tmp_path):
    videos = [FakeVideo(video_id="a", scores=[LO, HI, HI, LO]), FakeVideo(video_id="b", scores=[0.7, 0.7, 0.7, LO])]
    return write_out(tmp_path / "out", videos)


def test_cli_json_and_csv(two_event_out, capsys):
    assert main(["events", str(two_event_out), "--format", "json", "--order", "score"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["video_id"], r["start_s"], r["end_s"]) for r in records] == [("a", 0.5, 1.5), ("b", 0.0, 1.5)]
    assert records[0]["anomaly_types"] == list(ANOMALY_TYPES)
    assert main(["events", str(two_event_out), "--format", "csv", "--video", "b"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["video_id"], float(r["peak_score"])) for r in rows] == [("b", pytest.approx(0.7))]


def test_cli_table_and_thresholds(two_event_out, capsys):
    assert main(["events", str(two_event_out), "--min-score", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "(1 row)" in out and "file:///videos/a.mp4" in out


@pytest.mark.parametrize("option", [["--min-score", "1.5"], ["--max-gap", "-1"], ["--min-duration", "-0.5"]])
def test_cli_refuses_bad_thresholds(two_event_out, capsys, option):
    assert main(["events", str(two_event_out), *option]) == 2
    assert capsys.readouterr().err.startswith("lavida events: error: --")


def test_cli_missing_out(tmp_path, capsys):
    assert main(["events", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
