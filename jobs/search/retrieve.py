"""Retrieve: a description's CLIP embedding -> the best clips of OUT, exact, in DuckDB.

    scope = Scope(uris=None | [...], since=None | datetime, until=None | datetime)
    coverage(con, model, scope)                -> Coverage(n_videos, n_indexed)
    top_clips(con, vector, model, scope, k)    -> [Hit], best first
    clip_selection(con, hits, model)           -> {uri: (clip indices)}: the hits and the clips
                                                  beside them, so that an event has its extent

Exact cosine similarity over the `embeddings` view (DuckDB's core `array_cosine_similarity` on
FLOAT[dim]; no extension): the `embeddings` rows are the index, committed with each video's rows,
so there is no separate index to fall behind the tables. Only embeddings made by the search's
model (`embedding_model`) are compared: another model's vectors live in another space.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from jobs.out.duck import fetch

DEFAULT_NEIGHBOURS = 1  # clips on each side of a hit that LAVIDA re-scores with it


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
    start_s: float
    end_s: float
    similarity: float


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


def coverage(con: duckdb.DuckDBPyConnection, model: str, scope: Scope) -> Coverage:
    videos, params = _scope_sql(con, scope)
    _, rows = fetch(
        con,
        f"""
        WITH scope AS ({videos}),
        indexed AS (SELECT DISTINCT video_id FROM embeddings WHERE embedding_model = $model)
        SELECT count(*), count(i.video_id) FROM scope AS s LEFT JOIN indexed AS i USING (video_id)
        """,
        {**params, "model": model},
    )
    n_videos, n_indexed = rows[0]
    return Coverage(int(n_videos), int(n_indexed))


def top_clips(con: duckdb.DuckDBPyConnection, vector: np.ndarray, *, model: str, scope: Scope, k: int) -> list[Hit]:
    """The k clips of the scope most similar to `vector` (unit length, [dim]), best first; ties by uri, clip."""
    dim = int(vector.shape[0])  # an int of our own model's config: safe in the SQL text
    videos, params = _scope_sql(con, scope)
    _, rows = fetch(
        con,
        f"""
        SELECT video_id, uri, clip_index, start_s, end_s,
               array_cosine_similarity(embedding::FLOAT[{dim}], $q::FLOAT[{dim}]) AS similarity
        FROM embeddings
        WHERE embedding_model = $model AND dim = {dim} AND video_id IN ({videos})
        ORDER BY similarity DESC, uri, clip_index
        LIMIT {int(k)}
        """,
        {**params, "model": model, "q": vector.astype(np.float32).tolist()},
    )
    return [Hit(v, u, int(c), float(s), float(e), float(sim)) for v, u, c, s, e, sim in rows]


def clip_selection(
    con: duckdb.DuckDBPyConnection, hits: list[Hit], *, model: str, neighbours: int = DEFAULT_NEIGHBOURS
) -> dict[str, tuple[int, ...]]:
    """uri -> the hits' clips and up to `neighbours` clips on each side (those the video has)."""
    if not hits:
        return {}
    wanted: dict[str, set[int]] = {}
    for hit in hits:
        wanted.setdefault(hit.video_id, set()).update(range(hit.clip_index - neighbours, hit.clip_index + neighbours + 1))
    con.register("_hit_videos", pa.table({"video_id": pa.array(sorted(wanted), pa.string())}))
    _, rows = fetch(
        con,
        "SELECT video_id, uri, clip_index FROM embeddings "
        "WHERE embedding_model = $model AND video_id IN (SELECT video_id FROM _hit_videos)",
        {"model": model},
    )
    selected: dict[str, set[int]] = {}
    for video_id, uri, clip_index in rows:
        if int(clip_index) in wanted[video_id]:
            selected.setdefault(uri, set()).add(int(clip_index))
    return {uri: tuple(sorted(clips)) for uri, clips in sorted(selected.items())}
