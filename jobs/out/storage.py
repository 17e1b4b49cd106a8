"""Where files live: a local path or a URL (s3://bucket/prefix) -> an fsspec filesystem and the path
inside it. The one place the jobs resolve a filesystem (listing, decode, report, the OUT writer and
reader). For s3:// the settings come from jobs/out/s3_settings.py (the AWS environment or profile, then
`--storage-option` on top); other protocols get their storage options as given."""

from __future__ import annotations

import os

import fsspec
from fsspec.implementations.local import LocalFileSystem

from jobs.out.s3_settings import check_endpoint, fsspec_options, resolve, s3_errors


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def filesystem_for(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a local path (file:// or plain) or a URL such as s3://bucket/prefix."""
    if not is_remote(url):
        return LocalFileSystem(), os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
    # no listings cache: OUT changes under a long-lived reader (a scan or a poll would see a stale
    # listing), and an archive is listed once per scan anyway
    options = dict(storage_options or {})
    if is_s3(url):
        settings = resolve(options)
        check_endpoint(settings, url)
        options = fsspec_options(settings)
    with s3_errors(url, storage_options):
        fs, path = fsspec.core.url_to_fs(url, **{"use_listings_cache": False, **options})
    return fs, path


def is_s3(url: str) -> bool:
    return url.startswith(("s3://", "s3a://"))


def uri_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The uri written to the tables: a plain absolute path locally, protocol://path elsewhere."""
    if isinstance(fs, LocalFileSystem):
        return path
    return fs.unstrip_protocol(path)
