"""S3 configured the way S3 users configure it (issue 28): the AWS environment, a profile in the
files AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE name, `--storage-option`, and an option over the
environment. Resolution is checked in process (fast tier); then every command walks an s3:// OUT on
the SeaweedFS the tests start, through the real CLI in fresh processes, each configured one way
only; then each S3 failure is one line with exit 2, and no secret is written anywhere."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from jobs.common.errors import UserError
from jobs.out.s3_settings import delta_options, fsspec_options, redact, resolve

ROOT = Path(__file__).resolve().parent.parent
LAVIDA = [sys.executable, "-m", "jobs.cli"]
ANSI = re.compile(r"\x1b\[")


@pytest.fixture
def clean_aws(monkeypatch, tmp_path):
    """No AWS_* variable of this machine, and no ~/.aws: only what a test sets."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup on this machine
    return monkeypatch


def write_profile(folder: Path, endpoint: str, key: str, secret: str, *, services: bool = False) -> dict[str, str]:
    """A profile `lab` in its own config and credentials files; the variables that select it."""
    config = folder / "aws-config"
    if services:
        config.write_text(f"[profile lab]\nregion = eu-west-3\nservices = local\n\n[services local]\ns3 =\n  endpoint_url = {endpoint}\n")
    else:
        config.write_text(f"[profile lab]\nregion = eu-west-3\nendpoint_url = {endpoint}\n")
    credentials = folder / "aws-credentials"
    credentials.write_text(f"[lab]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": "lab"}


# --- resolution (fast tier) -----------------------------------------------------------------------


def test_the_environment_alone_configures_every_client(clean_aws):
    clean_aws.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    clean_aws.setenv("AWS_ACCESS_KEY_ID", "AKID-env")
    clean_aws.setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
    clean_aws.setenv("AWS_SESSION_TOKEN", "token-env")
    clean_aws.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    settings = resolve({})
    delta = delta_options(settings)
    assert delta["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert delta["AWS_ALLOW_HTTP"] == "true"  # the regression: an http endpoint from the environment
    assert (delta["AWS_ACCESS_KEY_ID"], delta["AWS_SECRET_ACCESS_KEY"], delta["AWS_SESSION_TOKEN"]) == (
        "AKID-env",
        "secret-env",
        "token-env",
    )
    assert delta["AWS_REGION"] == "eu-north-1"
    fs = fsspec_options(settings)
    assert (fs["endpoint_url"], fs["key"], fs["secret"], fs["token"]) == ("http://127.0.0.1:9000", "AKID-env", "secret-env", "token-env")
    assert fs["client_kwargs"]["region_name"] == "eu-north-1"
    assert "secret-env" not in repr(settings) and "token-env" not in repr(settings)


def test_the_service_specific_variables_win(clean_aws):
    clean_aws.setenv("AWS_ENDPOINT_URL", "http://global:1")
    clean_aws.setenv("AWS_ENDPOINT_URL_S3", "https://s3-only:2")
    clean_aws.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    clean_aws.setenv("AWS_REGION", "ap-south-1")
    settings = resolve({})
    assert (settings.endpoint_url, settings.region) == ("https://s3-only:2", "ap-south-1")
    assert "AWS_ALLOW_HTTP" not in delta_options(settings)  # https needs no exception


@pytest.mark.parametrize("services", [False, True], ids=["endpoint_url", "services-section"])
def test_a_profile_in_the_files_the_variables_name(clean_aws, tmp_path, services):
    for name, value in write_profile(tmp_path, "http://127.0.0.1:8333", "AKID-lab", "secret-lab", services=services).items():
        clean_aws.setenv(name, value)
    settings = resolve({})
    assert (settings.endpoint_url, settings.region, settings.key, settings.secret) == (
        "http://127.0.0.1:8333",
        "eu-west-3",
        "AKID-lab",
        "secret-lab",
    )
    assert delta_options(settings)["AWS_ALLOW_HTTP"] == "true"


def test_storage_options_override_the_environment(clean_aws, tmp_path):
    clean_aws.setenv("AWS_ENDPOINT_URL", "http://wrong:1")
    clean_aws.setenv("AWS_ACCESS_KEY_ID", "AKID-env")
    clean_aws.setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
    settings = resolve({"endpoint_url": "http://right:2", "key": "AKID-opt", "secret": "secret-opt", "region": "us-west-2"})
    assert (settings.endpoint_url, settings.key, settings.secret, settings.region) == (
        "http://right:2",
        "AKID-opt",
        "secret-opt",
        "us-west-2",
    )
    # a profile given as an option wins over AWS_PROFILE (the environment's endpoint would win over both)
    clean_aws.delenv("AWS_ENDPOINT_URL")
    for name, value in write_profile(tmp_path, "http://profile:3", "AKID-lab", "secret-lab").items():
        clean_aws.setenv(name, value)
    (tmp_path / "aws-config").write_text("[profile lab]\nendpoint_url = http://profile:3\n[profile other]\nendpoint_url = http://other:4\n")
    assert resolve({"profile": "other"}).endpoint_url == "http://other:4"


def test_an_unknown_profile_is_one_line(clean_aws):
    clean_aws.setenv("AWS_PROFILE", "nope")
    with pytest.raises(UserError, match="AWS profile 'nope' is not in .*no-config"):
        resolve({})


def test_redact_removes_secrets_colour_and_secret_options(clean_aws):
    resolve({"key": "AKID", "secret": "s3cr3t-value"})
    text = "\x1b[31mbuilder error\x1b[0m for s3cr3t-value; argv: --storage-option secret=other-secret token=tok"
    assert redact(text) == "builder error for ***; argv: --storage-option secret=*** token=***"


# --- every command over s3://, configured one way at a time (real CLI, real SeaweedFS) -----------


@pytest.fixture(scope="module")
def s3_walk(s3_server, tmp_path_factory):
    """The session's SeaweedFS with an archive of one video under s3://walk-cams/site1 and a `walk-out` bucket."""
    from video_factory import write_video

    folder = tmp_path_factory.mktemp("s3walk")
    s3_server.make_bucket("walk-cams")
    s3_server.make_bucket("walk-out")
    write_video(folder / "cam1.mp4", n_frames=16)
    s3_server.upload_folder(folder, "s3://walk-cams/site1")
    return s3_server


def plain_env(tmp_path: Path, **aws: str) -> dict[str, str]:
    """This process's environment without AWS_*, plus `aws`; Ray's files in tmp_path's `ray` (searched
    for secrets: a short folder under /tmp it links to, as Ray's socket paths must stay under 108 bytes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    ray_dir = tempfile.mkdtemp(prefix="lvs", dir="/tmp")
    (tmp_path / "ray").symlink_to(ray_dir)
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        RAY_TMPDIR=ray_dir,
        PYTHONPATH=str(ROOT),
    )
    env.update(aws)
    return env


def lavida(env: dict[str, str], *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([*LAVIDA, *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == expect, f"lavida {' '.join(args[:3])} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def here(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`lavida ARGS` in this process with exactly `env`'s AWS_* variables (no interpreter start: the
    commands without Ray cost ~1 s instead of ~4 s); the scans and the search run as real processes."""
    from jobs.cli import main

    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        for name in saved:
            del os.environ[name]
        os.environ.update({name: value for name, value in env.items() if name.startswith("AWS_")})
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(list(args))
    finally:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update(saved)
    assert code == 0, f"lavida {' '.join(args[:3])} exited {code}:\n{stderr.getvalue()[-3000:]}"
    return subprocess.CompletedProcess(list(args), code, stdout.getvalue(), stderr.getvalue())


def walk(env: dict[str, str], out: str, report: Path, options: list[str], *, search: bool = True) -> str:
    """scan -> events -> query -> report (-> search) on `out`; returns everything the commands printed.
    A search is a scan job over OUT's videos (the same listing, decode, Delta writes and reads), so
    one configuration runs it, the others stop at the report (each Ray run costs ~20 s here)."""
    printed = [lavida(env, "scan", "s3://walk-cams/site1", "--out", out, "--model", "tiny", "--sample-interval", "4", *options)]
    printed.append(here(env, "events", out, "--min-score", "0", "--min-duration", "0", "--format", "json", *options))
    assert '"uri": "s3://walk-cams/site1/cam1.mp4"' in printed[-1].stdout
    printed.append(here(env, "query", out, "SELECT uri, status FROM videos", "--format", "csv", *options))
    assert "s3://walk-cams/site1/cam1.mp4,ok" in printed[-1].stdout
    printed.append(here(env, "report", out, "--to", str(report), "--min-score", "0", "--min-duration", "0", *options))
    assert "Signature=" in (report / "index.html").read_text()  # a presigned link to the video on S3
    if search:
        printed.append(lavida(env, "search", out, "a red square", "--min-score", "0", "--min-duration", "0", "--format", "csv", *options))
        assert "s3://walk-cams/site1/cam1.mp4" in printed[-1].stdout
    return "\n".join(p.stdout + p.stderr for p in printed)


def assert_no_secret(secret: str, server, out: str, places: list[Path], printed: str, *, searched: bool = True) -> None:
    """`secret` is in none of OUT's objects, the files under `places` (report, Ray's logs), what was printed."""
    fs = server.filesystem()
    prefix = out.removeprefix("s3://")
    objects = fs.find(prefix)
    assert any("_delta_log" in o for o in objects) and (not searched or any("/searches/" in o for o in objects))
    for name in objects:
        assert secret.encode() not in fs.cat_file(name), name
    for place in places:
        files = [p for p in Path(os.path.realpath(place)).rglob("*") if p.is_file() and not p.is_socket()]
        assert files, place
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in printed


@pytest.mark.slow
def test_every_command_configured_by_the_environment_only(s3_walk, tmp_path):
    from s3_server import ACCESS_KEY, SECRET_KEY

    env = plain_env(tmp_path, AWS_ENDPOINT_URL=s3_walk.endpoint_url, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    printed = walk(env, "s3://walk-out/by-env", tmp_path / "report", [])
    assert_no_secret(SECRET_KEY, s3_walk, "s3://walk-out/by-env", [tmp_path / "report", tmp_path / "ray"], printed)


@pytest.mark.slow
def test_every_command_configured_by_a_profile_only(s3_walk, tmp_path):
    from s3_server import ACCESS_KEY, SECRET_KEY

    env = plain_env(tmp_path)
    env.update(write_profile(tmp_path, s3_walk.endpoint_url, ACCESS_KEY, SECRET_KEY, services=True))
    printed = walk(env, "s3://walk-out/by-profile", tmp_path / "report", [], search=False)
    assert_no_secret(SECRET_KEY, s3_walk, "s3://walk-out/by-profile", [tmp_path / "report", tmp_path / "ray"], printed, searched=False)


@pytest.mark.slow
def test_every_command_configured_by_storage_options_only(s3_walk, tmp_path):
    from s3_server import SECRET_KEY

    options = [f"--storage-option={k}={v}" for k, v in s3_walk.storage_options.items()]
    printed = walk(plain_env(tmp_path), "s3://walk-out/by-option", tmp_path / "report", options, search=False)
    # given on the command line, the secret still reaches no file: not Ray's (its job entrypoint is the command line)
    assert_no_secret(SECRET_KEY, s3_walk, "s3://walk-out/by-option", [tmp_path / "report", tmp_path / "ray"], printed, searched=False)


@pytest.mark.slow
def test_an_option_overrides_the_environment(s3_walk, tmp_path):
    from s3_server import ACCESS_KEY, SECRET_KEY

    # the environment points at nothing and holds the read-only user; the options say where and who
    env = plain_env(tmp_path, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="nobody", AWS_SECRET_ACCESS_KEY="wrong")
    options = [
        f"--storage-option=endpoint_url={s3_walk.endpoint_url}",
        f"--storage-option=key={ACCESS_KEY}",
        f"--storage-option=secret={SECRET_KEY}",
    ]
    walk(env, "s3://walk-out/by-override", tmp_path / "report", options, search=False)


# --- each failure: one line, exit 2, no traceback, no colour --------------------------------------


def one_line_failure(env: dict[str, str], *args: str) -> str:
    done = lavida(env, *args, expect=2)
    lines = [line for line in done.stderr.splitlines() if "lavida" in line and "error" in line]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and not ANSI.search(done.stderr), done.stderr
    return lines[0]


@pytest.mark.slow
def test_each_s3_failure_is_one_line(s3_walk, local_ray, tmp_path):
    from s3_server import ACCESS_KEY, READ_ONLY_KEY, READ_ONLY_SECRET, SECRET_KEY, NoConditionalWrites

    from jobs.scan.job import ScanOptions, scan

    good = plain_env(tmp_path, AWS_ENDPOINT_URL=s3_walk.endpoint_url, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    # an OUT to fail on, written in this process on the session's Ray (the walks above scan through the CLI)
    scan(ScanOptions(source="s3://walk-cams/site1", out="s3://walk-out/failures", storage_options=s3_walk.storage_options))
    scan_into = ["scan", "s3://walk-cams/site1", "--model", "tiny", "--out"]

    wrong_secret = dict(good, AWS_SECRET_ACCESS_KEY="not-the-secret")
    line = one_line_failure(wrong_secret, "events", "s3://walk-out/failures")
    assert "s3://walk-out/failures" in line and "access key or secret is wrong" in line and "not-the-secret" not in line
    line = one_line_failure(dict(good, AWS_ACCESS_KEY_ID="no-such-key"), *scan_into, "s3://walk-out/x")
    assert "s3://walk-cams/site1" in line and "access key or secret is wrong" in line

    line = one_line_failure(good, *scan_into, "s3://no-such-bucket/scan")
    assert "bucket no-such-bucket does not exist" in line
    line = one_line_failure(good, "query", "s3://no-such-bucket/scan", "SELECT 1")
    assert "bucket no-such-bucket does not exist" in line

    reader = dict(good, AWS_ACCESS_KEY_ID=READ_ONLY_KEY, AWS_SECRET_ACCESS_KEY=READ_ONLY_SECRET)
    assert lavida(reader, "query", "s3://walk-out/failures", "SELECT count(*) FROM videos", "--format", "csv").stdout.split() == [
        "count_star()",
        "1",
    ]
    line = one_line_failure(reader, *scan_into, "s3://walk-out/by-reader")
    assert "s3://walk-out/by-reader" in line and "can read" in line and "not write" in line

    line = one_line_failure(dict(good, AWS_ENDPOINT_URL="http://127.0.0.1:9"), "events", "s3://walk-out/failures")
    assert "http://127.0.0.1:9 does not answer" in line

    proxy = NoConditionalWrites(s3_walk.endpoint_url)
    try:
        line = one_line_failure(dict(good, AWS_ENDPOINT_URL=proxy.endpoint_url), *scan_into, "s3://walk-out/unconditional")
    finally:
        proxy.stop()
    assert "s3://walk-out/unconditional" in line and "conditional writes" in line
