"""`lavida history`, `lavida compact` and `--as-of` through the CLI entry point, over OUTs written as a
scan writes them (tests/frames_factory.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from frames_factory import FakeVideo, write_out

from jobs.cli import main
from jobs.out.tables import OutTables

HI, LO = 0.9, 0.1


def test_history_lists_the_versions_that_as_of_reads(tmp_path, capsys):
    out = write_out(tmp_path / "out", [FakeVideo(video_id="a", scores=[HI, HI, LO])], run_id="night1")
    write_out(out, [FakeVideo(video_id="b", scores=[HI, HI, LO])], run_id="night2")
    assert main(["history", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "version" in lines[0] and "night2" in lines[1] and "night1" in lines[2]
    assert main(["events", str(out), "--format", "json", "--as-of", "0"]) == 0
    assert [e["video_id"] for e in json.loads(capsys.readouterr().out)] == ["a"]
    assert main(["events", str(out), "--format", "json"]) == 0
    assert sorted(e["video_id"] for e in json.loads(capsys.readouterr().out)) == ["a", "b"]
    assert main(["query", str(out), "SELECT count(*) AS n FROM frames", "--format", "json", "--as-of", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 3}]


def test_a_bad_as_of_is_one_line(tmp_path, capsys):
    out = write_out(tmp_path / "out", [FakeVideo(video_id="a", scores=[HI])])
    assert main(["events", str(out), "--as-of", "7"]) == 2
    assert "versions 0..0" in capsys.readouterr().err
    assert main(["events", str(out), "--as-of", "yesterday"]) == 2
    assert "ISO time" in capsys.readouterr().err


def test_compact_merges_files_and_vacuum_removes_the_old_ones(tmp_path, capsys):
    out = tmp_path / "out"
    for k in range(3):
        write_out(out, [FakeVideo(video_id=f"v{k}", scores=[HI, LO])], run_id=f"run{k}")
    tables = OutTables(str(out))
    assert len(tables.table("frames").file_uris()) == 3
    assert main(["compact", str(out)]) == 0
    assert "compacted" in capsys.readouterr().out
    assert len(tables.table("frames").file_uris()) == 1
    assert main(["compact", str(out), "--vacuum", "--retention-hours", "0"]) == 0
    assert "vacuumed" in capsys.readouterr().out
    assert len(list((out / "frames").rglob("*.parquet"))) == 1  # the merged file only
    assert main(["query", str(out), "SELECT count(*) AS n FROM frames", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 6}]


def test_compaction_waits_for_the_runs_writing_into_out(tmp_path, capsys, caplog):
    """Two compactions at once double the rows they rewrite (delta-rs commits both optimizes), so one
    runs only while no other run is live: `lavida compact` refuses, a scan's end leaves it to the last."""
    from jobs.out.leases import Lease, live_runs
    from jobs.out.profile import ScanProfile
    from jobs.scan.job import ScanOptions, run_row
    from jobs.scan.write import OutWriter, WriterOptions

    out = tmp_path / "out"
    for k in range(2):
        write_out(out, [FakeVideo(video_id=f"v{k}", scores=[HI, LO])], run_id=f"run{k}")
    tables = OutTables(str(out))
    other = Lease(tables.fs, tables.root, "still-running")
    other.acquire()  # a run of this process: live while the process runs
    try:
        assert main(["compact", str(out)]) == 2
        assert "still-running are writing into OUT right now" in capsys.readouterr().err
        assert live_runs(tables.fs, tables.root) == {"still-running"}  # the refused compaction left no lease
        profile = ScanProfile(model="tiny", anomaly_types=("fire",), sample_interval=4, frames_per_clip=4)
        writer = OutWriter(WriterOptions(out=str(out), storage_options={}, profile=profile), "ending-now")
        with caplog.at_level("INFO", logger="jobs.scan.write"):
            writer.finish(lambda: run_row(ScanOptions(source="archive", out=str(out)), "ending-now", datetime.now(UTC), card=None))
        assert "compaction left to the last run writing into OUT (still-running still running)" in caplog.text
        assert len(tables.table("frames").file_uris()) == 2  # nothing was compacted
    finally:
        other.release()
    assert main(["compact", str(out)]) == 0
    assert len(tables.table("frames").file_uris()) == 1
