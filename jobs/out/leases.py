"""Which runs are alive: a lease file per running scan, `OUT/_leases/<run_id>.json`.

A run writes its lease when it starts and every HEARTBEAT_S seconds while it runs, and removes it
when it ends (however it ends, short of a kill). A run is live while its lease exists and either
(same machine) its process still runs, or (another machine) the lease was renewed within LEASE_S.
So a scan killed with -9 is dead at once for a re-run on the same machine, and after LEASE_S for a
run elsewhere. Claims (jobs/out/claims.py) of dead runs no longer hold their videos.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

import fsspec

from jobs.out.tables import OutUnavailable

log = logging.getLogger(__name__)

HEARTBEAT_S = 20.0
LEASE_S = 120.0  # a lease not renewed for this long belongs to a dead run (on another machine)
LEASES = "_leases"


def _machine() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return f"{socket.gethostname()}/{file.read().strip()}"
    except OSError:
        return socket.gethostname()


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class LeaseInfo:
    run_id: str
    machine: str
    pid: int
    process_start: str | None
    renewed_at: float  # unix seconds

    def is_live(self, now: float | None = None) -> bool:
        if self.machine == _machine():
            return _process_start(self.pid) == self.process_start and self.process_start is not None
        return (now or time.time()) - self.renewed_at < LEASE_S


class Lease:
    """This process's lease on OUT for one run, renewed by a daemon thread until `release`."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, run_id: str) -> None:
        self.fs, self.path, self.run_id = fs, f"{root}/{LEASES}/{run_id}.json", run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{run_id}", daemon=True)

    def acquire(self) -> None:
        self._write()
        self._thread.start()

    def release(self) -> None:
        if not self._thread.is_alive():
            return  # never acquired (the run stopped before it began)
        self._stop.set()
        try:
            self.fs.rm_file(self.path)
        except Exception as error:  # a store that is down: the lease expires by itself (never hide the run's own error)
            log.warning("could not remove the lease %s (%s); it expires by itself", self.path, error)

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._write()
            except Exception as error:  # a store that is down for a moment: the next renewal tries again
                log.warning("could not renew the lease %s: %s", self.path, error)

    def _write(self) -> None:
        pid = os.getpid()
        info = {"run_id": self.run_id, "machine": _machine(), "pid": pid, "process_start": _process_start(pid), "renewed_at": time.time()}
        self.fs.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fs.pipe_file(self.path, json.dumps(info).encode())


def live_runs(fs: fsspec.AbstractFileSystem, root: str) -> set[str]:
    """The run ids whose leases under OUT are live now."""
    try:
        paths = fs.glob(f"{root}/{LEASES}/*.json")
    except FileNotFoundError:
        return set()
    except Exception as error:  # a store that is down
        raise OutUnavailable(f"cannot list the runs that write into {root}: {error}") from error
    live = set()
    now = time.time()
    for path in paths:
        try:
            info = LeaseInfo(**json.loads(fs.cat_file(path)))
        except (OSError, ValueError, TypeError, FileNotFoundError):
            continue  # removed meanwhile, or unreadable: not a live run
        if info.is_live(now):
            live.add(info.run_id)
    return live
