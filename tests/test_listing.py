"""jobs.scan.listing on local folders, globs and files (s3:// listing: tests/test_scan_local.py::test_scan_from_s3)."""

import os

import pytest

from jobs.common.errors import UserError
from jobs.scan.listing import describe_uris, fingerprint, list_videos, uri_key, uri_key_of


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_listing_keeps_videos_recursively_sorted(tmp_path):
    for name in ("b.mp4", "a.MKV", "sub/c.avi", "notes.txt", ".hidden.mp4", "out/frames/x.parquet"):
        _touch(tmp_path / name)
    uris = [v.uri for v in list_videos(str(tmp_path))]
    assert uris == sorted(str(tmp_path / n) for n in ("b.mp4", "a.MKV", "sub/c.avi"))


def test_glob_and_single_file(tmp_path):
    for name in ("cam1.mp4", "cam2.mp4", "door.mp4"):
        _touch(tmp_path / name)
    assert [os.path.basename(v.uri) for v in list_videos(str(tmp_path / "cam*.mp4"))] == ["cam1.mp4", "cam2.mp4"]
    assert [v.uri for v in list_videos(str(tmp_path / "door.mp4"))] == [str(tmp_path / "door.mp4")]


def test_relative_source_gives_absolute_uris(tmp_path, monkeypatch):
    _touch(tmp_path / "a.mp4")
    monkeypatch.chdir(tmp_path)
    assert [v.uri for v in list_videos(".")] == [str(tmp_path / "a.mp4")]


def test_video_id_is_stable_and_changes_with_the_file(tmp_path):
    path = _touch(tmp_path / "a.mp4", b"12345")
    first = list_videos(str(tmp_path))[0]
    assert list_videos(str(tmp_path))[0] == first  # same file, same id
    assert first.size_bytes == 5 and first.version_tag.startswith("mtime:")
    os.utime(path, (1_000_000, 1_000_000))
    touched = list_videos(str(tmp_path))[0]
    path.write_bytes(b"123456")
    rewritten = list_videos(str(tmp_path))[0]
    assert len({first.video_id, touched.video_id, rewritten.video_id}) == 3
    # every version of one uri shares the uri key; another uri does not
    assert {uri_key_of(v.video_id) for v in (first, touched, rewritten)} == {uri_key(first.uri)}
    assert uri_key(first.uri) != uri_key(str(tmp_path / "b.mp4"))


def test_fingerprint_depends_on_each_part():
    base = fingerprint("/a.mp4", 10, "mtime:1.0")
    assert len(base) == 20 and int(base, 16) >= 0
    assert base != fingerprint("/b.mp4", 10, "mtime:1.0")
    assert base != fingerprint("/a.mp4", 11, "mtime:1.0")
    assert base != fingerprint("/a.mp4", 10, "mtime:2.0")


def test_describe_uris(tmp_path):
    paths = [str(_touch(tmp_path / n)) for n in ("x.mp4", "y.webm")]
    assert [v.uri for v in describe_uris(paths)] == paths
    with pytest.raises(UserError, match="does not exist"):
        describe_uris([str(tmp_path / "missing.mp4")])


def test_missing_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="neither a folder"):
        list_videos(str(tmp_path / "nope"))
