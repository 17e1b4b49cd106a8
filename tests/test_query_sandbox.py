"""`lavida query` is read-only and sandboxed: hostile SQL is refused with a clear error, analytics run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from frames_factory import FakeVideo, write_out

from jobs.cli import main
from jobs.common.errors import UserError
from jobs.out import duck
from jobs.query.sandbox import run_select

LO, HI = 0.1, 0.9


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """OUT with two videos, next to files that must stay out of reach."""
    root = tmp_path_factory.mktemp("sandbox")
    videos = [FakeVideo(video_id="a", scores=[LO, HI, HI, LO, LO]), FakeVideo(video_id="b", scores=[LO, LO, HI, LO])]
    write_out(root / "out", videos)
    (root / "secret.txt").write_text("top secret\n")
    pq.write_table(pa.table({"x": [1, 2, 3]}), root / "outside.parquet")
    (root / "out-sibling").mkdir()  # shares OUT's name as a prefix
    pq.write_table(pa.table({"x": [4]}), root / "out-sibling" / "data.parquet")
    return root


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def hostile_statements(root: Path) -> list[str]:
    out = root / "out"
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd', header = false)",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        f"SELECT * FROM read_parquet('{root}/outside.parquet')",
        f"SELECT * FROM read_parquet('{root}/out-sibling/data.parquet')",
        f"SELECT * FROM read_text('{out}/../secret.txt')",
        f"SELECT * FROM parquet_metadata('{root}/outside.parquet')",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
        f"COPY (SELECT 1) TO '{out}/written.csv'",
        f"COPY frames TO '{root}/stolen.parquet' (FORMAT parquet)",
        f"EXPORT DATABASE '{root}/exported'",
        f"ATTACH '{root}/x.duckdb' AS x",
        "ATTACH ':memory:' AS m",
        "DETACH memory",
        "INSTALL httpfs",
        "FORCE INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET allowed_directories = ['/']",
        "PRAGMA threads = 1",
        "PRAGMA database_list",
        "CALL duckdb_settings()",
        "CREATE TABLE t AS SELECT 1",
        "CREATE OR REPLACE VIEW frames AS SELECT 1 AS video_id",
        "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')",
        "INSERT INTO frames VALUES (1)",
        "DROP VIEW frames",
        "EXPLAIN ANALYZE SELECT 1",
        f"SELECT 1; COPY (SELECT 1) TO '{root}/second.csv'",
        "SELECT count(*) FROM frames; DROP VIEW frames",
        "SELECT 1;SELECT 2",
        f"SELECT * FROM query('COPY (SELECT 1) TO ''{root}/via_query.csv''')",
        "",
        "-- only a comment",
    ]


def test_every_hostile_statement_is_refused(tree):
    before = snapshot(tree)
    con = duck.connect(str(tree / "out"), sandbox=True)
    for sql in hostile_statements(tree):
        with pytest.raises(UserError) as refused:
            run_select(con, sql)
        message = str(refused.value)
        assert message.startswith("query "), sql
        assert "\n" not in message, sql
    assert snapshot(tree) == before  # nothing written anywhere
    # the views are all still there and still read OUT
    assert con.execute("SELECT count(*) FROM frames").fetchone() == (9,)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "cannot read other files"),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY statements are not"),
        ("ATTACH '/tmp/x.duckdb'", "ATTACH statements are not"),
        ("INSTALL httpfs", "only a SELECT"),
        ("SELECT 1; DROP VIEW frames", "exactly one SQL statement, found 2"),
        ("SELEC 1", "does not parse"),
        ("  -- nothing", "is empty"),
    ],
)
def test_refusals_say_why(tree, sql, reason):
    con = duck.connect(str(tree / "out"), sandbox=True)
    with pytest.raises(UserError, match=reason):
        run_select(con, sql)


def test_cli_refuses_with_one_line_and_exit_2(tree, capsys):
    assert main(["query", str(tree / "out"), "SELECT * FROM read_text('/etc/passwd')"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("lavida query: error: query was refused")
    assert "root:" not in captured.err


LEGIT = [
    # window function over a view
    (
        "SELECT video_id, frame_index, score - lag(score) OVER (PARTITION BY video_id ORDER BY frame_index) AS rise "
        "FROM frames QUALIFY rise > 0.5 ORDER BY video_id, frame_index",
        [("a", 5, pytest.approx(0.8)), ("b", 10, pytest.approx(0.8))],
    ),
    # join across views, with a CTE
    (
        "WITH e AS (SELECT video_id, count(*) AS n FROM events(min_duration := 0) GROUP BY video_id) "
        "SELECT v.video_id, v.status, coalesce(e.n, 0) FROM videos v LEFT JOIN e USING (video_id) ORDER BY 1",
        [("a", "ok", 1), ("b", "ok", 1)],
    ),
    (
        "SELECT r.model_trained, count(DISTINCT f.video_id) FROM frames f JOIN runs r USING (run_id) GROUP BY ALL",
        [(False, 2)],
    ),
    ("SELECT start_s, end_s FROM events ORDER BY start_s", [(0.5, 1.5)]),  # b's 0.5 s event is under 1 s
    ("FROM clips SELECT count(*)", [(3,)]),  # 5 and 4 samples, 4 a clip
    ("SELECT count(*) FROM read_parquet('{out}/frames/**/*.parquet')", [(9,)]),  # OUT's own files may be read
]


@pytest.mark.parametrize(("sql", "expected"), LEGIT)
def test_analytics_are_allowed(tree, sql, expected):
    con = duck.connect(str(tree / "out"), sandbox=True)
    _, rows = run_select(con, sql.format(out=tree / "out"))
    assert rows == expected


def test_cli_query_json(tree, capsys):
    sql = "SELECT video_id, max(score) AS peak FROM frames GROUP BY ALL ORDER BY video_id"
    assert main(["query", str(tree / "out"), sql, "--format", "json"]) == 0
    assert [r["video_id"] for r in json.loads(capsys.readouterr().out)] == ["a", "b"]


def test_configuration_is_locked(tree):
    """The lock itself: configuration cannot be changed back, even by us on the same connection."""
    con = duck.connect(str(tree / "out"), sandbox=True)
    with pytest.raises(Exception, match="locked"):
        con.execute("SET enable_external_access = true")
    assert os.path.exists(tree / "secret.txt")


def test_python_variables_of_the_caller_are_not_tables(tree, monkeypatch):
    """DuckDB's replacement scans would read a DataFrame/Arrow variable by name: they are off."""
    con = duck.connect(str(tree / "out"), sandbox=True)
    # The setting itself: external access off hides Python variables too today, and DuckDB only
    # searches the frame that calls con.sql, so the failing query alone would not notice it missing.
    assert con.execute("SELECT current_setting('python_enable_replacements')").fetchone() == (False,)
    caller_secret = pa.table({"password": ["hunter2"]})  # noqa: F841 - the name is what the SQL tries
    # Put it where DuckDB looks as well: the globals of the frame that runs the SQL (jobs.out.duck.fetch).
    monkeypatch.setattr(duck, "caller_secret", pa.table({"password": ["hunter2"]}), raising=False)
    open_con = duck.connect(str(tree / "out"))  # not sandboxed: that frame's variable is a table there
    assert duck.fetch(open_con, "SELECT * FROM caller_secret") == (["password"], [("hunter2",)])
    with pytest.raises(UserError, match="query failed"):
        run_select(con, "SELECT * FROM caller_secret")
