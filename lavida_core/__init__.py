"""LAVIDA model and its pure pre/post-processing helpers (no Ray, no storage I/O)."""
