"""Retrieve: a description's CLIP embedding -> the best clips of OUT.

    scope = Scope(uris=None | [...], since=None | datetime, until=None | datetime)
    coverage(con, model, scope, shards)          -> Coverage(n_videos, n_indexed)
    top_clips(con, vector, model, scope, k, shards) -> [Hit], best first
    clip_selection(con, hits)                    -> {uri: (clip indices)}: the hits and the clips
                                                    beside them, so that an event has its extent

Without shards (an OUT of up to a few 10^5 clips): exact cosine similarity over the `embeddings` view
(DuckDB's core `array_cosine_similarity` on FLOAT[dim]; no extension). With the approximate index's
shards (jobs/out/clip_index.py, built at a scan's end and by `lavida index`): each shard's best clips,
of which only those still shown (their (video_id, run_id) pair is in the snapshot: a re-scan's old rows
drop out) and in the scope are kept, plus an exact search over the rows no shard holds yet (the newest
runs), merged. Where the scope or re-scans leave fewer than k of a shard's answers and the shard holds
more, it may hide better clips: the search is then redone exactly over the scope, and says so. Only
embeddings made by the search's model (`embedding_model`) are compared: another model's vectors live in
another space.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from jobs.out.clip_index import ShardSet, uncovered_rows_sql
from jobs.out.duck import fetch

log = logging.getLogger(__name__)

DEFAULT_NEIGHBOURS = 1  # clips on each side of a hit that LAVIDA re-scores with it
SHARD_K_FACTOR = 4  # each shard answers 4k clips, so that dropping stale or out-of-scope ones leaves its best k


@dataclass(frozen=True)
class Scope:
    """The videos a search looks at: OUT's scanned ('ok') videos, of `uris` when given, committed
    to OUT in [since, until) when given."""

    uris: list[str] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Hit:
    video_id: str
    uri: str
    clip_index: int
    similarity: float  # cosine; from a shard, that of its 8-bit codes (within ~1e-2)


@dataclass(frozen=True)
class Coverage:
    n_videos: int  # videos in the scope
    n_indexed: int  # of them, those with embeddings of the model

    @property
    def n_missing(self) -> int:
        return self.n_videos - self.n_indexed


def _scope_sql(con: duckdb.DuckDBPyConnection, scope: Scope) -> tuple[str, dict]:
    """A SELECT of the scope's video_ids, and its parameters."""
    conditions, params = ["status = 'ok'"], {}
    if scope.uris is not None:
        con.register("_scope_uris", pa.table({"uri": pa.array(scope.uris, pa.string())}))
        conditions.append("uri IN (SELECT uri FROM _scope_uris)")
    if scope.since is not None:
        conditions.append("committed_at >= $since")
        params["since"] = scope.since
    if scope.until is not None:
        conditions.append("committed_at < $until")
        params["until"] = scope.until
    return "SELECT video_id FROM videos WHERE " + " AND ".join(conditions), params


def _scope_pairs(con: duckdb.DuckDBPyConnection, scope: Scope) -> str:
    """Materialise the scope's shown (video_id, run_id) pairs, with each video's uri, as the temp table
    _scope_pairs (the `videos` view is read once per search); returns a SELECT of its pairs."""
    videos, params = _scope_sql(con, scope)
    pairs = f"SELECT video_id, uri, unnest(run_ids) AS run_id FROM videos WHERE video_id IN ({videos})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _scope_pairs AS {pairs}", params).fetchall()
    return "SELECT video_id, run_id FROM _scope_pairs"


def coverage(con: duckdb.DuckDBPyConnection, model: str, scope: Scope, shards: ShardSet | None = None) -> Coverage:
    videos, params = _scope_sql(con, scope)
    if shards is None or not shards.shards:
        indexed = "SELECT DISTINCT video_id FROM embeddings WHERE embedding_model = $model"
        params["model"] = model
    else:  # held by a shard, or with rows no shard holds (reads only the newest runs' partitions)
        rows_sql, params = uncovered_rows_sql(con, shards.covered, model=model, dim=None, pairs=_scope_pairs(con, scope))
        indexed = (
            f"SELECT video_id FROM _scope_pairs SEMI JOIN _covered_pairs USING (video_id, run_id) UNION SELECT video_id FROM ({rows_sql})"
        )
        videos = "SELECT DISTINCT video_id FROM _scope_pairs"
    _, rows = fetch(
        con,
        f"""
        WITH scope AS ({videos}), indexed AS ({indexed})
        SELECT count(*), count(i.video_id) FROM scope AS s LEFT JOIN (SELECT DISTINCT video_id FROM indexed) AS i USING (video_id)
        """,
        params,
    )
    n_videos, n_indexed = rows[0]
    return Coverage(int(n_videos), int(n_indexed))


def top_clips(
    con: duckdb.DuckDBPyConnection, vector: np.ndarray, *, model: str, scope: Scope, k: int, shards: ShardSet | None = None
) -> list[Hit]:
    """The k clips of the scope most similar to `vector` (unit length, [dim]), best first; ties by uri, clip."""
    if shards is None or not shards.shards:
        return _exact_top_clips(con, vector, model=model, scope=scope, k=k)
    dim = int(vector.shape[0])
    rows_sql, params = uncovered_rows_sql(con, shards.covered, model=model, dim=dim, pairs=_scope_pairs(con, scope))
    shard_k = SHARD_K_FACTOR * k
    con.register("_shard_hits", shards.search(vector, shard_k))
    _, rows = fetch(
        con,
        f"""
        WITH fresh AS (
            SELECT video_id, uri, clip_index, array_cosine_similarity(embedding::FLOAT[{dim}], $q::FLOAT[{dim}])::FLOAT AS similarity
            FROM ({rows_sql}) ORDER BY similarity DESC LIMIT {int(k)}
        ), held AS (
            SELECT h.video_id, p.uri, h.clip_index, h.similarity FROM _shard_hits AS h JOIN _scope_pairs AS p USING (video_id, run_id)
        )
        SELECT video_id, uri, clip_index, max(similarity) AS similarity FROM (SELECT * FROM held UNION ALL SELECT * FROM fresh)
        GROUP BY ALL ORDER BY similarity DESC, uri, clip_index LIMIT {int(k)}
        """,
        {**params, "q": vector.astype(np.float32).tolist()},
    )
    # a shard that answered fewer than k clips shown in the scope, and not all it holds, may hide some
    answers = "SELECT shard, count(*), count(p.uri) FROM _shard_hits AS h LEFT JOIN _scope_pairs AS p USING (video_id, run_id) GROUP BY ALL"
    _, per_shard = fetch(con, answers)
    if any(live < k and n < shards.shards[shard].marker["n_vectors"] for shard, n, live in per_shard):
        log.info("the scope (or re-scans) left fewer than %d of a shard's %d best clips: searching the scope exactly", k, shard_k)
        return _exact_top_clips(con, vector, model=model, scope=scope, k=k)
    return [Hit(v, u, int(c), float(sim)) for v, u, c, sim in rows]


def _exact_top_clips(con: duckdb.DuckDBPyConnection, vector: np.ndarray, *, model: str, scope: Scope, k: int) -> list[Hit]:
    dim = int(vector.shape[0])  # an int of our own model's config: safe in the SQL text
    videos, params = _scope_sql(con, scope)
    _, rows = fetch(
        con,
        f"""
        SELECT video_id, uri, clip_index,
               array_cosine_similarity(embedding::FLOAT[{dim}], $q::FLOAT[{dim}]) AS similarity
        FROM embeddings
        WHERE embedding_model = $model AND dim = {dim} AND video_id IN ({videos})
        ORDER BY similarity DESC, uri, clip_index
        LIMIT {int(k)}
        """,
        {**params, "model": model, "q": vector.astype(np.float32).tolist()},
    )
    return [Hit(v, u, int(c), float(sim)) for v, u, c, sim in rows]


def clip_selection(con: duckdb.DuckDBPyConnection, hits: list[Hit], *, neighbours: int = DEFAULT_NEIGHBOURS) -> dict[str, tuple[int, ...]]:
    """uri -> the hits' clips and up to `neighbours` clips on each side (those the video has: 0 .. n_clips - 1)."""
    if not hits:
        return {}
    con.register("_hit_videos", pa.table({"video_id": pa.array(sorted({hit.video_id for hit in hits}), pa.string())}))
    _, rows = fetch(con, "SELECT video_id, n_clips FROM videos WHERE video_id IN (SELECT video_id FROM _hit_videos)")
    n_clips = dict(rows)
    selected: dict[str, set[int]] = {}
    for hit in hits:
        beside = range(max(0, hit.clip_index - neighbours), min(int(n_clips[hit.video_id]), hit.clip_index + neighbours + 1))
        selected.setdefault(hit.uri, set()).update(beside)
    return {uri: tuple(sorted(clips)) for uri, clips in sorted(selected.items())}
