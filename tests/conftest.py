"""Shared fixtures. `local_ray`: one local Ray for the whole session (starting Ray costs ~10 s on 2 cores).

Tests that run jobs without asking for it get Ray from `jobs.scan.connect_ray` (a plain local
`ray.init`); this fixture replaces such an instance with its own (test helpers importable in actors,
one torch thread per worker) the first time a test asks for it.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

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
