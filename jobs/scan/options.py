"""The scan's defaults, in one place: the CLI, ScanOptions, the decode and write stages and the
search read them here (none imports them back from the job)."""

from __future__ import annotations

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

# OUT commits: every 64 finished videos or every minute, whichever comes first (a kill loses at most
# that much work). A video longer than 150 clips (~10 minutes at the defaults) is decoded in
# segments of 150 clips, in parallel tasks, each committed as it finishes.
DEFAULT_COMMIT_EVERY = 64
DEFAULT_COMMIT_SECONDS = 60.0
DEFAULT_CLIPS_PER_SEGMENT = 150

# A local file of this size or more may hold several segments: it is planned by a task of its own and
# its segments decode in parallel tasks. Smaller files (and remote ones, downloaded whole anyway) are
# decoded whole, several to a task: an archive of short clips pays one task per few videos.
DEFAULT_PLAN_BYTES = 16 * 2**20
