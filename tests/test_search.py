"""`lavida search` end to end on a generated archive (real scan, tiny model, local Ray), and events /
query over Parquet that a real scan wrote, locally and on a real S3 server on 127.0.0.1.

The search retrieves clips from the `embeddings` the scan wrote, then LAVIDA re-scores those (the
default), or re-scores every clip of every candidate (`--exhaustive`)."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from frames_factory import SCANNED_VIDEOS, scanned_out

from jobs.cli import main
from jobs.common.errors import UserError
from jobs.out import duck
from jobs.out.clip_index import ShardSet, update_index
from jobs.out.compact import compact
from jobs.out.tables import OutTables
from jobs.query.sandbox import run_select
from jobs.search import retrieve
from jobs.search.retrieve import Coverage, Scope, coverage, top_clips
from jobs.search.search import SearchOptions, search, search_id
from lavida_core.clip_query import ClipQuery
from schemas.tables import VIDEOS_SCHEMA
from schemas.views import EventParams

pytestmark = pytest.mark.slow

EVERYTHING = EventParams(min_score=0.0, max_gap=0.0, min_duration=0.0)  # every video is one event
HOSTILE_DESCRIPTION = "a \"man\" climbing the fence; DROP VIEW videos; -- it's 'night' — ночь, 夜, 🚧"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return scanned_out(tmp_path_factory.getbasetemp())


def rows_of(out: str | Path, sql: str, params: dict | None = None) -> list[tuple]:
    return duck.fetch(duck.connect(str(out)), sql, params)[1]


def results_of(out: Path, description: str) -> list[Path]:
    """The search results folders under OUT whose run searched for `description`."""
    folders = sorted((out / "searches").iterdir()) if (out / "searches").exists() else []
    return [f for f in folders if rows_of(f, "SELECT description FROM runs LIMIT 1") == [(description,)]]


def test_real_scan_parquet_reads_through_the_views(out):
    assert sorted(Path(u).name for (u,) in rows_of(out, "SELECT uri FROM videos WHERE status = 'ok'")) == sorted(SCANNED_VIDEOS)
    (n_frames,) = rows_of(out, "SELECT count(*) FROM frames")[0]
    assert n_frames == 50 // 4 + 1 + 40 // 4  # every 4th frame of 50 and of 40 frames
    # min score 0: each video is one event spanning all its samples
    spans = rows_of(out, "SELECT uri, start_s, start_frame, n_frames FROM events(min_score := 0, min_duration := 0) ORDER BY uri")
    assert [(Path(u).name, s, f, n) for u, s, f, n in spans] == [("cam1.mp4", 0.0, 0, 13), ("cam2.avi", 0.0, 0, 10)]


def test_search_end_to_end_with_a_hostile_description(out, capsys):
    argv = ["search", str(out), HOSTILE_DESCRIPTION, "--min-score", "0", "--min-duration", "0", "--format", "json"]
    assert main(argv) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["uri"]).name for r in ranked) == sorted(SCANNED_VIDEOS)
    assert [r["peak_score"] for r in ranked] == sorted((r["peak_score"] for r in ranked), reverse=True)
    [results] = results_of(out, HOSTILE_DESCRIPTION)
    # the description arrived as data, byte for byte, in the runs table and as the anomaly type asked
    runs = rows_of(results, "SELECT kind, description, anomaly_types FROM runs")
    assert runs == [("search", HOSTILE_DESCRIPTION, [HOSTILE_DESCRIPTION])]
    assert rows_of(results, "SELECT DISTINCT anomaly_types FROM clips") == [([HOSTILE_DESCRIPTION],)]
    # OUT's own views are untouched by the search (the DROP VIEW in the text was never SQL)
    assert len(rows_of(out, "SELECT * FROM videos")) == 2
    assert rows_of(out, "SELECT count(*) FROM runs WHERE kind = 'search'") == [(0,)]


def test_search_again_skips_what_it_already_searched(out):
    first = search(SearchOptions(out=str(out), description=HOSTILE_DESCRIPTION, params=EVERYTHING))
    again = search(SearchOptions(out=str(out), description=HOSTILE_DESCRIPTION, params=EVERYTHING))
    assert again.search_id == first.search_id and again.rows == first.rows
    skipped = rows_of(again.out, "SELECT n_ok, n_skipped FROM runs ORDER BY started_at DESC LIMIT 1")
    assert skipped == [(0, 2)]


def test_where_selects_the_candidates(out):
    result = search(
        SearchOptions(out=str(out), description="smoke near the gate", where="uri LIKE '%cam1%' AND n_events >= 0", params=EVERYTHING)
    )
    assert result.n_candidates == 1
    assert [Path(uri).name for (uri,) in rows_of(result.out, "SELECT uri FROM videos")] == ["cam1.mp4"]
    assert [Path(row[1]).name for row in result.rows] == ["cam1.mp4"]


def test_source_searches_other_videos_into_the_same_results(out, tmp_path):
    cam2 = next(uri for (uri,) in rows_of(out, "SELECT uri FROM videos") if uri.endswith("cam2.avi"))
    result = search(SearchOptions(out=str(out), description=HOSTILE_DESCRIPTION, source=cam2, params=EVERYTHING))
    assert result.n_candidates == 1
    assert [row[1] for row in result.rows] == [cam2]  # ranked among this search's candidates only


def test_where_that_selects_nothing_scans_nothing(out, capsys):
    assert main(["search", str(out), "nothing at all", "--where", "false"]) == 0
    assert main(["search", str(out), "nothing at all", "--since", "2999-01-01"]) == 0
    assert main(["search", str(out), "nothing at all", "--where", "false", "--exhaustive"]) == 0
    assert main(["search", str(out), "nothing at all", "--until", "2000-01-01", "--exhaustive"]) == 0
    assert capsys.readouterr().out.count("(0 rows)") == 4
    assert results_of(out, "nothing at all") == []


def test_the_retrieved_clips_and_their_neighbours_are_all_lavida_rescores(out):
    """--candidates 1: the clip whose embedding is nearest the description's (computed here from the
    stored vectors) and the clips beside it are re-scored; nothing else is."""
    vectors = rows_of(out, "SELECT uri, clip_index, embedding FROM embeddings ORDER BY uri, clip_index")
    assert len(vectors) == 4 + 3  # every clip of both videos has its embedding (13 and 10 samples, 4 per clip)
    query = ClipQuery.load("tiny").embed("a red square in the corner").vector
    best_uri, best_clip, _ = max(vectors, key=lambda row: float(np.dot(row[2], query)))
    result = search(SearchOptions(out=str(out), description="a red square in the corner", candidates=1, params=EVERYTHING))
    assert (result.n_candidates, result.n_rescored_videos, result.n_unindexed) == (2, 1, 0)
    n_clips = 4 if best_uri.endswith("cam1.mp4") else 3
    expected = [c for c in (best_clip - 1, best_clip, best_clip + 1) if 0 <= c < n_clips]
    assert rows_of(result.out, "SELECT uri, clip_index FROM clips ORDER BY 2") == [(best_uri, c) for c in expected]
    assert [row[1] for row in result.rows] == [best_uri]
    (n_sampled,) = rows_of(result.out, "SELECT n_sampled_frames FROM videos")[0]
    assert n_sampled == rows_of(result.out, "SELECT count(*) FROM frames")[0][0]


def test_exhaustive_rescores_every_clip_of_every_candidate(out, capsys):
    argv = ["search", str(out), "smoke", "--exhaustive", "--min-score", "0", "--min-duration", "0", "--format", "json"]
    assert main(argv) == 0
    assert sorted(Path(r["uri"]).name for r in json.loads(capsys.readouterr().out)) == sorted(SCANNED_VIDEOS)
    results = out / "searches" / search_id("smoke", "tiny", 4, 4)
    assert rows_of(results, "SELECT count(*) FROM clips") == [(4 + 3,)]


def test_videos_without_embeddings_are_named_never_silently_left_out(out, tmp_path, capsys, caplog):
    """An OUT whose index lags its rows (one video without embeddings): the search says how many
    videos it could not look at; with none indexed it refuses, naming `lavida index`."""
    partial, bare = tmp_path / "partial", tmp_path / "bare"
    for copy in (partial, bare):
        shutil.copytree(out, copy, ignore=shutil.ignore_patterns("searches"))
    OutTables(str(partial)).delete("embeddings", "uri LIKE '%cam2%'")
    OutTables(str(bare)).delete("embeddings", "true")
    argv = ["--min-score", "0", "--min-duration", "0", "--format", "json"]
    assert main(["search", str(partial), "fire", *argv]) == 0
    captured = capsys.readouterr()
    assert [Path(r["uri"]).name for r in json.loads(captured.out)] == ["cam1.mp4"]
    assert "1 of 2 candidate videos have no clip embeddings and are NOT searched: run `lavida index" in caplog.text
    assert main(["search", str(bare), "fire"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"run `lavida index {bare}`, or re-score every video with --exhaustive" in err


def test_index_back_fills_the_embeddings_exactly_once_and_search_then_finds_them(out, tmp_path, capsys):
    """`lavida index` on an OUT without embeddings: the same vectors the scan wrote, once per clip,
    each video's row again with the index run in run_ids (scores and events untouched); again: nothing to do."""
    bare = tmp_path / "bare"
    shutil.copytree(out, bare, ignore=shutil.ignore_patterns("searches"))
    OutTables(str(bare)).delete("embeddings", "true")
    assert main(["index", str(bare)]) == 0
    assert "indexed 2 videos with tiny: 0 failed, 0 skipped" in capsys.readouterr().out
    scanned = rows_of(out, "SELECT uri, clip_index, first_frame, last_frame, embedding FROM embeddings ORDER BY 1, 2")
    indexed = rows_of(bare, "SELECT uri, clip_index, first_frame, last_frame, embedding FROM embeddings ORDER BY 1, 2")
    assert [row[:4] for row in indexed] == [row[:4] for row in scanned]
    for (*_, a), (*_, b) in zip(scanned, indexed):
        np.testing.assert_allclose(a, b, atol=1e-5)
    [(index_run,)] = rows_of(bare, "SELECT run_id FROM runs WHERE kind = 'index'")
    before = rows_of(out, "SELECT uri, run_id, run_ids FROM videos ORDER BY uri")
    after = rows_of(bare, "SELECT uri, run_id, run_ids FROM videos ORDER BY uri")
    assert after == [(uri, run, sorted([*runs, index_run])) for uri, run, runs in before]
    for sql in ("SELECT * FROM events ORDER BY uri", "SELECT video_id, frame_index, score FROM frames ORDER BY 1, 2"):
        assert rows_of(bare, sql) == rows_of(out, sql)
    assert main(["index", str(bare)]) == 0
    assert "indexed 0 videos" in capsys.readouterr().out
    compact(OutTables(str(bare)), live=set(), grace_s=0)  # the replaced videos rows go; the shown ones stay
    assert rows_of(bare, "SELECT count(*) FROM _videos_delta") == [(2,)]
    assert rows_of(bare, "SELECT uri, run_id, run_ids FROM videos ORDER BY uri") == after
    assert rows_of(bare, "SELECT count(*) FROM embeddings") == [(4 + 3,)]


# --- the approximate index's shards (jobs/out/clip_index.py) -----------------------------------------


def hit_ids(hits) -> list[tuple[str, int]]:
    return [(Path(hit.uri).name, hit.clip_index) for hit in hits]


def test_index_shards_answer_as_the_exact_search_and_drop_rows_a_rescan_replaced(out, tmp_path, capsys, caplog, monkeypatch):
    """`lavida index --min-shard-rows 0` puts every clip into one shard (no video to back-fill: no Ray);
    retrieval through it finds what the exact search finds, in and out of a scope; a video whose
    `videos` row no longer names the shard's run (a re-scan) drops out of the shard's answers."""
    copy = tmp_path / "sharded"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("searches"))
    assert main(["index", str(copy), "--min-shard-rows", "0"]) == 0
    assert "indexed 0 videos with tiny: 0 failed, 0 skipped; 7 clip embeddings into a new index shard" in capsys.readouterr().out
    assert main(["index", str(copy), "--min-shard-rows", "0"]) == 0  # nothing new: no second shard
    assert "index shard" not in capsys.readouterr().out
    root = duck.open_out(str(copy))
    shards = ShardSet.load(root, "tiny")
    assert (len(shards.shards), shards.n_vectors) == (1, 4 + 3)
    con = duck.connect(root)
    stored = rows_of(copy, "SELECT uri, clip_index, embedding FROM embeddings ORDER BY uri, clip_index")
    cam2 = [uri for uri, *_ in stored if uri.endswith("cam2.avi")][0]
    for uri, clip, vector in stored:  # a query equal to a stored vector finds that clip first
        query = np.asarray(vector, np.float32)
        for scope in (Scope(), Scope(uris=[cam2])):
            exact = top_clips(con, query, model="tiny", scope=scope, k=7)
            approx = top_clips(con, query, model="tiny", scope=scope, k=7, shards=shards)
            assert sorted(hit_ids(approx)) == sorted(hit_ids(exact)) and len(exact) == (7 if scope.uris is None else 3)
            assert abs(approx[0].similarity - exact[0].similarity) < 0.02
            if scope.uris is None or uri == cam2:
                assert hit_ids(approx)[0] == hit_ids(exact)[0] == (Path(uri).name, clip)
            one = top_clips(con, query, model="tiny", scope=scope, k=1, shards=shards)
            assert hit_ids(one) == hit_ids(exact)[:1]
    assert coverage(con, "tiny", Scope(), shards) == coverage(con, "tiny", Scope()) == Coverage(2, 2)
    # a shard whose answers all fall outside the scope may hide in-scope clips: the scope is searched exactly
    monkeypatch.setattr(retrieve, "SHARD_K_FACTOR", 1)
    caplog.set_level(logging.INFO, logger="jobs.search.retrieve")
    cam1_first = np.asarray(stored[0][2], np.float32)
    [(cam1_id,)] = rows_of(copy, "SELECT video_id FROM videos WHERE uri LIKE '%cam1.mp4'")
    assert shards.search(cam1_first, 1).column("video_id").to_pylist() == [cam1_id]  # out of the scope
    narrow = top_clips(con, cam1_first, model="tiny", scope=Scope(uris=[cam2]), k=1, shards=shards)
    assert hit_ids(narrow) == hit_ids(top_clips(con, cam1_first, model="tiny", scope=Scope(uris=[cam2]), k=1))
    assert "searching the scope exactly" in caplog.text
    monkeypatch.undo()
    # two updates at once may both index the same rows: each clip is still found once
    [folder] = (copy / "clip_index").glob("*/*")
    shutil.copytree(folder, folder.with_name(folder.name + "-twin"))
    twins = ShardSet.load(root, "tiny")
    assert len(twins.shards) == 2
    once = top_clips(con, query, model="tiny", scope=Scope(), k=7, shards=shards)
    assert hit_ids(top_clips(con, query, model="tiny", scope=Scope(), k=7, shards=twins)) == hit_ids(once)
    # cam1 re-scanned by a run that wrote no embeddings: its old pair is no longer shown
    [row] = duck.fetch_arrow(con, "SELECT * FROM videos WHERE uri LIKE '%cam1.mp4'").to_pylist()
    replaced = {**row, "run_id": "rescan", "run_ids": ["rescan"], "committed_at": datetime.now(UTC)}
    OutTables(str(copy)).append("videos", pa.Table.from_pylist([replaced], schema=VIDEOS_SCHEMA), "rescan")
    con = duck.connect(root)
    assert coverage(con, "tiny", Scope(), shards) == coverage(con, "tiny", Scope()) == Coverage(2, 1)
    approx = top_clips(con, np.asarray(stored[0][2], np.float32), model="tiny", scope=Scope(), k=7, shards=shards)
    assert sorted(hit_ids(approx)) == [("cam2.avi", c) for c in range(3)]
    # half of each shard's pairs replaced: the update retires both (the twins) and indexes cam2's rows again
    before = sorted((copy / "clip_index").glob("*/*"))
    assert update_index(root, con, "tiny", min_rows=10**6) == 3
    fresh = ShardSet.load(root, "tiny")
    assert (len(fresh.shards), fresh.n_vectors) == (1, 3) and not any(folder.exists() for folder in before)
    assert sorted(hit_ids(top_clips(con, np.asarray(stored[0][2], np.float32), model="tiny", scope=Scope(), k=7, shards=fresh))) == [
        ("cam2.avi", c) for c in range(3)
    ]


def test_an_index_older_than_the_rows_is_searched_exactly_beside_it(out, tmp_path, capsys):
    """The shard holds cam1 only; cam2's embeddings come later (`lavida index` back-fills them, fewer
    than --min-shard-rows: no shard): a search retrieves from both, and LAVIDA re-scores all 7 clips."""
    partial = tmp_path / "partial"
    shutil.copytree(out, partial, ignore=shutil.ignore_patterns("searches"))
    OutTables(str(partial)).delete("embeddings", "uri LIKE '%cam2%'")
    root = duck.open_out(str(partial))
    assert update_index(root, duck.connect(root), "tiny", ClipQuery.load("tiny").dim, min_rows=0) == 4
    assert ShardSet.load(root, "tiny").covered.num_rows == 2  # cam2's scan pair too, held with no vector: it stays empty
    assert main(["index", str(partial), "--min-shard-rows", "100"]) == 0
    assert "indexed 1 videos with tiny: 0 failed, 0 skipped\n" in capsys.readouterr().out
    shards = ShardSet.load(root, "tiny")
    assert (len(shards.shards), shards.n_vectors) == (1, 4)
    con = duck.connect(root)
    query = ClipQuery.load("tiny").embed("a red square in the corner").vector
    approx = top_clips(con, query, model="tiny", scope=Scope(), k=7, shards=shards)
    assert sorted(hit_ids(approx)) == sorted(hit_ids(top_clips(con, query, model="tiny", scope=Scope(), k=7)))
    assert {name for name, _ in hit_ids(approx)} == {"cam1.mp4", "cam2.avi"}
    result = search(SearchOptions(out=str(partial), description="a red square in the corner", candidates=7, params=EVERYTHING))
    assert (result.n_candidates, result.n_unindexed, result.n_rescored_clips) == (2, 0, 7)


def test_bad_index_options_are_one_line(out, capsys):
    assert main(["index", str(out), "--min-shard-rows", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--min-shard-rows must be >= 0" in err


def test_a_description_longer_than_the_text_tower_reads_is_said(out, caplog):
    long = "a person " + "slowly " * 40 + "climbing a fence"  # > 77 CLIP tokens
    assert main(["search", str(out), long, "--candidates", "1"]) == 0
    assert "CLIP's text tower reads the first 77: retrieval uses only its start" in caplog.text


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not a date or date-time"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "is not before --until"),
        (["--candidates", "0"], "--candidates must be >= 1"),
        (["--source", "/nowhere", "--since", "2026-01-01"], "they do not apply to --source"),
    ],
)
def test_bad_search_options_are_one_line(out, capsys, argv, reason):
    assert main(["search", str(out), "fire", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and reason in err


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("true) ; DROP VIEW videos; SELECT (1", "exactly one SQL statement"),
        ("uri IN (SELECT column0 FROM read_csv('/etc/passwd'))", "cannot read other files"),
        ("no_such_column = 1", "--where filter failed"),
    ],
)
def test_hostile_or_bad_where_is_refused(out, capsys, where, reason):
    assert main(["search", str(out), "fire", "--where", where]) == 2
    assert reason in capsys.readouterr().err


def test_blank_description_is_refused(out):
    with pytest.raises(UserError, match="give a description"):
        search(SearchOptions(out=str(out), description="   "))


# --- the same over S3 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_out(out, s3_server):
    server = s3_server  # the session's SeaweedFS; this module's bucket: lavida
    server.make_bucket("lavida")
    fs = server.filesystem()
    server.upload_tree(out, "s3://lavida/nightly/out")
    fs.pipe_file("lavida/private/secret.csv", b"a,b\n1,2\n")
    return server, "s3://lavida/nightly/out"


def test_events_and_query_over_s3(s3_out, out, capsys):
    server, url = s3_out
    option = [f"--storage-option={k}={v}" for k, v in server.storage_options.items()]
    assert main(["events", url, *option, "--min-score", "0", "--min-duration", "0", "--format", "json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["events", str(out), "--min-score", "0", "--min-duration", "0", "--format", "json"]) == 0
    assert remote == json.loads(capsys.readouterr().out)  # same events from the same files
    con = duck.connect(url, storage_options=server.storage_options, sandbox=True)
    assert run_select(con, "SELECT count(*) FROM videos")[1] == [(2,)]
    with pytest.raises(UserError, match="cannot read other files"):
        run_select(con, "SELECT * FROM read_csv('s3://lavida/private/secret.csv')")
    with pytest.raises(UserError, match="cannot read other files"):
        run_select(con, "SELECT * FROM read_csv('/etc/passwd')")


def test_search_over_s3(s3_out, tmp_path, monkeypatch, capsys):
    """Through an index shard on S3 too: `lavida index` writes it there, a search downloads it once into
    the local cache (LAVIDA_CACHE) and finds every clip."""
    server, url = s3_out
    monkeypatch.setenv("LAVIDA_CACHE", str(tmp_path / "cache"))
    option = [f"--storage-option={k}={v}" for k, v in server.storage_options.items()]
    assert main(["index", url, *option, "--min-shard-rows", "0"]) == 0
    assert "7 clip embeddings into a new index shard" in capsys.readouterr().out
    result = search(SearchOptions(out=url, description="fire", params=EVERYTHING, storage_options=server.storage_options))
    assert result.out.startswith(f"{url}/searches/") and result.n_rescored_clips == 4 + 3  # 64 candidates: every clip
    assert sorted(Path(row[1]).name for row in result.rows) == sorted(SCANNED_VIDEOS)
    con = duck.connect(result.out, storage_options=server.storage_options)
    assert con.sql("SELECT count(*) FROM videos").fetchall() == [(2,)]
    [cached] = (tmp_path / "cache" / "clip_index").iterdir()
    assert sorted(p.name for p in cached.iterdir()) == ["ivf.faiss", "pairs.parquet", "shard.json"]
