"""Benchmark: retrieval back-ends for the clip-embedding search index (issue 30).

What it measures, per index size N (``--sizes``), for top-k (k=64) search of one 512-d L2-normalised
query over N L2-normalised clip vectors:

- ``build s``  : time to build the index over the first N - N/30 vectors ("the month so far");
- ``add s``    : time to add the last N/30 vectors ("one more night") to that index, incrementally;
- ``query ms`` : single-query latency (the query is run 3 times, the best time is kept; for the
                 approximate back-ends it is the mean over all queries of each query's best of 3);
- ``recall@64``: mean |found & exact| / 64 over the queries, exact = numpy float32 ground truth;
- ``bytes``    : bytes on disk of the index / data files.

Back-ends (``--backends``):

- ``duckdb``  : exact search in DuckDB with only core functions (no ``vss`` extension).
                Stores: ``parquet`` (one file per "night" in a folder, read with a glob; the column is
                FLOAT[] in Parquet and must be cast to FLOAT[512]) and ``table`` (a native DuckDB table
                with a FLOAT[512] column). Queries: ORDER BY array_cosine_similarity .. LIMIT 64,
                ORDER BY array_inner_product .. LIMIT 64 and max_by(id, array_inner_product, 64).
- ``numpy``   : exact chunked matmul over a memory-mapped float16 matrix (the reference), and over a
                float32 matrix held in RAM when it fits (``--numpy-ram-max-gb``).
- ``faiss``   : IVF{nlist}_HNSW32,SQ8 (inner product) with a fixed trained quantizer; nprobe is swept
                until recall@64 >= ``--target-recall``. Also "SQ8 + exact re-rank" of 4*k candidates
                read back from the float16 store.
- ``usearch`` : HNSW (``--usearch-dtype``, default i8; connectivity 16, expansion_add 128);
                expansion_search swept until recall@64 >= target. Above ``--usearch-max-n`` or when the
                build extrapolated from the previous size exceeds ``--max-build-s`` it is not built:
                the row then says "extrapolated".
- ``lance``   : Lance dataset (pylance) with an IVF_PQ index; the appended night is NOT indexed, and a
                search scans it exactly (Lance does this itself); optimize_indices() folds it in.

Synthetic data (not iid gaussian, which has no structure): CLIP-like clustered vectors. A shared mean
direction (the embedding "cone"), 64 super-topics, N/200 clip-cluster centres mixing the three,
each vector = centre + per-cluster gaussian noise (sigma ~ 0.0185 * U(0.7, 1.3), giving
nearest-neighbour cosine ~0.85-0.9), L2-normalised and stored as float16. Queries: 20 made the same way
from the same centres with another seed, plus 4 pure random unit vectors. Vectors are generated and
ground truth is computed in chunks, so 10^7 x 512 (10 GiB of float16) stays well under 12 GB RSS.

Everything is cached under ``--work``; results are also appended as JSON lines to WORK/results.jsonl.

    python bench/retrieval_bench.py --sizes 10000,100000,1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

THREADS = os.environ.get("BENCH_THREADS", "2")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402

DIM = 512
K = 64
SIGMA = 0.0185
CHUNK = 131072


# ----------------------------------------------------------------------------------------------------
# synthetic data


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_centres(n_centres: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster centres (unit) and each cluster's noise sigma."""
    rng = np.random.default_rng(seed)
    cone = unit(rng.standard_normal(DIM, dtype=np.float32))
    supers = unit(rng.standard_normal((64, DIM), dtype=np.float32))
    own = unit(rng.standard_normal((n_centres, DIM), dtype=np.float32))
    centres = unit(0.5 * cone + 0.6 * supers[rng.integers(64, size=n_centres)] + 0.6 * own)
    sigmas = (SIGMA * rng.uniform(0.7, 1.3, size=n_centres)).astype(np.float32)
    return centres.astype(np.float32), sigmas


def sample_around(centres, sigmas, n, rng) -> np.ndarray:
    which = rng.integers(len(centres), size=n)
    noise = rng.standard_normal((n, DIM), dtype=np.float32)
    noise *= sigmas[which, None]
    noise += centres[which]
    return unit(noise)


def dataset(work: Path, n: int, seed: int) -> np.memmap:
    """N x 512 float16 .npy (memory-mapped), generated chunk by chunk and cached."""
    path = work / f"vectors_{n}_s{seed}.npy"
    if not path.exists():
        tmp = path.with_suffix(".tmp.npy")
        centres, sigmas = make_centres(max(n // 200, 8), seed)
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, DIM))
        for i, start in enumerate(range(0, n, CHUNK)):
            rng = np.random.default_rng([seed, i])
            mm[start : start + CHUNK] = sample_around(centres, sigmas, min(CHUNK, n - start), rng)
        mm.flush()
        del mm
        tmp.rename(path)
    return np.load(path, mmap_mode="r")


def queries(n: int, seed: int, n_clustered: int, n_random: int) -> np.ndarray:
    centres, sigmas = make_centres(max(n // 200, 8), seed)
    rng = np.random.default_rng(seed + 1_000_003)
    clustered = sample_around(centres, sigmas, n_clustered, rng)
    rand = unit(rng.standard_normal((n_random, DIM), dtype=np.float32))
    # rounded through float16 like the stored vectors
    return np.concatenate([clustered, rand]).astype(np.float16).astype(np.float32)


def chunks(mm: np.ndarray, start: int, stop: int, size: int = CHUNK):
    for a in range(start, stop, size):
        b = min(a + size, stop)
        yield a, np.asarray(mm[a:b], dtype=np.float32)


# ----------------------------------------------------------------------------------------------------
# exact search (ground truth and the numpy back-end)


def merge_topk(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(scores, part, 1)
        ids = np.take_along_axis(ids, part, 1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def exact_topk(mm: np.ndarray, q: np.ndarray, k: int = K, chunk: int = CHUNK):
    """Top-k by inner product of q (nq x 512) over all rows of mm, chunk by chunk."""
    best_s = np.empty((len(q), 0), np.float32)
    best_i = np.empty((len(q), 0), np.int64)
    for a, x in chunks(mm, 0, len(mm), chunk):
        s = q @ x.T
        i = np.broadcast_to(np.arange(a, a + len(x)), s.shape)
        best_s, best_i = merge_topk(np.concatenate([best_s, s], 1), np.concatenate([best_i, i], 1), k)
    return best_s, best_i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / truth.shape[1] for f, t in zip(found, truth)]))


def best_of(fn, repeat: int = 3, give_up_s: float = 30.0):
    """(best seconds, last result); stops repeating once a single run exceeds give_up_s."""
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
        if best > give_up_s:
            break
    return best, out


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def row(backend, n, build_s=None, add_s=None, query_ms=None, rec=None, nbytes=None, notes=""):
    return dict(backend=backend, N=n, build_s=build_s, add_s=add_s, query_ms=query_ms, recall=rec, bytes=nbytes, notes=notes)


# ----------------------------------------------------------------------------------------------------
# back-ends


def bench_numpy(ctx) -> list[dict]:
    mm, q, gt, n = ctx["mm"], ctx["q"], ctx["gt"], ctx["n"]
    t, _ = best_of(lambda: exact_topk(mm, q[:1]))
    _, ids = exact_topk(mm, q)
    rows = [
        row(
            "numpy exact, f16 memmap, chunked",
            n,
            query_ms=t * 1e3,
            rec=recall(ids, gt),
            nbytes=ctx["path"].stat().st_size,
            notes="f16->f32 per chunk + GEMV",
        )
    ]
    if n * DIM * 4 <= ctx["args"].numpy_ram_max_gb * 2**30:
        t0 = time.perf_counter()
        x = np.asarray(mm, dtype=np.float32)
        load_s = time.perf_counter() - t0
        t, _ = best_of(lambda: merge_topk((q[:1] @ x.T), np.arange(n)[None, :], K))
        _, ids = merge_topk(q @ x.T, np.broadcast_to(np.arange(n), (len(q), n)), K)
        rows.append(
            row(
                "numpy exact, f32 in RAM",
                n,
                build_s=load_s,
                query_ms=t * 1e3,
                rec=recall(ids, gt),
                nbytes=n * DIM * 4,
                notes="build = load f16 -> f32 RAM",
            )
        )
        del x
    return rows


def write_parquet_part(mm, a, b, path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for start, x in chunks(mm, a, b, 65536):
        vec = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), DIM)
        tab = pa.table({"id": pa.array(np.arange(start, start + len(x))), "v": vec})
        writer = writer or pq.ParquetWriter(path, tab.schema, compression="none")
        writer.write_table(tab, row_group_size=65536)
    writer.close()


DUCK_QUERIES = {
    "ORDER BY array_cosine_similarity": "SELECT id FROM {src} ORDER BY array_cosine_similarity({v}, $q::FLOAT[512]) DESC LIMIT 64",
    "ORDER BY array_inner_product": "SELECT id FROM {src} ORDER BY array_inner_product({v}, $q::FLOAT[512]) DESC LIMIT 64",
    "max_by(id, array_inner_product, 64)": "SELECT max_by(id, array_inner_product({v}, $q::FLOAT[512]), 64) FROM {src}",
}


def duck_ids(con, sql, q) -> np.ndarray:
    res = con.execute(sql, {"q": q.tolist()}).fetchall()
    if len(res) == 1 and isinstance(res[0][0], list):
        return np.array(res[0][0])
    return np.array([r[0] for r in res])


def bench_duckdb(ctx) -> list[dict]:
    import duckdb

    mm, q, gt, n, args = ctx["mm"], ctx["q"], ctx["gt"], ctx["n"], ctx["args"]
    base, work = ctx["n_base"], ctx["work"] / f"duck_{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads={THREADS}; SET memory_limit='6GB'; SET preserve_insertion_order=false")
    rows = []
    stores = args.duckdb_stores.split(",")
    for store in stores:
        if store == "parquet":
            t0 = time.perf_counter()
            write_parquet_part(mm, 0, base, work / "part-0000.parquet")
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            write_parquet_part(mm, base, n, work / "part-0001.parquet")
            add = time.perf_counter() - t0
            src, v, nbytes = f"read_parquet('{work}/part-*.parquet')", "v::FLOAT[512]", None
            nbytes = sum(dir_bytes(p) for p in work.glob("part-*.parquet"))
        else:  # native table in a DuckDB file, loaded from the Parquet parts (written if needed)
            if not (work / "part-0000.parquet").exists():
                write_parquet_part(mm, 0, base, work / "part-0000.parquet")
                write_parquet_part(mm, base, n, work / "part-0001.parquet")
            con.execute(f"ATTACH '{work}/index.duckdb' AS db")
            t0 = time.perf_counter()
            con.execute(f"CREATE TABLE db.t AS SELECT id, v::FLOAT[512] AS v FROM read_parquet('{work}/part-0000.parquet')")
            con.execute("CHECKPOINT db")
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            con.execute(f"INSERT INTO db.t SELECT id, v::FLOAT[512] FROM read_parquet('{work}/part-0001.parquet')")
            con.execute("CHECKPOINT db")
            add = time.perf_counter() - t0
            src, v = "db.t", "v"
            nbytes = dir_bytes(work / "index.duckdb")
        for name, tmpl in DUCK_QUERIES.items():
            if args.duckdb_fast_only and name != "ORDER BY array_inner_product":
                continue
            sql = tmpl.format(src=src, v=v)
            t, _ = best_of(lambda sql=sql: duck_ids(con, sql, q[0]), give_up_s=args.give_up_s)
            n_rec = len(q) if t < 0.5 else 2  # exact: recall only checks for float ties
            ids = np.stack([duck_ids(con, sql, qq) for qq in q[:n_rec]])
            rows.append(
                row(
                    f"duckdb exact, {store}: {name}",
                    n,
                    build,
                    add,
                    t * 1e3,
                    recall(ids, gt[:n_rec]),
                    nbytes,
                    f"recall on {n_rec} queries" + ("" if t <= args.give_up_s else "; 1 run"),
                )
            )
    con.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def faiss_nlist(n: int, args) -> int:
    return int(max(16, min(args.nlist_factor * math.sqrt(n), args.max_nlist)))


def sweep(set_param, search, values, gt, target):
    """First value (ascending) whose recall >= target; returns (value, recall, ids) for it or the last."""
    for val in values:
        set_param(val)
        ids = search()
        rec = recall(ids, gt)
        if rec >= target:
            break
    return val, rec, ids


def per_query_ms(search_one, q) -> float:
    return float(np.mean([best_of(lambda qq=qq: search_one(qq[None, :]))[0] for qq in q])) * 1e3


def rerank(mm, q, cand: np.ndarray) -> np.ndarray:
    out = []
    for qq, c in zip(q, cand):
        c = np.unique(c[c >= 0])
        s = np.asarray(mm[c], dtype=np.float32) @ qq
        top = c[np.argsort(-s)[:K]]
        out.append(np.pad(top, (0, K - len(top)), constant_values=-1))
    return np.stack(out)


def bench_faiss(ctx) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(int(THREADS))
    mm, q, gt, n, base, args = ctx["mm"], ctx["q"], ctx["gt"], ctx["n"], ctx["n_base"], ctx["args"]
    nlist = faiss_nlist(n, args)
    index = faiss.index_factory(DIM, f"IVF{nlist}_HNSW32,SQ8", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = 10
    n_train = min(base, max(40 * nlist, 20000))
    t0 = time.perf_counter()
    index.train(np.asarray(mm[:n_train], dtype=np.float32))
    train_s = time.perf_counter() - t0
    for _, x in chunks(mm, 0, base):
        index.add(x)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _, x in chunks(mm, base, n):
        index.add(x)
    add = time.perf_counter() - t0
    path = ctx["work"] / f"faiss_{n}.index"
    faiss.write_index(index, str(path))
    nbytes = path.stat().st_size
    if not args.keep:
        path.unlink()
    ps = faiss.ParameterSpace()

    def set_nprobe(p):
        ps.set_index_parameter(index, "nprobe", p)
        ps.set_index_parameter(index, "quantizer_efSearch", max(64, 2 * p))

    nprobes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if p <= nlist]
    p, rec, _ = sweep(set_nprobe, lambda: index.search(q, K)[1], nprobes, gt, args.target_recall)
    ms = per_query_ms(lambda x: index.search(x, K), q)
    rec_rand = recall(index.search(q[ctx["n_clustered"] :], K)[1], gt[ctx["n_clustered"] :])
    common = f"nlist={nlist}, train {train_s:.1f}s on {n_train}"
    rows = [row("faiss IVF_HNSW32,SQ8", n, build, add, ms, rec, nbytes, f"nprobe={p}; {common}; recall random q={rec_rand:.2f}")]
    # SQ8 candidates re-ranked exactly from the float16 store (what the Parquet/raw copy would give)
    p2, rec2, _ = sweep(set_nprobe, lambda: rerank(mm, q, index.search(q, 4 * K)[1]), nprobes, gt, args.target_recall)
    ms2 = per_query_ms(lambda x: rerank(mm, x, index.search(x, 4 * K)[1]), q)
    rows.append(
        row(
            "faiss IVF_HNSW32,SQ8 + exact re-rank 4k",
            n,
            build,
            add,
            ms2,
            rec2,
            nbytes,
            f"nprobe={p2}; re-rank reads 256 rows from the f16 store",
        )
    )
    return rows


def usearch_extrapolate(n: int, n0: int, t0: float) -> float:
    return t0 * (n / n0) * math.log(n) / math.log(n0)


def bench_usearch(ctx) -> list[dict]:
    from usearch.index import Index

    mm, q, gt, n, base, args = ctx["mm"], ctx["q"], ctx["gt"], ctx["n"], ctx["n_base"], ctx["args"]
    prev = ctx["state"].get("usearch")
    name = f"usearch HNSW {args.usearch_dtype} (M=16, ef_add=128)"
    if prev:
        est = usearch_extrapolate(n, *prev)
        if n > args.usearch_max_n or est > args.max_build_s:
            return [
                row(
                    name,
                    n,
                    build_s=est,
                    notes=f"NOT RUN: build extrapolated from N={prev[0]} ({prev[1]:.0f}s) as N log N; > --max-build-s or --usearch-max-n",
                )
            ]
    index = Index(ndim=DIM, metric="cos", dtype=args.usearch_dtype, connectivity=16, expansion_add=128, expansion_search=64)
    t0 = time.perf_counter()
    for a, x in chunks(mm, 0, base):
        index.add(np.arange(a, a + len(x)), x, threads=int(THREADS))
        if time.perf_counter() - t0 > args.max_build_s:
            est = (time.perf_counter() - t0) * base / (a + len(x))
            return [
                row(name, n, build_s=est, notes=f"ABORTED after {args.max_build_s}s at {a + len(x)} vectors; build extrapolated linearly")
            ]
    build = time.perf_counter() - t0
    ctx["state"]["usearch"] = (n, build)
    t0 = time.perf_counter()
    for a, x in chunks(mm, base, n):
        index.add(np.arange(a, a + len(x)), x, threads=int(THREADS))
    add = time.perf_counter() - t0
    path = ctx["work"] / f"usearch_{n}.usearch"
    index.save(str(path))
    nbytes = path.stat().st_size
    if not args.keep:
        path.unlink()

    def set_ef(e):
        index.expansion_search = e

    ef, rec, _ = sweep(set_ef, lambda: index.search(q, K, threads=int(THREADS)).keys, (64, 128, 256, 512, 1024), gt, args.target_recall)
    ms = per_query_ms(lambda x: index.search(x, K, threads=1), q)
    nc = ctx["n_clustered"]
    rec_rand = recall(index.search(q[nc:], K).keys, gt[nc:])
    return [row(name, n, build, add, ms, rec, nbytes, f"expansion_search={ef}; recall random q={rec_rand:.2f}")]


def lance_batches(mm, a, b):
    import pyarrow as pa

    schema = pa.schema([("id", pa.int64()), ("v", pa.list_(pa.float32(), DIM))])

    def gen():
        for start, x in chunks(mm, a, b, 65536):
            yield pa.record_batch(
                [pa.array(np.arange(start, start + len(x))), pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), DIM)], schema=schema
            )

    return pa.RecordBatchReader.from_batches(schema, gen())


def bench_lance(ctx) -> list[dict]:
    os.environ.setdefault("RUST_LOG", "error")  # silence the per-search `_distance` deprecation warning
    import lance

    mm, q, gt, n, base, args = ctx["mm"], ctx["q"], ctx["gt"], ctx["n"], ctx["n_base"], ctx["args"]
    name = "lance IVF_PQ(64 sub-vectors) + flat over un-indexed"
    if n > args.lance_max_n:
        return [row(name, n, notes=f"NOT RUN: N > --lance-max-n {args.lance_max_n}")]
    path = ctx["work"] / f"lance_{n}.lance"
    shutil.rmtree(path, ignore_errors=True)
    nlist = faiss_nlist(n, args)
    t0 = time.perf_counter()
    ds = lance.write_dataset(lance_batches(mm, 0, base), str(path), max_rows_per_file=1 << 20)
    ds.create_index("v", index_type="IVF_PQ", num_partitions=nlist, num_sub_vectors=64, metric="dot")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = lance.write_dataset(lance_batches(mm, base, n), str(path), mode="append")
    add = time.perf_counter() - t0  # appended, not yet indexed: searched exactly

    def search(x, nprobes, refine):
        tab = ds.to_table(columns=["id"], nearest={"column": "v", "q": x, "k": K, "nprobes": nprobes, "refine_factor": refine})
        return tab.column("id").to_numpy()

    rows = []
    for label in ("tail un-indexed", "after optimize_indices"):
        if label == "after optimize_indices":
            t0 = time.perf_counter()
            ds.optimize.optimize_indices()
            ds = lance.dataset(str(path))
            add = time.perf_counter() - t0
        state = {}

        def set_p(p, state=state):
            state["p"] = p

        def run_all(state=state):
            return np.stack([search(qq, state["p"], args.lance_refine) for qq in q])

        p, rec, _ = sweep(set_p, run_all, [p for p in (4, 8, 16, 32, 64, 128) if p <= nlist], gt, args.target_recall)
        ms = float(np.mean([best_of(lambda qq=qq, p=p: search(qq, p, args.lance_refine))[0] for qq in q])) * 1e3
        rows.append(
            row(
                f"{name}, {label}",
                n,
                build,
                add,
                ms,
                rec,
                dir_bytes(path),
                f"nprobes={p}, refine_factor={args.lance_refine}, nlist={nlist}; add = "
                + ("append" if label.startswith("tail") else "optimize_indices"),
            )
        )
    if not args.keep:
        shutil.rmtree(path, ignore_errors=True)
    return rows


BACKENDS = {"numpy": bench_numpy, "duckdb": bench_duckdb, "faiss": bench_faiss, "usearch": bench_usearch, "lance": bench_lance}


# ----------------------------------------------------------------------------------------------------
# driver


def peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def markdown(rows: list[dict]) -> str:
    out = [
        "| back-end | N | build s (29/30 N) | add s (N/30) | query ms (best of 3) | recall@64 | bytes | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        out.append(
            f"| {r['backend']} | {r['N']:,} | {fmt(r['build_s'], '.1f')} | {fmt(r['add_s'], '.2f')} | "
            f"{fmt(r['query_ms'], '.1f')} | {fmt(r['recall'], '.3f')} | {fmt(r['bytes'], ',')} | {r['notes']} |"
        )
    return "\n".join(out)


def previous_usearch_build(path: Path) -> dict:
    """The largest measured usearch build of an earlier run, to extrapolate larger sizes from."""
    if not path.exists():
        return {}
    built = [
        r
        for r in map(json.loads, path.read_text().splitlines())
        if r["backend"].startswith("usearch") and not r["notes"].startswith(("NOT RUN", "ABORTED"))
    ]
    return {"usearch": max((r["N"], r["build_s"]) for r in built)} if built else {}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated N values")
    ap.add_argument("--backends", default="numpy,duckdb,faiss,usearch,lance")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lavida-retrieval-bench"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-clustered-queries", type=int, default=20)
    ap.add_argument("--n-random-queries", type=int, default=4)
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--duckdb-stores", default="parquet,table", help="parquet and/or table")
    ap.add_argument("--duckdb-fast-only", action="store_true", help="only the array_inner_product query")
    ap.add_argument("--duckdb-max-n", type=int, default=10**7)
    ap.add_argument("--give-up-s", type=float, default=30.0, help="no repeats once one query takes longer")
    ap.add_argument("--numpy-ram-max-gb", type=float, default=4.0)
    ap.add_argument("--nlist-factor", type=float, default=4.0)
    ap.add_argument("--max-nlist", type=int, default=4096)
    ap.add_argument("--usearch-dtype", default="f16", help="f16 or i8 (i8 caps recall@64 ~0.88 on this data)")
    ap.add_argument("--usearch-max-n", type=int, default=10**6)
    ap.add_argument("--lance-refine", type=int, default=8, help="Lance refine_factor")
    ap.add_argument("--lance-max-n", type=int, default=10**5)
    ap.add_argument("--max-build-s", type=float, default=900.0)
    ap.add_argument("--keep", action="store_true", help="keep index files (vectors are always cached)")
    ap.add_argument("--drop-vectors", action="store_true", help="delete each size's cached vectors after")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    backends = args.backends.split(",")
    state: dict = previous_usearch_build(args.work / "results.jsonl")
    rows: list[dict] = []
    for n in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        mm = dataset(args.work, n, args.seed)
        gen_s = time.perf_counter() - t0
        q = queries(n, args.seed, args.n_clustered_queries, args.n_random_queries)
        t0 = time.perf_counter()
        gt_s, gt = exact_topk(mm, q)
        nc = args.n_clustered_queries
        print(
            f"# N={n:,}: data {gen_s:.1f}s, ground truth {time.perf_counter() - t0:.1f}s; clustered-query "
            f"top-1 cos {gt_s[:nc, 0].mean():.3f}, 64th {gt_s[:nc, -1].mean():.3f}; random-query top-1 "
            f"{gt_s[nc:, 0].mean():.3f}; NN cos of data rows {exact_topk(mm, np.asarray(mm[:8], np.float32), 2)[0][:, 1].mean():.3f}",
            file=sys.stderr,
            flush=True,
        )
        ctx = dict(
            mm=mm,
            q=q,
            gt=gt,
            n=n,
            n_base=n - n // 30,
            n_clustered=nc,
            args=args,
            work=args.work,
            path=args.work / f"vectors_{n}_s{args.seed}.npy",
            state=state,
        )
        for b in backends:
            if b == "duckdb" and n > args.duckdb_max_n:
                continue
            t0 = time.perf_counter()
            new = BACKENDS[b](ctx)
            print(f"#   {b}: {time.perf_counter() - t0:.0f}s wall, peak RSS {peak_rss_gb():.1f} GB", file=sys.stderr, flush=True)
            print(markdown(new), file=sys.stderr, flush=True)
            rows += new
            with open(args.work / "results.jsonl", "a") as fh:
                for r in new:
                    fh.write(json.dumps(r) + "\n")
        del mm, ctx
        if args.drop_vectors:
            (args.work / f"vectors_{n}_s{args.seed}.npy").unlink()
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
