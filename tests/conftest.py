"""Shared fixtures and the test tiers.

`local_ray`: one local Ray for the whole session (starting Ray costs ~10 s on 2 cores). Tests that
run jobs without asking for it get Ray from `jobs.scan.ray_session.connect_ray` (a plain local `ray.init`); this
fixture replaces such an instance with its own (test helpers importable in actors, one torch thread
per worker) the first time a test asks for it.

Tiers: a test that starts Ray, an S3 server, Chromium or any other process is `slow`, and so is
one that spends more than ~2 s of CPU on its own (a training run that must learn, a property test
over a real OUT): `bash scripts/test.sh -m "not slow"` is the fast tier (about a minute), CI runs both.
Enforced for processes, not by convention: a test that uses a fixture that starts one
(SLOW_FIXTURES) is marked slow here, and a test not marked slow that starts a process anyway fails,
naming the command. The CPU rule is kept by hand: `pytest -m "not slow" --durations=10` shows it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av  # noqa: F401  before any decord import: decord's FFmpeg loaded first breaks PyAV's VP9 encoder
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))  # test helper modules (video_factory, fake_detector, ...)


@pytest.fixture(scope="session")
def local_ray():
    import ray

    if ray.is_initialized():
        ray.shutdown()
    temp_dir = tempfile.mkdtemp(prefix="lvr", dir="/tmp")
    ray.init(
        num_cpus=4,  # logical CPUs on 2 cores: Ray Train's two workers plus its controller actors fit
        include_dashboard=False,
        object_store_memory=300 * 1024 * 1024,
        _temp_dir=temp_dir,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", "OMP_NUM_THREADS": "1"}},
    )
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One SeaweedFS on 127.0.0.1 for the session (tests/s3_server.py). Each test module keeps to
    buckets of its own; a test that stops or breaks the server starts its own instead."""
    from s3_server import start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    print(f"S3 server under test: {server.kind} at {server.endpoint_url}")
    yield server
    server.stop()


# Fixtures that start Ray, a Ray cluster, an S3 server or Chromium (or depend on one that does).
SLOW_FIXTURES = frozenset({"local_ray", "cluster", "s3", "s3_out", "s3_server", "s3_walk", "chromium"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked slow that starts a process fails with a message saying to mark it."""
    if request.node.get_closest_marker("slow") is not None:
        return
    original = subprocess.Popen.__init__

    def refuse(self, args, *rest, **kwargs):
        argv = args.split() if isinstance(args, str) else [str(a) for a in args]
        if os.path.basename(argv[0]) in HARMLESS_COMMANDS:
            return original(self, args, *rest, **kwargs)
        raise RuntimeError(f"{request.node.nodeid} starts a process ({' '.join(argv)[:120]}): mark it @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


# Short-lived lookups some libraries make on first use (ctypes.util.find_library and the like).
HARMLESS_COMMANDS = frozenset({"ldconfig", "gcc", "cc", "ld", "objdump", "uname", "fc-list", "file"})
