"""OUT, the storage layer: where files live and how S3 is configured (`storage`, `s3_settings`), OUT's
Delta tables and their commits (`tables`), the claims and leases that keep concurrent scans apart
(`claims`, `leases`), scan profiles (`profile`), compaction and history (`compact`, `history`), and
DuckDB over one snapshot of the tables with the views (`duck`), and the approximate clip index's faiss
shards beside the tables (`clip_index`). It imports none of the commands."""
