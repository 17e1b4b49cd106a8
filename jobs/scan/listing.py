"""List stage: an archive (folder, glob or s3:// prefix) -> the video files in it, each with a stable id.

A file's `video_id` is a fingerprint of its uri, size and version tag (local mtime, or the S3 ETag),
so the same file keeps its id from night to night and a replaced file gets a new one: 20 hex digits,
the first 10 from the uri alone (`uri_key`, shared by every version of the file, which lets the
writer drop the rows of a replaced version), the last 10 from (uri, size, version tag).

Listing a folder or prefix keeps files whose extension is a video extension (VIDEO_EXTENSIONS) and
skips hidden files; a glob keeps whatever it matches. Filesystems are resolved by jobs/out/storage.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import fsspec

from jobs.common.errors import UserError
from jobs.out.s3_settings import s3_errors
from jobs.out.storage import filesystem_for, uri_of
from jobs.video.frame_sequences import folder_info

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".wmv", ".ogv", ".3gp"}
)
GLOB_CHARACTERS = ("*", "?", "[")


@dataclass(frozen=True)
class VideoFile:
    uri: str  # '/abs/path/cam1.mp4' or 's3://bucket/key/cam1.mp4'
    size_bytes: int
    version_tag: str  # 'mtime:<seconds>' or 'etag:<etag>'
    video_id: str  # fingerprint(uri, size_bytes, version_tag)


URI_KEY_LENGTH = 10


def fingerprint(uri: str, size_bytes: int, version_tag: str) -> str:
    """A stable id for one version of one file: uri_key(uri) + 10 hex digits of sha256(uri, size, tag)."""
    version = hashlib.sha256(f"{uri}\n{size_bytes}\n{version_tag}".encode()).hexdigest()
    return uri_key(uri) + version[:URI_KEY_LENGTH]


def uri_key(uri: str) -> str:
    """The part of a video_id that depends on the uri only."""
    return hashlib.sha256(uri.encode()).hexdigest()[:URI_KEY_LENGTH]


def uri_key_of(video_id: str) -> str:
    """uri_key of the file a video_id was made from."""
    return video_id[:URI_KEY_LENGTH]


def version_tag(info: dict) -> str:
    """The part of a file's listing info that changes when its content is replaced."""
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return "etag:" + str(etag).strip('"')
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    if mtime is None:
        raise UserError(f"storage gives neither an ETag nor a modification time for {info.get('name')}")
    return f"mtime:{float(mtime):.6f}"


def video_file(fs: fsspec.AbstractFileSystem, info: dict) -> VideoFile:
    uri = uri_of(fs, info["name"])
    size = int(info.get("size") or 0)
    tag = version_tag(info)
    return VideoFile(uri=uri, size_bytes=size, version_tag=tag, video_id=fingerprint(uri, size, tag))


def list_videos(source: str, storage_options: dict | None = None) -> list[VideoFile]:
    """The videos of `source` (a folder, a glob, an s3:// prefix or one file), sorted by uri."""
    with s3_errors(source, storage_options):
        return _list_videos(source, storage_options)


def _list_videos(source: str, storage_options: dict | None) -> list[VideoFile]:
    fs, path = filesystem_for(source, storage_options)
    if any(c in path for c in GLOB_CHARACTERS):
        infos = [info for info in fs.glob(path, detail=True).values() if info["type"] == "file"]
    elif fs.isfile(path):
        infos = [fs.info(path)]
    elif fs.isdir(path):
        infos = [info for info in fs.find(path, detail=True).values() if info["type"] == "file" and _looks_like_video(info["name"])]
    else:
        raise UserError(f"{source} is neither a folder, a file nor a glob that matches files; check the path")
    videos = sorted((video_file(fs, info) for info in infos), key=lambda v: v.uri)
    log.info("listed %d videos in %s", len(videos), source)
    return videos


def describe_uris(uris: list[str], storage_options: dict | None = None) -> list[VideoFile]:
    """VideoFiles for an explicit list of uris (all on the filesystem of the first one)."""
    if not uris:
        return []
    with s3_errors(uris[0], storage_options):
        return _describe_uris(uris, storage_options)


def _describe_uris(uris: list[str], storage_options: dict | None) -> list[VideoFile]:
    fs, _ = filesystem_for(uris[0], storage_options)
    videos = []
    for uri in uris:
        _, path = filesystem_for(uri, storage_options)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise UserError(f"{uri} does not exist; check the uri") from None
        if info["type"] == "directory":  # a folder of numbered images (jobs/video/frame_sequences.py)
            info = folder_info(fs, path)
        videos.append(video_file(fs, info))
    return videos


def _looks_like_video(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
