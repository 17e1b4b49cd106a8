"""A local multi-node Ray cluster for tests: `ray start --head` + `ray start --address`. Shared helper.

    cluster = start_head(num_cpus=1)      # its own temp dir and ports; cluster.address = '127.0.0.1:PORT'
    cluster.add_worker(num_cpus=1)        # a second node on the same machine
    cluster.stop()                        # ends the processes of THIS cluster only

Each node gets its own free ports. Teardown never runs `ray stop` (which would end every Ray on the
machine): it ends, by pid, the processes whose command line names this cluster's temp dir or GCS
port, raylets first (their workers go with them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from s3_server import free_port


def ray_binary() -> str:
    return str(Path(sys.executable).parent / "ray")


@dataclass
class RayCluster:
    address: str  # '127.0.0.1:<gcs port>'
    temp_dir: str
    env: dict
    nodes: int = 1
    dashboard_url: str | None = None  # http://127.0.0.1:<port> when started with the dashboard (job server)
    _markers: list[str] = field(default_factory=list)

    def add_worker(self, *, num_cpus: int = 1, object_store_mb: int = 150, num_gpus: int = 0) -> None:
        """Start a worker node; num_gpus: LOGICAL GPUs it declares (as start_head's)."""
        _ray_start(["--address", self.address, *_node_flags(num_cpus, object_store_mb, num_gpus)], self.env)
        self.nodes += 1
        _wait_nodes(self, self.nodes)

    def stop(self) -> None:
        for pattern_group in (("raylet",), ("gcs_server", "ray/dashboard", "log_monitor", "monitor.py", "")):
            for pid in _our_pids(self._markers, pattern_group):
                _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _our_pids(self._markers, ("",)):
            time.sleep(0.5)
        for pid in _our_pids(self._markers, ("",)):
            _signal(pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(*, num_cpus: int = 1, object_store_mb: int = 150, dashboard: bool = False, num_gpus: int = 0) -> RayCluster:
    """Start a head node with its own temp dir (short path: Ray's socket names must stay short).
    dashboard: with Ray's dashboard and job server on a free port (cluster.dashboard_url), as
    cluster.yaml starts its head, so that `ray job submit` works. num_gpus: LOGICAL GPUs the head
    declares (Ray schedules GPU actors on them; there is no GPU behind them)."""
    temp_dir = tempfile.mkdtemp(prefix="lvray", dir="/tmp")
    port = free_port()
    # Token auth off: a local throw-away cluster; drivers started with `cluster.env` connect without a token.
    env = {
        **os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONPATH": _pythonpath(),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),  # jobs run this venv's python
    }  # fmt: skip
    cluster = RayCluster(address=f"127.0.0.1:{port}", temp_dir=temp_dir, env=env, _markers=[temp_dir, f":{port}", f"={port}"])
    board = ["--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}"] if dashboard else ["--include-dashboard=false"]
    _ray_start(
        [
            "--head", f"--port={port}", f"--temp-dir={temp_dir}", *board,
            f"--dashboard-agent-listen-port={free_port()}",
            *_node_flags(num_cpus, object_store_mb, num_gpus),
        ],
        env,
    )  # fmt: skip
    if dashboard:
        cluster.dashboard_url = "http://" + board[0].split("=")[1] + ":" + board[1].split("=")[1]
    _wait_nodes(cluster, 1)
    return cluster


def _node_flags(num_cpus: int, object_store_mb: int, num_gpus: int = 0) -> list[str]:
    return [
        f"--num-cpus={num_cpus}",
        f"--num-gpus={num_gpus}",
        f"--object-store-memory={object_store_mb * 1024 * 1024}",
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        "--disable-usage-stats",
    ]


def _pythonpath() -> str:
    """The repository root and tests/, so that workers import jobs/, lavida_core/ and test helpers."""
    tests = Path(__file__).resolve().parent
    return os.pathsep.join(p for p in (str(tests.parent), str(tests), os.environ.get("PYTHONPATH", "")) if p)


def _ray_start(args: list[str], env: dict) -> None:
    result = subprocess.run([ray_binary(), "start", *args], env=env, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"ray start failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def _wait_nodes(cluster: RayCluster, n: int, timeout_s: float = 120) -> None:
    """Wait until `n` nodes are alive (asked from a short-lived driver, not this process)."""
    code = (
        f"import json, ray; ray.init(address={cluster.address!r}, logging_level='ERROR');"
        "print(json.dumps(sum(1 for n in ray.nodes() if n['Alive'])))"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = subprocess.run([sys.executable, "-c", code], env=cluster.env, capture_output=True, text=True, timeout=120)
        if result.returncode == 0 and json.loads(result.stdout.strip().splitlines()[-1]) >= n:
            return
        time.sleep(1.0)
    raise RuntimeError(f"the Ray cluster at {cluster.address} did not reach {n} nodes")


def _our_pids(markers: list[str], names: tuple[str, ...]) -> list[int]:
    """Pids of this cluster's processes: the command line or an open file names one of its markers
    (agents rename themselves to 'ray::…' but keep their log files in the temp dir open), and the
    command line contains one of `names` ('' = any)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmdline for n in names) and (any(m in cmdline for m in markers) or _has_open_file_under(entry, markers[0])):
            pids.append(int(entry))
    return pids


def _has_open_file_under(pid: str, folder: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(folder):
                return True
        except OSError:
            continue
    return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
