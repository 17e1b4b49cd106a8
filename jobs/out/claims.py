"""One run per video at a time: claims in OUT's `claims` table.

A scan appends one claim row per video it means to scan, in one Delta commit, then reads the
claims committed before its own (the table as of the version just before its commit). A video
that an earlier commit claimed for a run that is still live (jobs/out/leases.py) is left to that run;
the others are this run's. Delta numbers commits in one total order, and each run sees every commit
before its own, so of two runs that claim a video at the same time exactly the later one backs off.
Claims need no release: a run that ended (or died) is not live, so its claims stop holding.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from jobs.out.leases import live_runs
from jobs.out.tables import OutTables
from schemas.tables import CLAIMS_SCHEMA


def claim(tables: OutTables, run_id: str, video_ids: list[str]) -> dict[str, str]:
    """Claim `video_ids` for `run_id`; returns the videos held by another live run (video_id -> run_id).

    Which runs are live is read after this run's claim commit, not before: a run whose claim
    committed earlier took its lease earlier still, so it is seen (read before, a run that started
    between the reading and this commit would be missed, and both would scan the video)."""
    if not video_ids:
        return {}
    now = datetime.now(UTC)
    rows = pa.table(
        {"video_id": video_ids, "run_id": [run_id] * len(video_ids), "claimed_at": [now] * len(video_ids)}, schema=CLAIMS_SCHEMA
    )
    tables.append("claims", rows, run_id)
    before = _version_of(tables, run_id) - 1
    if before < 0:
        return {}
    others = live_runs(tables.fs, tables.root) - {run_id}
    if not others:
        return {}
    earlier = tables.table("claims", as_of=before)
    if earlier is None:
        return {}
    held = earlier.to_pyarrow_dataset().to_table(
        columns=["video_id", "run_id"],
        filter=pc.field("run_id").isin(sorted(others)) & pc.field("video_id").isin(video_ids),
    )
    return dict(zip(held.column("video_id").to_pylist(), held.column("run_id").to_pylist()))


def _version_of(tables: OutTables, run_id: str) -> int:
    """The version of the claims commit this run made (found by its commit metadata)."""
    for limit in (20, 200, None):
        for entry in tables.table("claims").history(limit):
            if entry.get("lavida_run_id") == run_id and entry.get("operation") in ("WRITE", "CREATE TABLE"):
                return int(entry["version"])
    raise RuntimeError(f"the claims commit of run {run_id} is not in the claims table's history")
