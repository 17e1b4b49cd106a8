"""Arrow schemas of the OUT tables (declared once, here).

OUT (a local folder or an s3:// prefix) holds one Delta Lake table per name (jobs/out/tables.py):

    OUT/frames/    the sampled frames of the scanned videos (score + mask)     partitioned by scan_date
    OUT/clips/     the clips                                                    partitioned by scan_date
    OUT/embeddings/ one CLIP image embedding per clip (search)                  partitioned by scan_date
    OUT/events/    the events at the default thresholds, made when a video commits
    OUT/videos/    one row per committed video: the commit marker, written LAST
    OUT/runs/      one row when a run starts, one when it ends
    OUT/claims/    which run is scanning which video (jobs/out/claims.py)

and beside them, not a table: OUT/clip_index/, the approximate index's faiss shards over `embeddings`
(jobs/out/clip_index.py; derived data: deleting it costs only search speed).

Every table is append-only for the scan (a re-scan appends new rows; the views pick the newest
`videos` row of each uri, and the `frames`/`clips`/`events` rows of the runs that row names); the
rows nothing shows any more are deleted by compaction (jobs/out/compact.py). See schemas/views.py.

`frames` holds the frames the model saw (every `sample_interval`-th frame, or the keyframes when a run's
`sample_interval` is 0: `--sample-interval keyframes`), not every decoded frame;
`frame_index` is the frame's index in the decoded video, `timestamp_s` its presentation time from
the decoder. Changes to these schemas are additive only; bump SCHEMA_VERSION when one is made.

"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 4  # 2: runs.model_card; 3: Delta tables, scan_date, videos.run_ids, profile_id, events, claims; 4: embeddings

TABLE_NAMES = ("frames", "clips", "embeddings", "events", "videos", "runs", "claims")
PARTITION_COLUMNS: dict[str, list[str]] = {"frames": ["scan_date"], "clips": ["scan_date"], "embeddings": ["scan_date"]}

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
        pa.field("scan_date", pa.date32(), nullable=False),  # UTC day the rows were committed (the partition)
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
        pa.field("scan_date", pa.date32(), nullable=False),  # UTC day the rows were committed (the partition)
    ],
    metadata={"lavida_table": "clips", "lavida_schema_version": str(SCHEMA_VERSION)},
)

# One row per clip whose frames the CLIP image tower of the scan's model saw (lavida_core.detector
# `embed_clips`): the mean of its sampled frames' embeddings, L2-normalised. Written with the clip's
# frames/clips rows (jobs/scan/write.py) or back-filled by `lavida index`; shown like `clips`.
# Delta has no fixed-size array type: `embedding` is a list of `dim` floats (DuckDB reads FLOAT[]
# and casts it to FLOAT[dim] for array_cosine_similarity).
EMBEDDINGS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("clip_index", pa.int64(), nullable=False),
        pa.field("first_frame", pa.int64(), nullable=False),  # the clip's first and last sampled frames
        pa.field("last_frame", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # [dim], unit length
        pa.field("dim", pa.int32(), nullable=False),
        pa.field("embedding_model", pa.string(), nullable=False),  # the model whose image tower made it
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("scan_date", pa.date32(), nullable=False),
    ],
    metadata={"lavida_table": "embeddings", "lavida_schema_version": str(SCHEMA_VERSION)},
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
        # the runs whose frames/clips rows make up the video: run_id, and the runs of the segments a
        # resumed scan kept from a killed one
        pa.field("run_ids", pa.list_(pa.string()), nullable=False),
        pa.field("profile_id", pa.string(), nullable=False),  # what scored it: jobs/out/profile.py
        pa.field("scan_date", pa.date32(), nullable=False),
    ],
    metadata={"lavida_table": "videos", "lavida_schema_version": str(SCHEMA_VERSION)},
)

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # 'scan' | 'search' | 'index'
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
        pa.field("profile_id", pa.string(), nullable=False),  # jobs/out/profile.py: model, anomaly types, sampling
        pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),  # the newest row of a run counts
    ],
    metadata={"lavida_table": "runs", "lavida_schema_version": str(SCHEMA_VERSION)},
)

# The events at the default thresholds (schemas/views.py DEFAULT_EVENT_PARAMS), written with the
# video's commit; the `events` view reads them, `events(min_score := …)` computes other thresholds.
EVENTS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("event_index", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("n_frames", pa.int64(), nullable=False),
        pa.field("peak_score", pa.float32(), nullable=False),
        pa.field("peak_frame_index", pa.int64(), nullable=False),
        pa.field("peak_s", pa.float64(), nullable=False),
        pa.field("peak_mask_rle", MASK_RLE_TYPE, nullable=True),
        pa.field("mean_score", pa.float64(), nullable=False),
        pa.field("anomaly_types", pa.list_(pa.string()), nullable=True),
        pa.field("run_id", pa.string(), nullable=False),
    ],
    metadata={"lavida_table": "events", "lavida_schema_version": str(SCHEMA_VERSION)},
)

# Claims: a run appends one row per video it is about to scan; the earliest live claim of a video
# wins (jobs/out/claims.py). Internal to the writer: no view reads it.
CLAIMS_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("claimed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={"lavida_table": "claims", "lavida_schema_version": str(SCHEMA_VERSION)},
)

SCHEMAS: dict[str, pa.Schema] = {
    "frames": FRAMES_SCHEMA,
    "clips": CLIPS_SCHEMA,
    "embeddings": EMBEDDINGS_SCHEMA,
    "events": EVENTS_SCHEMA,
    "videos": VIDEOS_SCHEMA,
    "runs": RUNS_SCHEMA,
    "claims": CLAIMS_SCHEMA,
}

# Error kinds a video's `status` can take besides 'ok' (see jobs/scan/decode.py for when each is used).
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
