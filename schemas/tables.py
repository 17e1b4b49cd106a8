"""Arrow schemas of the four OUT tables: `frames`, `clips`, `videos`, `runs` (declared once, here).

Layout of OUT (a local folder or an s3:// prefix), one Parquet file per (table, video):

    OUT/frames/<video_id>.parquet    the sampled frames of one video (score + mask)
    OUT/clips/<video_id>.parquet     the clips of one video
    OUT/videos/<video_id>.parquet    one row: the video's status; written LAST, the commit marker
    OUT/runs/<run_id>.parquet        one row per run (rewritten when the run finishes)

so that `read_parquet('OUT/<table>/**/*.parquet', hive_partitioning = true)` reads a table.
A video is committed when its `videos` file exists: readers that must never see a half-written
video keep only the `frames`/`clips` rows whose `video_id` has a `videos` row (see the views).

`frames` holds the frames the model saw (every `sample_interval`-th frame), not every decoded frame;
`frame_index` is the frame's index in the decoded video, `timestamp_s` its presentation time from
the decoder. Changes to these schemas are additive only; bump SCHEMA_VERSION when one is made.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 2  # 2: runs.model_card

TABLE_NAMES = ("frames", "clips", "videos", "runs")

# COCO compressed RLE of one mask, as pycocotools.mask.decode reads it
# ({"size": [height, width], "counts": <str>}); the column is null when nothing is segmented.
MASK_RLE_TYPE = pa.struct(
    [
        pa.field("size", pa.list_(pa.int32()), nullable=False),  # [height, width]
        pa.field("counts", pa.string(), nullable=False),
    ]
)

FRAMES_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),  # stable for the same file (uri + size + mtime/ETag)
        pa.field("uri", pa.string(), nullable=False),
        pa.field("clip_index", pa.int64(), nullable=False),  # which clip of the video this frame was scored in
        pa.field("frame_index", pa.int64(), nullable=False),  # index in the decoded video
        pa.field("timestamp_s", pa.float64(), nullable=False),  # presentation time from the decoder
        pa.field("score", pa.float32(), nullable=False),  # frame anomaly score, 0..1
        pa.field("mask_rle", MASK_RLE_TYPE, nullable=True),  # null when nothing is segmented
        pa.field("run_id", pa.string(), nullable=False),
    ],
    metadata={"lavida_table": "frames", "lavida_schema_version": str(SCHEMA_VERSION)},
)

CLIPS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("clip_index", pa.int64(), nullable=False),  # 0.. in time order
        pa.field("frame_indices", pa.list_(pa.int64()), nullable=False),  # the frames the model saw, in order
        pa.field("start_s", pa.float64(), nullable=False),  # timestamp of the first frame
        pa.field("end_s", pa.float64(), nullable=False),  # timestamp of the last frame
        pa.field("max_score", pa.float32(), nullable=False),
        pa.field("anomaly_types", pa.list_(pa.string()), nullable=False),  # the text the model was given
        pa.field("run_id", pa.string(), nullable=False),
    ],
    metadata={"lavida_table": "clips", "lavida_schema_version": str(SCHEMA_VERSION)},
)

VIDEOS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        # 'ok' or an error kind: 'empty', 'truncated', 'not_a_video', 'unsupported_codec',
        # 'no_frames', 'read_error', 'decode_error', 'detect_error'
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=True),  # message, null when status = 'ok'
        pa.field("n_frames", pa.int64(), nullable=True),  # decodable frames; null when unknown
        pa.field("fps", pa.float64(), nullable=True),
        pa.field("duration_s", pa.float64(), nullable=True),
        pa.field("width", pa.int32(), nullable=True),
        pa.field("height", pa.int32(), nullable=True),
        pa.field("run_id", pa.string(), nullable=False),
        # extras
        pa.field("size_bytes", pa.int64(), nullable=True),
        pa.field("version_tag", pa.string(), nullable=True),  # mtime or ETag used in the fingerprint
        pa.field("n_sampled_frames", pa.int64(), nullable=False),  # rows in `frames` for this video
        pa.field("n_clips", pa.int64(), nullable=False),  # rows in `clips` for this video
        pa.field("committed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={"lavida_table": "videos", "lavida_schema_version": str(SCHEMA_VERSION)},
)

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # 'scan' | 'search'
        pa.field("source", pa.string(), nullable=True),  # the archive listed; null when given explicit uris
        pa.field("out", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),  # preset name or model folder
        # False: a preset with random weights (scores mean nothing); null while running, or when the
        # run had no video to scan (the model was never loaded)
        pa.field("model_trained", pa.bool_(), nullable=True),
        pa.field("anomaly_types", pa.list_(pa.string()), nullable=False),
        pa.field("sample_interval", pa.int64(), nullable=False),
        pa.field("frames_per_clip", pa.int64(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("finished_at", pa.timestamp("us", tz="UTC"), nullable=True),  # null while running / if killed
        pa.field("n_ok", pa.int64(), nullable=True),  # null until the run finishes
        pa.field("n_failed", pa.int64(), nullable=True),
        pa.field("n_skipped", pa.int64(), nullable=True),
        pa.field("description", pa.string(), nullable=True),  # the search text; null for scans
        pa.field("schema_version", pa.int32(), nullable=False),
        # what the model was trained on and what not to use it for (lavida_core.checkpoint.ModelCard.summary);
        # null for a detector other than LAVIDA's
        pa.field("model_card", pa.string(), nullable=True),
    ],
    metadata={"lavida_table": "runs", "lavida_schema_version": str(SCHEMA_VERSION)},
)

SCHEMAS: dict[str, pa.Schema] = {
    "frames": FRAMES_SCHEMA,
    "clips": CLIPS_SCHEMA,
    "videos": VIDEOS_SCHEMA,
    "runs": RUNS_SCHEMA,
}

# Error kinds a video's `status` can take besides 'ok' (see jobs/decode.py for when each is used).
VIDEO_ERROR_KINDS = (
    "empty",  # zero bytes
    "truncated",  # a known container whose data ends early / cannot be parsed
    "not_a_video",  # not a media file, or a media file with no video stream
    "unsupported_codec",  # a video stream the decoder has no decoder for
    "no_frames",  # a video stream without one decodable frame
    "read_error",  # the file could not be read from storage
    "decode_error",  # decoding failed in another way
    "detect_error",  # the model failed on this video's frames
)
