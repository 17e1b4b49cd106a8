"""The approximate clip index under OUT: faiss IVF-SQ8 shards over the `embeddings` rows, for OUTs
past a few 10^5 clips, where an exact search in DuckDB no longer answers in a second.

    OUT/clip_index/<model key>/<shard id>/ivf.faiss      faiss IndexIVFScalarQuantizer (SQ8, inner product)
                                         /pairs.parquet  pair number -> (video_id, run_id) it holds
                                         /shard.json     written last: a shard without it is unfinished

    update_index(out, con, model, min_rows=...) -> a shard of the model's shown `embeddings` rows that no
                                                shard holds yet, when there are at least min_rows of them
                                                (run at the end of a scan and by `lavida index`)
    ShardSet.load(out, model)               -> the finished shards (their pairs; a remote shard's files are
                                                cached locally when first read, faiss files memory-mapped)
    ShardSet.search(vector, k)              -> [(video_id, run_id, clip_index, similarity)], each shard's best k
    ShardSet.covered                        -> Arrow table (video_id, run_id): the pairs the shards hold

A shard holds whole (video_id, run_id) pairs: all rows one run committed for one video, which are complete
once the video's `videos` row names the run (schemas/views.py), so "rows no shard holds" is a set of pairs,
and the retrieval (jobs/search/retrieve.py) searches those exactly, beside the shards: a search always
covers every indexed video, whatever the shards lag. A shown pair without rows is held with no vector.
A shard is immutable; a re-scan leaves the old pair's rows in it, which the retrieval drops (their pair
is no longer shown), and the next update retires a shard of mostly replaced pairs. Each shard trains its
own coarse quantizer on its own rows (sqrt(n) lists), so shards never have to agree on one, and writers
need no lock: two updates at once may both index the same pairs, and the retrieval keeps each clip once.
faiss ids are `pair << CLIP_BITS | clip_index`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.common.errors import UserError
from jobs.out.duck import Out, fetch, fetch_arrow
from schemas.views import source_name

log = logging.getLogger(__name__)
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it logs each CPU build it tries at INFO

INDEX_FOLDER = "clip_index"
DEFAULT_MIN_ROWS = 50_000  # the exact search over the rows no shard holds: ~0.8-1 s per 10^5 512-d rows on 2 cores (bench/RESULTS.md)
MAX_SHARD_ROWS = 1_000_000  # vectors one shard holds at most (float32 in memory while it is built: 2 GiB at 512-d)
PROBE_FRACTION = 8  # a search probes 1/8 of a shard's lists (recall@64 >= 0.95 in bench/bench_clip_index.py)
CLIP_BITS = 24  # clips per video < 2^24
MARKER = "shard.json"
PAIRS_SCHEMA = pa.schema([pa.field("video_id", pa.string()), pa.field("run_id", pa.string())])
HITS_SCHEMA = pa.schema(
    [*PAIRS_SCHEMA, pa.field("clip_index", pa.int64()), pa.field("similarity", pa.float32()), pa.field("shard", pa.int32())]
)


def model_key(model: str) -> str:
    """The folder name of a model's shards (model names may be paths)."""
    return hashlib.sha256(model.encode("utf-8")).hexdigest()[:16]


def index_root(out: Out, model: str) -> str:
    return out.join(INDEX_FOLDER, model_key(model))


def n_lists(n_vectors: int) -> int:
    """Inverted lists of a shard of n vectors: sqrt(n), at least 1, trained on 40 vectors a list at least."""
    return max(1, min(int(math.sqrt(n_vectors)), n_vectors // 40))


@dataclass
class Shard:
    folder: str  # its URI under OUT
    marker: dict  # shard.json: model, dim, n_vectors, n_pairs, nlist, created_at
    pairs: pa.Table  # pair (int64), video_id, run_id
    local: Callable[[str], str]  # a file of the shard -> a local path to read it from
    _index: object = None

    @property
    def index(self):
        """The faiss index, memory-mapped on first use (an update needs only the pairs)."""
        if self._index is None:
            import faiss

            self._index = faiss.read_index(self.local("ivf.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            self._index.nprobe = max(1, math.ceil(self._index.nlist / PROBE_FRACTION))
        return self._index


@dataclass
class ShardSet:
    shards: list[Shard]

    @classmethod
    def load(cls, out: Out, model: str, *, cache: str | None = None) -> ShardSet:
        """The model's finished shards. Local files are read in place; a remote shard's files are
        downloaded once each, when first needed, into `cache` (default ~/.cache/lavida, or
        $LAVIDA_CACHE; a shard never changes)."""
        shards = []
        for folder in _finished(out, model):
            local = (lambda name, folder=folder: f"{folder}/{name}") if not out.is_remote else _remote_files(out, folder, cache)
            marker = json.loads(Path(local(MARKER)).read_text())
            shards.append(Shard(folder, marker, pq.read_table(local("pairs.parquet")), local))
        return cls(shards)

    @property
    def covered(self) -> pa.Table:
        tables = [shard.pairs.select(["video_id", "run_id"]) for shard in self.shards]
        return pa.concat_tables(tables) if tables else PAIRS_SCHEMA.empty_table()

    @property
    def dim(self) -> int | None:
        """The width of the shards' vectors (None: no shard holds any)."""
        return next((int(shard.marker["dim"]) for shard in self.shards if shard.marker["n_vectors"]), None)

    @property
    def n_vectors(self) -> int:
        return sum(int(shard.marker["n_vectors"]) for shard in self.shards)

    def search(self, vector: np.ndarray, k: int) -> pa.Table:
        """Each shard's k best rows for the unit query `vector`: video_id, run_id, clip_index, similarity
        (the SQ8 codes' inner product, within ~1e-2 of the exact cosine), shard (its number here)."""
        query = np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32)
        searched = [(number, shard) for number, shard in enumerate(self.shards) if shard.marker["n_vectors"]]
        try:
            for _, shard in searched:
                shard.index  # noqa: B018  (maps it now: an update may retire a shard after it was listed)
        except (OSError, RuntimeError) as error:  # faiss: RuntimeError when the file is gone
            raise UserError(f"OUT's clip index changed during this search (a shard was replaced): search again ({error})") from None
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # faiss lets go of the GIL while it searches
            answers = list(pool.map(lambda item: item[1].index.search(query, k), searched))
        tables = [HITS_SCHEMA.empty_table()]
        for (number, shard), (scores, ids) in zip(searched, answers):
            found = ids[0] >= 0
            ids, scores = ids[0][found], scores[0][found]
            pairs = shard.pairs.take(pa.array(ids >> CLIP_BITS))  # the pair number is the row of pairs.parquet
            columns = [pairs["video_id"], pairs["run_id"], ids & ((1 << CLIP_BITS) - 1), scores, np.full(len(ids), number, np.int32)]
            tables.append(pa.table(columns, schema=HITS_SCHEMA))
        return pa.concat_tables(tables)


def uncovered_rows_sql(con: duckdb.DuckDBPyConnection, covered: pa.Table, *, model: str, dim: int | None, pairs: str) -> tuple[str, dict]:
    """A SELECT of the model's `embeddings` rows (of width `dim`, when given) of the shown (video_id,
    run_id) pairs that `pairs` (a SELECT) gives and no shard holds (kept in the temp table _pending_pairs),
    and its parameters. DuckDB reads only the scan_date partitions from the oldest such run's first day
    on (rows are committed on or after their run started). It reads the table's snapshot, not the view:
    the pairs are shown ones."""
    con.register("_covered_pairs", covered)
    pending = f"SELECT video_id, run_id FROM ({pairs}) AS p ANTI JOIN _covered_pairs AS c USING (video_id, run_id)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _pending_pairs AS {pending}").fetchall()
    _, [(n_runs, n_unknown, first_start)] = fetch(
        con,
        "SELECT count(*), count(*) FILTER (WHERE r.run_id IS NULL), epoch(min(r.started_at)) "
        "FROM (SELECT DISTINCT run_id FROM _pending_pairs) AS p LEFT JOIN runs AS r USING (run_id)",
    )
    day, params = "", {"model": model}
    if n_runs == 0:
        day = "AND false"  # no pending pair: no row to read
    elif n_unknown == 0:
        day, params["first_day"] = "AND e.scan_date >= $first_day", datetime.fromtimestamp(first_start, UTC).date()
    sql = f"""
        SELECT e.* FROM {source_name("embeddings")} AS e SEMI JOIN _pending_pairs AS p USING (video_id, run_id)
        WHERE e.embedding_model = $model {"" if dim is None else f"AND e.dim = {int(dim)}"} {day}
    """
    return sql, params


def update_index(out: Out, con: duckdb.DuckDBPyConnection, model: str, dim: int | None = None, *, min_rows: int | None = None) -> int:
    """Index the model's visible rows that no finished shard holds, if there are at least `min_rows` of
    them (None: DEFAULT_MIN_ROWS; 0: any), in shards of at most MAX_SHARD_ROWS; returns the vectors
    indexed. `con`: a snapshot of OUT; dim: the model's embedding width (None: that of most of those rows).

    Visible pairs without such rows (a video `lavida index` back-filled keeps its scan run's empty pair, a
    video with no clip, another model's run) go into the shard as held, with no vector, or, when the
    index has shards but none is due, into a shard of their own: a visible pair's rows are all committed,
    so it stays empty, and a search need not read its run's partitions again.

    A shard of which at most half the pairs are still shown (re-scans replaced the rest) is retired: its
    shown pairs are indexed again into the new shard, then its folder is deleted, so that a search is not
    sent to the exact fallback by a shard full of replaced rows."""
    min_rows = DEFAULT_MIN_ROWS if min_rows is None else min_rows
    shards = ShardSet.load(out, model)
    retired = _stale(con, shards)
    if retired:
        log.info("clip index: %d shards hold mostly replaced rows; their shown rows are indexed again", len(retired))
        gone = {shard.folder for shard in retired}
        shards, min_rows = ShardSet([shard for shard in shards.shards if shard.folder not in gone]), 0
    scanned = "SELECT video_id, run_id FROM _video_runs WHERE video_id IN (SELECT video_id FROM videos WHERE status = 'ok')"
    rows_sql, params = uncovered_rows_sql(con, shards.covered, model=model, dim=None, pairs=scanned)
    _, counts = fetch(con, f"SELECT video_id, run_id, dim, count(*) FROM ({rows_sql}) GROUP BY ALL ORDER BY 1, 2", params)
    _, pending = fetch(con, "SELECT video_id, run_id FROM _pending_pairs ORDER BY 1, 2")
    if dim is None and counts:
        widths: dict[int, int] = {}
        for *_, width, n in counts:
            widths[int(width)] = widths.get(int(width), 0) + int(n)
        dim = max(widths, key=widths.__getitem__)
    counts = [(video_id, run_id, int(n)) for video_id, run_id, width, n in counts if width == dim]
    with_rows = {(video_id, run_id) for video_id, run_id, _ in counts}
    empty = [pair for pair in pending if pair not in with_rows]
    n_rows = sum(n for *_, n in counts)
    if n_rows == 0 or n_rows < min_rows:
        if n_rows:
            log.info("clip index: %d rows are searched exactly (a shard is built from %d)", n_rows, min_rows)
        if empty and shards.shards:  # (without shards a search is exact over everything: nothing to prune)
            log.info("clip index: %d video runs without embeddings recorded as held", len(empty))
            _write_shard(out, model, dim, _pairs_table(empty), None)
        _retire(out, retired)
        return 0
    groups, group, size = [], [], 0
    for video_id, run_id, n in counts:
        if group and size + n > MAX_SHARD_ROWS:
            groups.append(group)
            group, size = [], 0
        group.append((video_id, run_id))
        size += n
    groups.append(group + empty)  # pairs without vectors at the end: no faiss id refers to them
    for number, group in enumerate(groups, 1):
        pairs = _pairs_table(group)
        con.register("_shard_pairs", pairs)
        table = fetch_arrow(
            con,
            f"SELECT s.pair, r.clip_index, r.embedding FROM ({rows_sql}) AS r JOIN _shard_pairs AS s USING (video_id, run_id) "
            f"WHERE r.dim = {int(dim)}",
            params,
        )
        log.info("clip index: shard %d of %d, %d vectors of %d videos", number, len(groups), table.num_rows, len(group))
        _write_shard(out, model, dim, pairs, table)
    _retire(out, retired)
    return n_rows


def _retire(out: Out, shards: list[Shard]) -> None:
    for shard in shards:  # the marker first: a search that lists the folder from now on skips it
        out.fs.rm_file(f"{shard.folder}/{MARKER}")
        out.fs.rm(shard.folder, recursive=True)


def _stale(con: duckdb.DuckDBPyConnection, shards: ShardSet) -> list[Shard]:
    """The shards of which at most half the pairs are shown in the snapshot (one query for all)."""
    if not shards.shards:
        return []
    numbered = [shard.pairs.select(["video_id", "run_id"]).append_column("shard", pa.array([n] * shard.pairs.num_rows, pa.int32()))
                for n, shard in enumerate(shards.shards)]  # fmt: skip
    con.register("_held_pairs", pa.concat_tables(numbered))
    _, rows = fetch(
        con,
        "SELECT h.shard, count(*), count(p.run_id) FROM _held_pairs AS h "
        "LEFT JOIN (SELECT DISTINCT video_id, run_id FROM _video_runs) AS p USING (video_id, run_id) GROUP BY ALL",
    )
    return [shards.shards[number] for number, n_pairs, n_shown in sorted(rows) if n_shown * 2 <= n_pairs]


def _pairs_table(pairs: list[tuple[str, str]]) -> pa.Table:
    return pa.table(
        {
            "pair": pa.array(range(len(pairs)), pa.int64()),
            "video_id": pa.array([video_id for video_id, _ in pairs], pa.string()),
            "run_id": pa.array([run_id for _, run_id in pairs], pa.string()),
        }
    )


def _write_shard(out: Out, model: str, dim: int | None, pairs: pa.Table, rows: pa.Table | None) -> None:
    """One shard folder: the faiss index of `rows` (pair, clip_index, embedding; None: pairs only), the
    pairs, then the marker."""
    import faiss

    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
    folder = f"{index_root(out, model)}/{name}"
    files, index, nlist = ["pairs.parquet", MARKER], None, 0
    if rows is not None and rows.num_rows:
        vectors = np.asarray(rows.column("embedding").combine_chunks().flatten(), dtype=np.float32).reshape(-1, dim)
        ids = (rows.column("pair").to_numpy().astype(np.int64) << CLIP_BITS) | rows.column("clip_index").to_numpy().astype(np.int64)
        nlist = n_lists(len(vectors))
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # a small shard: fewer lists would do, but faiss warns on stderr
        index.train(vectors[np.random.default_rng(0).permutation(len(vectors))[: 64 * nlist]])
        index.add_with_ids(vectors, ids)
        files.insert(0, "ivf.faiss")
    with tempfile.TemporaryDirectory(prefix="lavida-shard-") as tmp:
        if index is not None:
            faiss.write_index(index, f"{tmp}/ivf.faiss")
        pq.write_table(pairs, f"{tmp}/pairs.parquet")
        marker = {"model": model, "dim": dim, "n_vectors": int(index.ntotal) if index is not None else 0, "n_pairs": pairs.num_rows,
                  "nlist": nlist, "created_at": datetime.now(UTC).isoformat()}  # fmt: skip
        Path(f"{tmp}/{MARKER}").write_text(json.dumps(marker, indent=1))
        out.fs.makedirs(folder, exist_ok=True)
        for file in files:  # the marker last: it makes the shard visible
            out.fs.put_file(f"{tmp}/{file}", f"{folder}/{file}")


def _finished(out: Out, model: str) -> list[str]:
    """The URIs of the model's finished shards, oldest first."""
    root = index_root(out, model)
    if not out.fs.exists(root):
        return []
    names = sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in out.fs.ls(root, detail=False))
    return [f"{root}/{name}" for name in names if out.fs.exists(f"{root}/{name}/{MARKER}")]


def _remote_files(out: Out, folder: str, cache: str | None) -> Callable[[str], str]:
    """name -> the local copy of a remote shard's file, downloaded on first use."""
    base = Path(cache or os.environ.get("LAVIDA_CACHE") or Path.home() / ".cache" / "lavida") / INDEX_FOLDER
    local = base / hashlib.sha256(folder.encode("utf-8")).hexdigest()[:24]

    def path(name: str) -> str:
        if not (local / name).exists():
            local.mkdir(parents=True, exist_ok=True)
            partial = local / f".{name}.{uuid.uuid4().hex[:8]}"
            out.fs.get_file(f"{folder}/{name}", str(partial))
            partial.replace(local / name)  # atomic: a reader never sees half a file
        return str(local / name)

    return path
