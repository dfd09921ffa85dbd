"""A private three-master Redis Cluster on free ports, for the cluster transport's tests."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Callable, Iterator

import pytest
import redis

READY_TIMEOUT = 15.0  # seconds for a started or restarted cluster to report cluster_state:ok everywhere


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        with socket.socket() as sock, socket.socket() as bus:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port + 10000 > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll a real condition briefly until it holds, or fail naming what did not happen."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class RedisClusterProcess:
    """N redis-server masters joined into one cluster (no replicas); a node can be stopped and restarted on
    its port with its nodes.conf, so it rejoins owning the same slots."""

    def __init__(self, size: int = 3) -> None:
        self.dir = tempfile.mkdtemp(prefix="ponte-cluster-")
        self.ports = [cluster_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for i in range(len(self.ports)):
            self.start_node(i, wait=False)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(["redis-cli", "--cluster", "create", *nodes, "--cluster-yes"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=READY_TIMEOUT)
        self.wait_ok()

    def start_node(self, i: int, wait: bool = True) -> None:
        """Start node i (again) on its port with its nodes.conf; `wait` until the cluster is whole."""
        port = self.ports[i]
        with open(f"{self.dir}/redis-{port}.log", "ab") as log:  # a file: an unread pipe would fill and block
            self.procs[i] = subprocess.Popen(
                ["redis-server", "--cluster-enabled", "yes", "--cluster-config-file", f"{self.dir}/nodes-{port}.conf",
                 "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self.dir], stdout=log, stderr=subprocess.STDOUT)
        until(lambda: self.answers(i), f"redis-server on port {port} to start")
        if wait:
            self.wait_ok()

    def wait_ok(self) -> None:
        """Wait until every running node says cluster_state:ok (after start, or once a node has rejoined)."""
        running = [i for i, proc in enumerate(self.procs) if proc is not None]
        until(lambda: all(self.state(i) == "ok" for i in running), f"cluster_state:ok on ports {self.ports}")

    def answers(self, i: int) -> bool:
        try:
            return self.state(i) != ""
        except redis.ConnectionError:
            return False

    def state(self, i: int) -> str:
        with redis.Redis(port=self.ports[i], socket_timeout=2) as client:
            return str(client.cluster("info")["cluster_state"])

    def stop_node(self, i: int) -> None:
        proc, self.procs[i] = self.procs[i], None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        for i in range(len(self.procs)):
            self.stop_node(i)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_cluster() -> Iterator[RedisClusterProcess]:
    """A real three-master Redis Cluster for this test; under CI missing Redis tools are a failure."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server and redis-cli are required under CI (.ci/run installs them)")
        pytest.skip("redis-server or redis-cli is not installed: install redis-server to run Redis Cluster tests")
    cluster = RedisClusterProcess()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
