"""`scan` end to end on one local Ray (started once for the module): real encoded videos of several
codecs/containers/sizes/fps and bad files, read back with DuckDB; re-run, re-scan, a replaced file;
the same archive from a real S3 server on 127.0.0.1 (SeaweedFS, or moto's server as a fallback).
"""

import math
import os
import urllib.request
from pathlib import Path

import pytest
from pycocotools import mask as mask_utils
from video_factory import GOOD_VIDEOS, make_archive, make_frames, write_gop_video, write_video

from jobs.common.errors import UserError
from jobs.out import duck
from jobs.query.report import video_link
from jobs.scan.job import ScanOptions, scan
from lavida_core.clips import SAMPLE_KEYFRAMES

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
SAMPLE_INTERVAL, FRAMES_PER_CLIP = 4, 3
FAKE = "fake_detector:BrightDetector"  # FAKE detector (tests/fake_detector.py): known masks, deterministic


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    return folder, make_archive(folder)


def options(source, out, **overrides):
    defaults = dict(
        source=str(source),
        out=str(out),
        sample_interval=SAMPLE_INTERVAL,
        frames_per_clip=FRAMES_PER_CLIP,
        anomaly_types=("fire", "a person falling"),
        batch_size=2,
    )
    return ScanOptions(**{**defaults, **overrides})


def sql(out, query):
    """Run `query` over OUT's views (jobs/out/duck.py: the committed rows)."""
    return duck.connect(str(out)).sql(query).fetchall()


def sql_dicts(out, query):
    return duck.connect(str(out)).sql(query).to_arrow_table().to_pylist()  # through Arrow: timestamps without pytz


def test_archive_end_to_end(local_ray, archive, tmp_path):
    folder, expected = archive
    out = tmp_path / "out"
    summary = scan(options(folder, out))  # the model's tiny preset (random weights)
    n_bad = sum(status != "ok" for status in expected.values())
    assert (summary.n_ok, summary.n_failed, summary.n_skipped) == (len(GOOD_VIDEOS), n_bad, 0)

    videos = {os.path.basename(uri): rest for uri, *rest in sql(out, "select uri, status, error, n_frames, fps, width, height from videos")}
    assert {name: v[0] for name, v in videos.items()} == expected  # every file accounted for, with its kind
    for name, spec in GOOD_VIDEOS.items():
        assert videos[name][2:] == [spec["n_frames"], pytest.approx(spec["fps"]), spec["width"], spec["height"]]
        assert videos[name][1] is None
    assert all(v[1] for name, v in videos.items() if expected[name] != "ok")  # failed: a message

    # frames: every sampled frame once, decoder timestamps, scores in 0..1
    per_video = dict(sql(out, "select regexp_extract(uri, '[^/]+$'), count(*) from frames group by 1"))
    assert per_video == {name: math.ceil(spec["n_frames"] / SAMPLE_INTERVAL) for name, spec in GOOD_VIDEOS.items()}
    assert sql(out, "select count(*) - count(distinct (video_id, frame_index)) from frames") == [(0,)]
    assert sql(out, "select count(*) from frames where frame_index % 4 <> 0 or score < 0 or score > 1") == [(0,)]
    off = sql(out, "select count(*) from frames f join videos v using (video_id) where abs(f.timestamp_s - f.frame_index / v.fps) > 1e-3")
    assert off == [(0,)]
    # masks (may all be null with random weights): any present decodes to its frame's size
    masks = sql(out, "select f.mask_rle, v.height, v.width from frames f join videos v using (video_id) where f.mask_rle is not null")
    for rle, height, width in masks:
        assert rle["size"] == [height, width]
        assert mask_utils.decode({"size": rle["size"], "counts": rle["counts"]}).shape == (height, width)

    # clips: consistent with frames, the anomaly types recorded
    n_clips = sum(math.ceil(math.ceil(s["n_frames"] / SAMPLE_INTERVAL) / FRAMES_PER_CLIP) for s in GOOD_VIDEOS.values())
    assert sql(out, "select count(*) from clips") == [(n_clips,)]
    assert sql(out, "select distinct anomaly_types from clips") == [(["fire", "a person falling"],)]
    assert sql(out, "select count(*) from clips where len(frame_indices) > 3 or start_s > end_s") == [(0,)]
    flat = sql(out, "select video_id, unnest(frame_indices) as i from clips order by 1, 2")
    assert flat == sql(out, "select video_id, frame_index from frames order by 1, 2")

    # runs: one finished row that says the model is untrained
    [run] = sql_dicts(out, "select * from runs")
    assert run["run_id"] == summary.run_id and run["kind"] == "scan" and run["finished_at"] is not None
    assert (run["n_ok"], run["n_failed"], run["n_skipped"], run["model_trained"]) == (len(GOOD_VIDEOS), n_bad, 0, False)


def test_rerun_skips_and_rescan_replaces(local_ray, archive, tmp_path):
    folder, expected = archive
    out = tmp_path / "out"
    fake = dict(detector_class=FAKE)
    first = scan(options(folder, out, **fake))
    frames_query = "select video_id, frame_index, timestamp_s, score, mask_rle from frames order by 1, 2"
    before = sql(out, frames_query)
    again = scan(options(folder, out, **fake))
    assert (again.n_ok, again.n_failed, again.n_skipped) == (0, 0, len(expected))
    # the rescan plans the bigger half of the files first (their segments in tasks of their own) and
    # decodes the others whole, as the two branches of one pipeline: the same rows as all decoded whole
    sizes = sorted(os.path.getsize(folder / name) for name in GOOD_VIDEOS)
    rescan = scan(options(folder, out, rescan=True, plan_bytes=sizes[len(sizes) // 2], **fake))
    assert (rescan.n_ok + rescan.n_failed, rescan.n_skipped) == (len(expected), 0)
    assert sql(out, frames_query) == before  # same rows, none twice
    assert sql(out, "select distinct run_id from frames") == [(rescan.run_id,)]
    assert sql(out, "select distinct run_id from videos") == [(rescan.run_id,)]
    assert sql(out, "select count(*) from runs") == [(3,)] and first.run_id != rescan.run_id


def test_masks_decode_to_each_frames_size(local_ray, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    sizes = {"wide.mp4": (96, 48), "tall.mkv": (64, 96)}  # (width, height)
    for name, (width, height) in sizes.items():
        write_video(folder / name, codec="h264", width=width, height=height, n_frames=12)
    out = tmp_path / "out"
    scan(options(folder, out, detector_class=FAKE, sample_interval=5))
    got = sql(out, "select regexp_extract(uri, '[^/]+$'), frame_index, mask_rle from frames order by 1, 2")
    assert len(got) == 2 * 3
    for name, frame_index, rle in got:
        width, height = sizes[name]
        mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"]}).astype(bool)
        assert mask.shape == (height, width)
        square = make_frames(12, height, width)[frame_index].mean(axis=-1) > 200  # what the fake segments
        assert (mask & square).sum() / (mask | square).sum() > 0.8


def test_frames_at_model_size_score_as_the_default_and_are_a_profile_of_their_own(local_ray, tmp_path):
    """--frames-at-model-size through the whole pipeline (the shipped demo model): the frames and scores
    of the default path (the same detector on full-size frames, in this process) within what a fraction
    of a level of pixels moves, masks where it has them and at each video's size; OUT keeps the two
    profiles apart."""
    from jobs.video.reader import open_video
    from lavida_core.detector import LavidaDetector

    folder = tmp_path / "archive"
    folder.mkdir()
    sizes = {"tall.mkv": (64, 96), "wide.mp4": (96, 48)}  # (width, height), in uri order
    for name, (width, height) in sizes.items():
        write_video(folder / name, codec="h264", width=width, height=height, n_frames=12)
    demo = dict(model="demo", anomaly_types=("a white square",), sample_interval=5)  # a trained model
    scaled = scan(options(folder, tmp_path / "scaled", frames_at_model_size=True, **demo))
    assert (scaled.n_ok, scaled.n_failed) == (2, 0)
    rows = sql(
        tmp_path / "scaled", "select regexp_extract(uri, '[^/]+$'), frame_index, timestamp_s, score, mask_rle from frames order by 1, 2"
    )
    detector, expected = LavidaDetector.load("demo"), []
    for name in sizes:
        with open_video(str(folder / name)) as video:
            for clip in video.plan(FRAMES_PER_CLIP, demo["sample_interval"]):
                frames, timestamps = video.read(clip)
                found = detector.detect(frames, list(demo["anomaly_types"]))
                expected += [(name, int(i), t, s, m.any()) for i, t, s, m in zip(clip, timestamps, found.scores, found.masks, strict=True)]
    assert [row[:2] for row in rows] == [row[:2] for row in expected] and len(rows) == 2 * 3
    for (name, _, timestamp, score, rle), (_, _, want_timestamp, want_score, want_mask) in zip(rows, expected, strict=True):
        assert timestamp == pytest.approx(want_timestamp) and abs(score - want_score) < 0.01 and (rle is not None) == want_mask
        if rle is not None:
            width, height = sizes[name]
            assert mask_utils.decode({"size": rle["size"], "counts": rle["counts"]}).shape == (height, width)
    with pytest.raises(UserError, match="--frames-at-model-size"):
        scan(options(folder, tmp_path / "scaled", **demo))  # the default profile into the scaled OUT


def test_new_and_replaced_files(local_ray, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    write_video(folder / "a.mp4", n_frames=8)
    write_video(folder / "b.mp4", n_frames=8)
    out = tmp_path / "out"
    scan(options(folder, out, detector_class=FAKE))
    write_video(folder / "b.mp4", n_frames=16)  # replaced with a longer recording
    write_video(folder / "c.mp4", n_frames=8)  # new
    summary = scan(options(folder, out, detector_class=FAKE))
    assert (summary.n_ok, summary.n_skipped) == (2, 1)
    per_uri = dict(sql(out, "select regexp_extract(uri, '[^/]+$'), count(*) from frames group by 1"))
    assert per_uri == {"a.mp4": 2, "b.mp4": 4, "c.mp4": 2}  # b's old version is gone
    assert sql(out, "select count(*), count(distinct uri) from videos") == [(3, 3)]


@pytest.fixture(scope="module")
def s3(s3_server):
    return s3_server  # the session's SeaweedFS; this module's buckets: cams, results


def test_scan_from_s3(local_ray, archive, s3, tmp_path):
    """Archive and OUT both on a real S3 server; rows equal a local scan of the same files."""
    folder, expected = archive
    s3.make_bucket("cams")
    s3.make_bucket("results")
    s3.upload_folder(folder, "s3://cams/site1")
    s3_options = dict(detector_class=FAKE, storage_options=s3.storage_options)
    summary = scan(options("s3://cams/site1", "s3://results/out", **s3_options))
    assert (summary.n_ok, summary.n_failed) == (len(GOOD_VIDEOS), len(expected) - len(GOOD_VIDEOS))
    local = tmp_path / "from_s3"  # read OUT back through s3fs into a folder for DuckDB
    s3.filesystem().get("results/out", str(local), recursive=True)
    assert not [p for p in local.rglob("*") if ".tmp-" in p.name]
    statuses = dict(sql(local, "select regexp_extract(uri, '[^/]+$'), status from videos"))
    assert statuses == expected
    assert sql(local, "select distinct regexp_extract(uri, '^s3://cams/site1/') from videos") == [("s3://cams/site1/",)]
    # the report's event player gets a presigned link to an s3:// video, and the server serves it
    name = sorted(GOOD_VIDEOS)[0]
    url, note = video_link(f"s3://cams/site1/{name}", s3.storage_options)
    assert url.startswith(s3.storage_options["endpoint_url"]) and "valid until" in note
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == (folder / name).read_bytes()
    # same frames as a local scan of the same files (ids differ: they include the uri)
    scan(options(folder, tmp_path / "local", detector_class=FAKE))
    query = "select regexp_extract(uri, '[^/]+$'), frame_index, timestamp_s, score, mask_rle from frames order by 1, 2"
    assert sql(local, query) == sql(tmp_path / "local", query)
    # a re-run against S3 skips everything
    again = scan(options("s3://cams/site1", "s3://results/out", **s3_options))
    assert (again.n_ok, again.n_failed, again.n_skipped) == (0, 0, len(expected))


def test_unknown_model_raised_in_the_actor_reaches_the_driver_typed(local_ray, tmp_path):
    from lavida_core.errors import InputError

    folder = tmp_path / "archive"
    folder.mkdir()
    write_video(folder / "a.mp4", n_frames=4)
    with pytest.raises(InputError, match="neither a preset"):
        scan(options(folder, tmp_path / "out", model="no-such-preset"))
    assert sql(tmp_path / "out", "select count(*) from videos") == [(0,)]  # nothing committed


def test_a_clip_the_model_fails_on_fails_its_video_only(local_ray, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    write_video(folder / "narrow.mp4", width=64, height=48, n_frames=12)
    write_video(folder / "wide.mp4", width=96, height=48, n_frames=12)
    out = tmp_path / "out"
    # FAKE detector that raises on frames wider than 80 px; batch 4 mixes both videos' clips
    summary = scan(options(folder, out, detector_class="fake_detector:PickyDetector", batch_size=4))
    assert (summary.n_ok, summary.n_failed) == (1, 1)
    statuses = dict(sql(out, "select regexp_extract(uri, '[^/]+$'), status from videos"))
    assert statuses == {"narrow.mp4": "ok", "wide.mp4": "detect_error"}
    assert sql(out, "select distinct regexp_extract(uri, '[^/]+$') from frames") == [("narrow.mp4",)]
    assert "width 96" in sql(out, "select error from videos where status <> 'ok'")[0][0]


def test_keyframe_sampling_scores_the_keyframes(local_ray, tmp_path):
    """`--sample-interval keyframes` on a file with irregular GOPs and B-frames: the frames table holds
    exactly its keyframes with the decoder's timestamps, the run records the sampling (0), the video
    row counts them, and a scan at another sampling is another profile."""
    source = tmp_path / "archive"
    source.mkdir()
    write_gop_video(source / "gops.mp4", keyframes=[0, 7, 30, 31, 55], n_frames=80)
    out = tmp_path / "out"
    summary = scan(options(source, out, sample_interval=SAMPLE_KEYFRAMES, frames_per_clip=2, detector_class=FAKE))
    assert (summary.n_ok, summary.n_failed) == (1, 0)
    frames = sql(out, "select frame_index, timestamp_s from frames order by 1")
    assert frames == [(0, 0.0), (7, 0.28), (30, 1.2), (31, 1.24), (55, 2.2)]
    assert sql(out, "select count(*), list(len(frame_indices) order by clip_index) from clips") == [(3, [2, 2, 1])]
    assert sql(out, "select sample_interval from runs") == [(SAMPLE_KEYFRAMES,)]
    assert sql(out, "select n_sampled_frames, n_clips from videos") == [(5, 3)]
    with pytest.raises(UserError, match=r"sample interval keyframes \(this scan: 4\)"):
        scan(options(source, out, detector_class=FAKE))  # every 4th frame is another profile: refused without --rescan


def test_decode_tasks_the_cluster_cannot_fit_are_refused_before_any_video_is_decoded(local_ray, tmp_path):
    """The tests' local Ray has 4 CPUs: one actor + a decode task of 4 CPUs would wait forever."""
    source = tmp_path / "archive"
    source.mkdir()
    write_video(source / "a.mp4", n_frames=8)
    with pytest.raises(UserError, match=r"a decode task 4 \(--decode-cpus\), but the Ray cluster has 4 CPUs"):
        scan(options(source, tmp_path / "out", decode_cpus=4, detector_class=FAKE))
    assert sql(tmp_path / "out", "select count(*) from videos") == [(0,)]
