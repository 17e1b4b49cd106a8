"""The Ray this process runs on: the one place a job connects (scan, search, eval, train).

Without an address, a Ray local to this command (never a cluster an earlier `ray start` left behind),
except in a driver that `ray job submit` started, which runs on its job's cluster; with an address,
that cluster, refused within seconds when nothing answers there. Ray's own output is quieted for a
plain run (`_quiet_ray`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator

from jobs.common.errors import UserError
from jobs.out.s3_settings import redact

log = logging.getLogger(__name__)

# Set by Ray's job supervisor for the driver of a submitted job (ray/dashboard/modules/job/job_supervisor.py).
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


@contextlib.contextmanager
def _entrypoint_without_secrets() -> Iterator[None]:
    """Ray keeps the driver's command line as its job's entrypoint (the GCS job table, the dashboard):
    a `--storage-option secret=…` must not be kept there. Ray offers no setting for it, so the
    function it calls is wrapped while it connects (ray/_private/worker.py: init -> connect)."""
    from ray._private import utils

    original = utils.get_entrypoint_name
    utils.get_entrypoint_name = lambda: redact(original())
    try:
        yield
    finally:
        utils.get_entrypoint_name = original


def connect_ray(address: str | None) -> None:
    """Join `address`, or reuse the Ray this process is already connected to, or start a local one.

    Without an address Ray is always local to this process (`address="local"`): never a cluster that
    an earlier `ray start` left behind (RAY_ADDRESS, /tmp/ray/ray_current_cluster); except in a driver
    that `ray job submit` started (RAY_JOB_ENV is set), which runs on that job's cluster. A given
    address that does not answer fails within seconds, naming it."""
    import ray

    if ray.is_initialized():
        return
    _quiet_ray()
    with _entrypoint_without_secrets():
        _connect(address)


def _connect(address: str | None) -> None:
    import ray

    if address is None and RAY_JOB_ENV in os.environ:
        # started by `ray job submit`: run on the cluster that started this driver (Ray sets RAY_ADDRESS)
        ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), logging_level=logging.WARNING)
        log.info("Ray: the cluster of this submitted job (%s)", os.environ.get("RAY_ADDRESS", "auto"))
        return
    if address is None:
        ray.init(address="local", logging_level=logging.WARNING)
        log.info("Ray: a local instance for this command")
        return
    check_reachable(address)  # also in validate(): other jobs (train) come here directly
    ray.init(address=address, logging_level=logging.WARNING)
    log.info("Ray: the cluster at %s", address)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """UserError unless something listens at a 'host:port' or 'ray://host:port' address ('auto' is Ray's)."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UserError(
            f"--ray-address {address}: no Ray cluster answers there ({error.strerror or error}); "
            "start it (ray start --head) or leave out --ray-address to run on a local Ray"
        ) from None


def _quiet_ray() -> None:
    """Ray's own output for a plain run: no token-auth notice, no Ray Data progress or plan lines
    (the scan logs its own progress), no colour codes when stderr is not a terminal."""
    import ray.data
    from ray.util.debug import log_once

    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # Ray Data's own file log (ray-data.log) keeps everything
        for handler in logging.getLogger("ray.data").handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    ray.data.DataContext.get_current().enable_progress_bars = False  # jobs/common/progress.py reports videos instead
    log_once("ray_data_progress_manager_disabled")  # ... and Ray need not warn that its bars are off
