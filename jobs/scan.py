"""`lavida scan`: list an archive, decode sampled clips, run LAVIDA on an actor pool, write Parquet.

Other jobs (search, eval) call `scan(ScanOptions(...)) -> ScanSummary`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Default anomaly types for surveillance footage when neither --anomaly nor --prompts is given.
DEFAULT_ANOMALY_TYPES: tuple[str, ...] = (
    "fighting",
    "a person falling down",
    "a person running",
    "vandalism",
    "stealing",
    "fire",
    "smoke",
    "an explosion",
    "a traffic accident",
    "a person climbing a fence",
    "a vehicle on a pedestrian walkway",
    "an abandoned bag",
)

# Surveillance default: one frame in 16 (about 2 frames a second at 30 fps), 8 frames a clip,
# so one clip covers about 4 seconds. Benchmarks use the reference's per-dataset intervals.
DEFAULT_SAMPLE_INTERVAL = 16
DEFAULT_FRAMES_PER_CLIP = 8


@dataclass(frozen=True, kw_only=True)
class ScanOptions:
    """Everything one scan (or a search's re-scan) needs; see `lavida scan --help`."""

    source: str | None  # a folder, a glob or an s3:// prefix; None when `uris` is given
    out: str  # a local folder or an s3:// prefix
    model: str = "tiny"  # a preset name or a model folder (LavidaDetector.load)
    anomaly_types: tuple[str, ...] = DEFAULT_ANOMALY_TYPES
    sample_interval: int = DEFAULT_SAMPLE_INTERVAL
    frames_per_clip: int = DEFAULT_FRAMES_PER_CLIP
    device: str = "cpu"  # 'cpu' | 'cuda'
    ray_address: str | None = None  # join this cluster; None starts (or reuses) a local Ray
    rescan: bool = False  # redo videos that are already committed in OUT
    batch_size: int = 4  # clips per detect call
    num_actors: int = 1  # detector actors in the pool
    gpus_per_actor: float = 0.0  # num_gpus per actor (0 on CPU)
    kind: str = "scan"  # 'scan' | 'search' (written to the runs table)
    description: str | None = None  # the search text for kind='search'
    uris: tuple[str, ...] | None = None  # explicit videos instead of listing `source`
    storage_options: dict[str, str] = field(default_factory=dict)  # fsspec options for s3:// (endpoint, keys)


@dataclass(frozen=True)
class ScanSummary:
    run_id: str
    n_ok: int
    n_failed: int
    n_skipped: int


def scan(options: ScanOptions) -> ScanSummary:
    """Run the whole pipeline for `options`; returns the run's id and counts."""
    raise NotImplementedError("scan is being written (issue 3)")


def add_arguments(parser) -> None:
    parser.add_argument("source", help="a folder, a glob or an s3:// prefix of videos")
    parser.add_argument("--out", required=True, help="a local folder or an s3:// prefix for the Parquet tables")


def run(args) -> int:
    raise NotImplementedError("scan is being written (issue 3)")
